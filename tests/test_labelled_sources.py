"""The general labelled source kinds, on Chinese sets: a CSV/TSV classification source
(ChnSentiCorp) and a CoNLL source with configurable columns (Weibo NER: one character per line,
a word-position digit, tab-separated); their bad inputs; and `recipes/zh.toml` end to end
(zhwiki, Chinese web pages, both sets as task datasets, fine-tuned and scored)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pytest
import sentencepiece as spm

from pipelines.ingest import read_source_file
from pipelines.recipe import RecipeError, load_recipe
from pipelines.sources import classification, conll2003

from .conftest import REPO, build_json

CHNSENTICORP = "chnsenticorp/ChnSentiCorp_htl_all.csv"
LABELS = {"0": "negative", "1": "positive"}


def _csv_fields(**extra) -> dict:
    return {"text_field": "review", "label_field": "label", "label_names": LABELS,
            "split_field": None, "test_fraction": 0.2, "split_seed": 0, "delimiter": None,
            "id_field": None, **extra}


def test_chnsenticorp_rows_labels_and_a_stable_split(corpora):
    path = str(corpora / CHNSENTICORP)
    rows = list(read_source_file("classification", "chnsenticorp", path, _csv_fields()))
    kept = [row for row, reason in rows if reason is None]
    empty = [row for row, reason in rows if reason == "empty_text"]
    assert len(rows) == 7766 and len(kept) == 7765 and len(empty) == 1  # one row has no review
    assert json.loads(empty[0]["meta"])["line"] > 1
    metas = [json.loads(r["meta"]) for r in kept]
    assert {m["label"] for m in metas} == {"negative", "positive"}
    assert sum(m["label"] == "positive" for m in metas) == 5322  # the set's published count
    assert len({r["id"] for r in kept}) == len(kept)
    test_share = sum(r["split"] == "test" for r in kept) / len(kept)
    assert 0.18 < test_share < 0.22
    # The split is a function of the text: a duplicated review never straddles it.
    by_text: dict[str, set[str]] = {}
    for r in kept:
        by_text.setdefault(r["text"], set()).add(r["split"])
    assert all(len(splits) == 1 for splits in by_text.values())
    assert classification.hash_split(kept[0]["text"], 0.2, 0) == kept[0]["split"]
    other_seed = list(read_source_file("classification", "c", path, _csv_fields(split_seed=1)))
    assert [r["split"] for r, _ in other_seed] != [r["split"] for r, _ in rows]


def _errors(rows):
    return [json.loads(row["meta"])["error"] for row, reason in rows
            if reason and reason.startswith("error:")]


def test_csv_bad_inputs_name_the_file_and_line(tmp_path):
    good = "label,review\n1,很好的酒店\n0,\"房间很小,很吵\"\n"
    cases = {
        "missing.csv": ("label,text\n1,好\n", r"missing.csv:1: no column 'review'"),
        "fields.csv": (good + "1,多,了一列\n", r"fields.csv:4: 3 fields, the header has 2"),
        "label.csv": (good + "2,不知道\n", r"label.csv:4: label '2' is not one of \['0', '1'\]"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        rows = list(read_source_file("classification", "c", str(path), _csv_fields()))
        errors = _errors(rows)
        assert len(errors) == 1 and str(path) in errors[0], name
        assert re.search(message, errors[0]), errors[0]
        if name != "missing.csv":  # the rows before the bad one are kept
            assert sum(reason is None for _, reason in rows) == 2
    tsv = tmp_path / "set.tsv"
    tsv.write_text("split\tlabel\treview\ntrain\t1\t好, 很好\ndev\t0\t差\n", encoding="utf-8")
    rows = list(read_source_file("classification", "c", str(tsv),
                                 _csv_fields(split_field="split")))
    assert [(r["split"], r["text"]) for r, _ in rows] == [("train", "好, 很好"),
                                                        ("validation", "差")]


WEIBO_FIELDS = {"columns": ["token", "ner"], "separator": "\t", "strip_position_digit": True,
                "joiner": ""}


def test_weibo_ner_characters_and_tags(corpora):
    counts = {}
    for split, name in (("train", "train"), ("validation", "dev"), ("test", "test")):
        path = str(corpora / "weibo_ner" / f"weiboNER_2nd_conll.{name}")
        rows = [row for row, reason in read_source_file("conll", "weibo_ner", path, WEIBO_FIELDS)
                if reason is None]
        counts[split] = len(rows)
        assert all(r["split"] == split for r in rows)
    assert counts == {"train": 1350, "validation": 270, "test": 270}  # 1,890 messages
    first = json.loads(rows[0]["meta"])
    assert all(len(t) == 1 for t in first["tokens"])  # characters, the position digit gone
    assert rows[0]["text"] == "".join(first["tokens"])
    assert len(first["ner_tags"]) == len(first["tokens"])
    tags = {t for r in rows for t in json.loads(r["meta"])["ner_tags"]}
    assert {"B-PER.NAM", "I-PER.NOM", "B-GPE.NAM"} <= tags


def test_conll_bad_inputs_name_the_file_and_line(tmp_path):
    cases = {
        "columns.train": ("科0\tO\n技1\tO\tX\n", r"columns.train:2: expected 2 columns"),
        "digit.train": ("科0\tO\n技\tO\n", r"digit.train:2: token '技' does not end in a "
                                           "word-position digit"),
        "tag.train": ("科0\tO\n技1\tPER\n", r"tag.train:2: column 2 'PER' is not an IOB tag"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        with pytest.raises(conll2003.ConllFormatError, match=message):
            list(conll2003.read(str(path), "w", **WEIBO_FIELDS))
        errors = _errors(read_source_file("conll", "w", str(path), WEIBO_FIELDS))
        assert len(errors) == 1 and str(path) in errors[0]


def test_recipe_checks_labelled_source_settings(tmp_path, corpora):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "r"\n[[ingest.sources]]\nkind = "conll"\n'
                      f'path = "{corpora}/weibo_ner/*.train"\ncolumns = ["token", "tag"]\n')
    with pytest.raises(RecipeError, match="must name a 'token' and a 'ner' column"):
        load_recipe(recipe)
    recipe.write_text(f'name = "r"\n[[ingest.sources]]\nkind = "wikipedia"\n'
                      f'path = "{corpora}/wikipedia_xml_zh/*.xml"\nconvert = "zh2klingon"\n')
    with pytest.raises(RecipeError, match="convert"):
        load_recipe(recipe)
    recipe.write_text(f'name = "r"\n[[ingest.sources]]\nkind = "wikipedia"\n'
                      f'path = "{corpora}/wikipedia_xml_zh/*.xml"\n'
                      '[finetune]\ntasks = ["imdb"]\n')
    with pytest.raises(RecipeError, match=r"\[finetune\] tasks \['imdb'\] are not labelled"):
        load_recipe(recipe)


@pytest.fixture(scope="module")
def zh_build(tmp_path_factory: pytest.TempPathFactory, corpora: Path) -> dict:
    root = tmp_path_factory.mktemp("zh-root")
    return build_json(REPO / "recipes" / "zh.toml", root)


@pytest.mark.slow
def test_zh_recipe_builds_task_datasets_and_chinese_text(zh_build):
    import pyarrow.parquet as pq

    tasks = Path(zh_build["tasks"]["path"])
    senti = datasets.load_from_disk(str(tasks / "chnsenticorp"))
    assert set(senti) == {"train", "test"} and len(senti["train"]) + len(senti["test"]) == 7765
    assert senti["train"].features["label"].names == ["negative", "positive"]
    weibo = datasets.load_from_disk(str(tasks / "weibo_ner"))
    assert {s: len(ds) for s, ds in weibo.items()} == {"train": 1350, "validation": 270,
                                                       "test": 270}
    names = weibo["train"].features["ner_tags"].feature.names
    assert names[0] == "O" and "B-PER.NAM" in names and "I-PER.NAM" in names
    example = weibo["train"][0]
    labelled = [lab for lab in example["labels"] if lab != -100]
    assert labelled == example["ner_tags"][:len(labelled)]
    # Each character is encoded alone, so its first piece is often a bare "▁" that a causal
    # decoder reads before the character: fine-tuning moves every tag to its word's last
    # piece, which is never "▁", in the same word order.
    from training.finetune import word_targets

    sp = spm.SentencePieceProcessor(model_file=str(Path(zh_build["tokenizer"]["path"])
                                                   / "tokenizer.model"))
    bare = sp.piece_to_id("▁")
    first = last = 0
    for row in weibo["train"].select(range(200)):
        targets = word_targets(row["labels"], row["word_ids"], 96, causal=True)
        at = [k for k, t in enumerate(targets) if t != -100]
        assert [targets[k] for k in at] == row["ner_tags"][:len(at)]
        assert all(row["input_ids"][k] != bare for k in at[:-1])  # the last may be cut
        first += sum(row["input_ids"][k] == bare for k, lab in enumerate(row["labels"][:96])
                     if lab != -100)
        last += len(at)
    assert first > last / 2  # most characters' first piece is the bare "▁"
    # zhwiki: variant markup resolved, converted to Simplified characters (OpenCC t2s).
    docs = pq.read_table(Path(zh_build["dedup"]["path"]) / "docs").to_pylist()
    wiki = [d["text"] for d in docs if d["source"] == "zhwiki"]
    assert len(wiki) >= 20 and not any("-{" in t or "}-" in t for t in wiki)
    assert not any("數學" in t for t in wiki) and any("数学" in t for t in wiki)
    card = (Path(zh_build["card"]["path"]) / "README.md").read_text(encoding="utf-8")
    assert f"variant markup `-{{` `}}-`): zhwiki 0 of {len(wiki)}." in card
    assert "| zh | " in card and "fineweb-2:cmn_Hani+sieve" in card  # the per-language table
    # The Chinese web pages were judged by Chinese thresholds.
    rejected = pq.read_table(Path(zh_build["clean"]["path"]) / "rejected").to_pylist()
    web = [json.loads(r["meta"]) for r in rejected if r["source"] == "zh_web"
           and json.loads(r["meta"]).get("language") == "zh"]
    assert web and all(m["thresholds"] == "zh:fineweb-2:cmn_Hani+sieve" for m in web)
    stats = json.loads((Path(zh_build["tokenizer"]["path"]) / "stats.json").read_text())
    assert stats["character_coverage"] == 0.9995 and stats["chosen_by"] == "scripts"
    assert stats["cjk_share_of_letters"] > 0.5


@pytest.mark.slow
def test_chinese_tasks_fine_tune_and_score(zh_build, tmp_path):
    from training.finetune import FinetuneConfig, finetune
    from training.pretrain import PretrainConfig, pretrain

    from .test_training import TINY

    pretrain(PretrainConfig(max_steps=5, **TINY), zh_build["shard"]["path"], tmp_path / "pre")
    cfg = FinetuneConfig(steps=10, batch_size=8, max_length=96, eval_limit=100)
    senti = finetune("chnsenticorp", cfg, tmp_path / "pre" / "final", zh_build["tasks"]["path"],
                     tmp_path / "ft")
    assert senti["test"]["n"] == 100 and senti["test"]["labels"] == ["negative", "positive"]
    weibo = finetune("weibo_ner", cfg, tmp_path / "pre" / "final", zh_build["tasks"]["path"],
                     tmp_path / "ft")
    assert {"precision", "recall", "f1", "per_type"} <= set(weibo["test"])
    assert weibo["loss"][-1] < weibo["loss"][0]


def test_a_causal_decoder_is_fine_tuned_and_scored_at_each_words_last_piece():
    from transformers import BertConfig, LlamaConfig

    from training.finetune import word_targets
    from training.model import is_causal

    assert is_causal(LlamaConfig()) and not is_causal(BertConfig())

    # <s> | "▁", "张" | "▁三" | "▁", "说", "了" | </s>: three words, tags on their first pieces
    labels = [-100, 3, -100, 4, 0, -100, -100, -100]
    words = [-1, 0, 0, 1, 2, 2, 2, -1]
    assert word_targets(labels, words, 8, causal=False) == labels
    assert word_targets(labels, words, 8, causal=True) == [-100, -100, 3, 4, -100, -100, 0, -100]
    # A word cut by the width: its tag on its last piece that fits; an encoder's are cut.
    assert word_targets(labels, words, 6, causal=True) == [-100, -100, 3, 4, -100, 0]
    assert word_targets(labels, words, 6, causal=False) == labels[:6]
