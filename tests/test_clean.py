"""The clean stage end to end: the real spam-heavy WARC sample through the web rules with the
per-reason table the build prints, per-source rule sets, and labelled splits that must not be
emptied."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.clean import EmptiedSplit, check_splits, reason_table
from pipelines.recipe import CleanConfig
from tests.conftest import build_json, run_sieve


def rows(folder: Path, sub: str) -> list[dict]:
    return [r for f in sorted(folder.glob(f"{sub}/*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def test_warc_sample_through_the_filters_prints_the_reason_table(tmp_path, corpora):
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("# blocks every *.github.io site of the other WARCs\ngithub.io\n")
    recipe = tmp_path / "warc.toml"
    recipe.write_text(f"""
name = "warc"
[[ingest.sources]]
kind = "commoncrawl"
path = "{corpora}/commoncrawl_warc/warcfile.warc.gz"
[[ingest.sources]]
kind = "commoncrawl"
name = "other_warcs"
path = "{corpora}/web_warc_other"
[clean]
blocklist = "blocklist.txt"
""")
    proc = run_sieve("build", str(recipe), "--root", str(tmp_path / "out"), "--until", "clean")
    out = proc.stdout
    assert "clean, per source:" in out
    table = out[out.index("clean, per source:"):].split("\n\n")[0].splitlines()
    header, body = table[1].split(), {line.split()[0]: line.split()[1:] for line in table[2:]
                                       if not line.strip().startswith("PII")}
    assert header == ["commoncrawl", "other_warcs", "total"]
    # Every column adds up: documents in = kept + every reason.
    for col in range(3):
        dropped = sum(int(v[col].replace(",", "")) for k, v in body.items()
                      if k not in ("in", "kept"))
        assert int(body["in"][col].replace(",", "")) == \
            int(body["kept"][col].replace(",", "")) + dropped
    # The sample is mostly spam: the web rules drop 13 of its 16 pages. Kept: the English blurb
    # of a rubber-chemicals trader (037426.cn); the prose of a Russian fire-safety firm and of a
    # Dutch gardener, which English stop words dropped until each language got its own
    # thresholds (FineWeb-2's). Two Chinese pages pass every Chinese threshold and are dropped
    # for their listed words, counted on jieba's word boundaries: the adult fiction of
    # 0513mt.com (LDNOOBW's zh list) and a lottery-tip page of 044545.com (QQ numbers, stakes;
    # Sieve's gambling-spam terms, pipelines/data/spam_words.json).
    assert body["in"][0] == "16" and body["kept"][0] == "3"
    assert body["bad_words:too_many"][0] == "2"

    clean_dir = next((tmp_path / "out" / "clean").iterdir())
    rejected = rows(clean_dir, "rejected")
    reasons = {r["reason"] for r in rejected}
    assert reasons <= {line for line in body if line not in ("in", "kept")}
    assert all(":" in r for r in reasons)  # "<rule set>:<rule>" strings
    blocked = [r for r in rejected if r["reason"] == "blocklist:domain"]
    assert len(blocked) == 10 and all('github.io"' in r["meta"] for r in blocked)
    kept = rows(clean_dir, "docs")
    assert all(r["text"] and "{" not in r["text"] for r in kept)  # C4 drops curly brackets
    web = [r for r in kept if r["source"] == "commoncrawl"]
    by_domain = {json.loads(r["meta"])["domain"]: r for r in web}
    assert set(by_domain) == {"037426.cn", "01spb.ru", "0900-hovenier.nl"}
    assert "rubber formulation" in by_domain["037426.cn"]["text"]
    assert [json.loads(by_domain[d]["meta"])["language"] for d in sorted(by_domain)] == \
        ["ru", "en", "nl"]
    lottery = next(r for r in rejected if "044545.com" in r["meta"])
    assert lottery["reason"] == "bad_words:too_many"
    assert {"六合彩", "下注"} <= set(json.loads(lottery["meta"])["bad_words"])
    # Rejected by a rule, each names the thresholds that applied: Chinese pages Chinese ones.
    zh = [json.loads(r["meta"]) for r in rejected if json.loads(r["meta"])["language"] == "zh"
          and r["reason"].split(":")[0] in ("gopher_repetition", "gopher_quality", "fineweb")]
    assert zh and all(m["thresholds"] == "zh:fineweb-2:cmn_Hani+sieve" for m in zh)


def test_counters_per_source_and_reason(tmp_path, corpora):
    recipe = tmp_path / "mixed.toml"
    recipe.write_text(f"""
