"""`sieve compare`, the raw arm, the neutral held-out set and bits per byte: a tiny raw vs
curated comparison on the smoke recipe's real files, and the pieces it is made of."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from flows.compare import check_comparable, paired, t95, verdict
from pipelines.clean import Cleaner
from pipelines.recipe import CleanConfig, RecipeError, load_recipe
from pipelines.schema import ARROW_SCHEMA
from training.bpb import bootstrap_bpb, held_out_bpb
from training.heldout import HeldOutError, read_held_out

from .conftest import CORPORA, REPO, run_sieve

HELD_OUT = CORPORA / "html_extraction_scrapinghub" / "ground-truth.json"
TINY_TAIL = """
[train]
hidden_size = 32
layers = 1
heads = 2
intermediate_size = 64
batch_size = 4
max_steps = 4
eval_every = 2
checkpoint_every = 2
warmup_steps = 1

[finetune]
steps = 3
batch_size = 4
max_length = 64
eval_limit = 40
seeds = 1
tasks = ["imdb"]

[evaluation]
held_out = ["../../shared/corpora/html_extraction_scrapinghub/ground-truth.json"]
held_out_documents = 20
validation_tokens = 2048
"""


def tiny_arms(tag: str, leak: Path) -> tuple[Path, Path]:
    """The smoke recipe's files plus a JSONL source holding one held-out article (which
    decontamination must drop from both arms); raw (A) and curated (B)."""
    smoke = (REPO / "recipes" / "smoke.toml").read_text(encoding="utf-8")
    smoke += f'\n[[ingest.sources]]\nkind = "jsonl"\nname = "leak"\npath = "{leak}"\n'
    raw = smoke.replace('name = "smoke"', 'name = "tiny_raw"').replace(
        "[clean]\nmin_chars = 32\n", "[clean]\nenabled = false\n\n[dedup]\nexact = false\n"
        "minhash = false\n")
    curated = smoke.replace('name = "smoke"', 'name = "tiny_curated"')
    paths = []
    for arm, text in (("raw", raw), ("curated", curated)):
        path = REPO / "recipes" / f".test-compare-{tag}-{arm}.toml"
        path.write_text(text + TINY_TAIL, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


@pytest.mark.slow
def test_compare_raw_against_curated_end_to_end(corpora, tmp_path):
    article = next(iter(json.loads(HELD_OUT.read_text(encoding="utf-8")).values()))
    leak = tmp_path / "leak.jsonl"
    leak.write_text(json.dumps({"id": "leak-1", "text": "Reposted. " + article["articleBody"]})
                    + "\n" + json.dumps({"id": "fine-1", "text": "An unrelated paragraph of "
                                         "plain text that is long enough to keep. " * 3}) + "\n",
                    encoding="utf-8")
    raw, curated = tiny_arms(tmp_path.name, leak)
    root = tmp_path / "root"
    try:
        args = ("compare", str(raw), str(curated), "--root", str(root), "--seeds", "2",
                "--json")
        result = json.loads(run_sieve(*args).stdout.strip().splitlines()[-1])
        again = json.loads(run_sieve(*args).stdout.strip().splitlines()[-1])
    finally:
        raw.unlink()
        curated.unlink()

    # Runs are cached per arm and seed: the rerun trains nothing and reports the same numbers.
    assert all(r["cached"] for arm in again["arms"].values() for r in arm["runs"])
    assert again["metrics"] == result["metrics"]
    assert [r["seed"] for r in result["arms"]["A"]["runs"]] == [0, 1]

    m = result["metrics"]
    bpb = m["held_out_bits_per_byte"]
    d = bpb["difference_b_minus_a"]
    per_a, per_b = bpb["A"]["per_seed"], bpb["B"]["per_seed"]
    assert d["per_seed"] == pytest.approx([b - a for a, b in zip(per_a, per_b, strict=True)],
                                          abs=1e-4)
    assert d["ci95"][0] <= d["mean"] <= d["ci95"][1]
    assert d["documents_ci95"][0] <= d["documents_ci95"][1]
    assert all(2 < v < 12 for v in per_a + per_b)  # bits per byte of a barely trained model
    assert result["verdict"] == verdict(d["ci95"])
    assert set(m) == {"held_out_bits_per_byte", "validation_bits_per_byte", "imdb_accuracy"}
    assert result["held_out_documents"] == 20

    # The raw arm cleaned nothing and deduplicated nothing; both dropped the leaked article,
    # and only it, as decontaminated against the held-out set.
    manifests = {}
    for stage in ("clean", "dedup"):
        for arm in ("A", "B"):
            key = result["arms"][arm]["stages"][stage]
            manifests[stage, arm] = json.loads(
                (root / stage / key / "manifest.json").read_text())["counters"]
    assert manifests["clean", "A"]["in"] == manifests["clean", "A"]["out"]
    assert not any(k.startswith("dropped:") for k in manifests["clean", "A"])
    raw_drops = {k: v for k, v in manifests["dedup", "A"].items() if k.startswith("dropped:")}
    assert set(raw_drops) == {"dropped:decontaminated"}
    assert manifests["dedup", "B"].get("dropped:duplicate_exact", 0) > 0
    for arm in ("A", "B"):
        assert manifests["dedup", arm]["held_out_documents"] == 181
        rejected = sorted((root / "dedup" / result["arms"][arm]["stages"]["dedup"]
                           / "rejected").glob("*.parquet"))
        import pyarrow.parquet as pq

        table = pa.concat_tables(pq.read_table(p) for p in rejected)
        leaked = [i for i, r in zip(table.column("id").to_pylist(),
                                    table.column("reason").to_pylist(), strict=True)
                  if r == "decontaminated" and "leak" in i]
        assert len(leaked) == 1 and "fine-1" not in str(table.column("id").to_pylist())

    # The raw arm's data card says what did not run; both name the held-out set.
    cards = {arm: (root / "card" / result["arms"][arm]["stages"]["card"] / "README.md"
                   ).read_text(encoding="utf-8") for arm in ("A", "B")}
    assert "Cleaning was off" in cards["A"] and "Deduplication was off" in cards["A"]
    assert "Cleaning was off" not in cards["B"] and "MinHash LSH" in cards["B"]
    assert all("181 documents of the neutral held-out set ground-truth.json" in c
               for c in cards.values())

    report = (Path(result["path"]) / "comparison.md").read_text(encoding="utf-8")
    assert "Decision rule, fixed before the runs" in report and result["verdict"] in report
    assert (Path(result["path"]) / "comparison.png").stat().st_size > 1000


def test_arms_that_differ_beyond_their_data_are_refused(corpora, tmp_path):
    a = load_recipe(REPO / "recipes" / "ablation_raw.toml")
    b = load_recipe(REPO / "recipes" / "ablation_curated.toml")
    check_comparable(a, b)  # the shipped pair differs in [clean] and [dedup] only
    assert a.clean.enabled is False and b.clean.enabled is True
    assert (a.dedup.exact, a.dedup.minhash, a.dedup.decontaminate) == (False, False, True)
    import dataclasses

    other = b.model_copy(update={"train": dataclasses.replace(b.train, layers=3)})
    with pytest.raises(RecipeError, match=r"\[train\] differs"):
        check_comparable(a, other)
    no_held_out = b.model_copy(update={"evaluation": dataclasses.replace(b.evaluation,
                                                                         held_out=())})
    with pytest.raises(RecipeError, match="held_out"):
        check_comparable(no_held_out, no_held_out)
    # Two mixtures compare at one token budget: weights may differ, the budget may not.
    mix = load_recipe(REPO / "recipes" / "mix.toml")
    sources = {**mix.mix.sources, "imdb": mix.mix.sources["imdb"].model_copy(
        update={"weight": 0.1}), "wikipedia": mix.mix.sources["wikipedia"].model_copy(
        update={"weight": 0.4})}
    reweighted = mix.model_copy(update={"mix": mix.mix.model_copy(update={"sources": sources})})
    check_comparable(mix, reweighted)
    longer = mix.model_copy(update={"mix": mix.mix.model_copy(update={"total_tokens": 409_600})})
    with pytest.raises(RecipeError, match="training tokens 204,800 vs 409,600"):
        check_comparable(mix, longer)


def test_a_missing_held_out_file_fails_at_load(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "x"\n[[ingest.sources]]\nkind = "imdb"\npath = '
                      f'"{CORPORA / "imdb_aclImdb" / "aclImdb"}"\n[evaluation]\n'
                      f'held_out = ["nowhere.json"]\n', encoding="utf-8")
    with pytest.raises(RecipeError, match=r"held_out .*nowhere.json is not a file"):
        load_recipe(recipe)


def test_paired_interval_and_verdict():
    d = paired([3.0, 3.1, 2.9], [2.8, 2.95, 2.7])
    assert d["per_seed"] == pytest.approx([-0.2, -0.15, -0.2])
    half = t95(2) * np.std([-0.2, -0.15, -0.2], ddof=1) / math.sqrt(3)
    assert d["ci95"] == pytest.approx([d["mean"] - half, d["mean"] + half], abs=1e-5)
    assert verdict(d["ci95"]).startswith("B is better")
    assert verdict([-0.1, 0.2]).startswith("no distinguishable")
    assert verdict([0.01, 0.2]).startswith("B is worse")
    assert paired([1.0], [2.0])["ci95"] is None
    assert t95(2) == 4.303 and t95(11) == 2.228 and t95(100) == 1.96


def test_held_out_reader_formats_and_errors(tmp_path):
    docs = read_held_out([str(HELD_OUT)])
    assert len(docs) == 181 and all(d.strip() for d in docs)
    assert len(read_held_out([str(HELD_OUT)], limit=5)) == 5
    zh = read_held_out([str(CORPORA / "html_extraction_zh_ja" / "ground-truth.json")])
    assert len(zh) == 18 and any("的" in d for d in zh)
    (tmp_path / "a.jsonl").write_text('{"text": "one"}\n\n{"content": "two"}\n',
                                      encoding="utf-8")
    (tmp_path / "b.txt").write_text("three", encoding="utf-8")
    assert read_held_out([str(tmp_path / "a.jsonl"), str(tmp_path / "b.txt")]) == [
        "one", "two", "three"]
    (tmp_path / "bad.jsonl").write_text('{"body": 1}\n', encoding="utf-8")
    with pytest.raises(HeldOutError, match=r"bad.jsonl:1: .*fields text, articleBody, content"):
        read_held_out([str(tmp_path / "bad.jsonl")])
    (tmp_path / "c.csv").write_text("x", encoding="utf-8")
    with pytest.raises(HeldOutError, match=r"c.csv: held-out files are"):
        read_held_out([str(tmp_path / "c.csv")])


class Uniform(torch.nn.Module):
    """Equal logits over the vocabulary: every predicted token costs log2(V) bits."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab))


class Pieces:
    """A stand-in tokenizer: one id per byte (ids 4..259)."""

    def encode(self, text: str) -> list[int]:
        return [4 + b for b in text.encode("utf-8")]


def test_held_out_bits_per_byte_predicts_every_token_once():
    texts = ["a" * 30, "日本語のテキスト", "short"]
    vocab = 260
    result = held_out_bpb(Uniform(vocab), Pieces(), texts, seq_len=8, batch_size=3,
                          dev=torch.device("cpu"))
    for text, bits in zip(texts, result["document_bits"], strict=True):
        predicted = len(text.encode("utf-8")) + 1  # every byte's piece, then the closing EOS
        assert bits == pytest.approx(predicted * math.log2(vocab), rel=1e-4)
    assert result["document_bytes"] == [len(t.encode("utf-8")) for t in texts]
    total = sum(result["document_bits"]) / sum(result["document_bytes"])
    assert result["bits_per_byte"] == pytest.approx(total, rel=1e-4)
    low, high = result["bits_per_byte_ci95"]
    assert low <= result["bits_per_byte"] <= high
    assert bootstrap_bpb(np.zeros(5), np.ones(5)) == [0.0, 0.0]


def test_clean_disabled_passes_documents_through_unchanged():
    rows = [{"id": f"d{i}", "source": "web", "split": "train", "text": text, "meta": "{}"}
            for i, text in enumerate(["buy now!!! $$$", "x", "Caf\u00e9  \u00a0 text"])]
    table = pa.Table.from_pylist(rows, ARROW_SCHEMA)
    kept, rejected, counts = Cleaner(CleanConfig(enabled=False), None).judge(table)
    assert kept.to_pylist() == table.to_pylist() and rejected.num_rows == 0
    assert counts["in"] == counts["out"] == 3 and counts["source:web:train:out"] == 3
    kept_on, _, _ = Cleaner(CleanConfig(), None).judge(table)
    assert kept_on.num_rows < 3  # the same rows with the rules on lose the short one


def test_an_edited_held_out_set_changes_the_dedup_and_evaluate_keys(tmp_path):
    from flows.train import EVALUATE
    from pipelines import dedup
    from pipelines.recipe import DedupConfig
    from training.config import EvaluationConfig

    held = tmp_path / "held.jsonl"
    held.write_text('{"text": "one article"}\n', encoding="utf-8")
    dedup_cfg, eval_cfg = DedupConfig(held_out=[str(held)]), EvaluationConfig(held_out=(str(held),))
    before = dedup.fingerprint(dedup_cfg), EVALUATE.fingerprint(eval_cfg)
    held.write_text('{"text": "another article"}\n', encoding="utf-8")
    after = dedup.fingerprint(dedup_cfg), EVALUATE.fingerprint(eval_cfg)
    assert before[0] != after[0] and before[1] != after[1]
    assert dedup.fingerprint(DedupConfig()) is None  # builds without one keep their keys