name = "mixed"
[[ingest.sources]]
kind = "commoncrawl"
path = "{corpora}/commoncrawl_warc/warcfile.warc.gz"
[[ingest.sources]]
kind = "conll2003"
path = "{corpora}/conll2003/valid.txt"
""")
    summary = build_json(recipe, tmp_path / "out", "--until", "clean")
    counters = summary["clean"]["counters"]
    # CoNLL-2003 sentences are labelled data: normalised, never dropped by the web rules.
    assert counters["source:conll2003:validation:in"] == \
        counters["source:conll2003:validation:out"] == 3250
    sources, table = reason_table(counters)
    assert sources == ["commoncrawl", "conll2003"]
    rows_ = dict(table)
    assert rows_["in"] == [16, 3250] and rows_["kept"][1] == 3250
    assert sum(v for k, v in counters.items() if k.startswith("dropped:")) == \
        sum(sum(v) for k, v in table if k not in ("in", "kept"))


def test_a_labelled_split_emptied_by_the_rules_fails_the_build(tmp_path):
    imdb = tmp_path / "aclImdb"
    for split in ("train", "test"):
        for label, rating in (("pos", 9), ("neg", 2)):
            folder = imdb / split / label
            folder.mkdir(parents=True)
            for i in range(3):
                (folder / f"{i}_{rating}.txt").write_text(
                    f"A {label} review number {i} of this film.<br /><br />It was {label}.")
    recipe = tmp_path / "imdb.toml"
    base = f'name = "imdb"\n[[ingest.sources]]\nkind = "imdb"\npath = "{imdb}"\n'
    recipe.write_text(base)
    summary = build_json(recipe, tmp_path / "ok", "--until", "clean")
    assert summary["clean"]["counters"]["source:imdb:test:out"] == 6  # web rules not applied
    recipe.write_text(base + '[clean.sources.imdb]\nfilters = ["gopher_quality"]\n')
    proc = run_sieve("build", str(recipe), "--root", str(tmp_path / "bad"), "--until", "clean",
                     check=False)
    assert proc.returncode != 0
    assert "every one of the 6 documents of imdb/test was dropped" in proc.stderr
    assert "gopher_quality:short_doc" in proc.stderr


def test_check_splits_only_guards_labelled_and_evaluation_splits():
    cfg = CleanConfig(source_kinds={"web": "commoncrawl", "reviews": "imdb"})
    check_splits(cfg, {"source:web:train:in": 5, "source:web:dropped:c4:lorem_ipsum": 5})
    with pytest.raises(EmptiedSplit, match="web/test"):
        check_splits(cfg, {"source:web:test:in": 5})
    with pytest.raises(EmptiedSplit, match="reviews/unsup"):
        check_splits(cfg, {"source:reviews:unsup:in": 2, "source:reviews:unsup:out": 0})


def test_rules_resolve_by_source_name_then_kind_then_builtin():
    cfg = CleanConfig.model_validate({
        "filters": ["c4"], "pii": ["email"],
        "sources": {"news": {"filters": ["fineweb"]}, "jsonl": {"pii": []}},
        "source_kinds": {"news": "jsonl", "forum": "jsonl", "wiki": "wikipedia",
                         "reviews": "imdb", "web": "commoncrawl"}})
    assert cfg.rules_for("news").filters == ["fineweb"] and cfg.rules_for("news").pii == ["email"]
    assert cfg.rules_for("forum").filters == ["c4"] and cfg.rules_for("forum").pii == []
    assert cfg.rules_for("wiki").filters == ["gopher_repetition"]
    assert cfg.rules_for("reviews").filters == [] and cfg.rules_for("reviews").min_chars == 1
    assert cfg.rules_for("web").filters == ["c4"]
