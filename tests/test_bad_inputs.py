"""The bad-input corpus (tests/fixtures/bad, made by make_bad_inputs.py): each file gives a clear
error naming the file and the problem, or rejected records with their reasons; the good records
before and after a bad spot are kept; the ingest job never dies and its counts add up."""

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.ingest import read_source_file

BAD = Path(__file__).parent / "fixtures" / "bad"


def read(kind: str, name: str, **fields) -> list[tuple[dict, str | None]]:
    path = str(BAD / name)
    return list(read_source_file(kind, "s", path, fields))


def reasons(records) -> Counter:
    return Counter(reason for _, reason in records)


def error_of(records) -> str:
    (row,) = [row for row, reason in records if reason and reason.startswith("error:")]
    return json.loads(row["meta"])["error"]


def test_truncated_bz2_keeps_the_pages_before_the_cut():
    records = read("wikipedia", "truncated.xml.bz2")
    assert reasons(records) == {None: 32, "error:EOFError": 1}
    assert "truncated.xml.bz2: Compressed file ended" in error_of(records)


def test_malformed_xml_is_an_error_naming_file_and_position_and_later_pages_are_kept():
    records = read("wikipedia", "malformed.xml")
    assert reasons(records) == {None: 2, "error:XMLSyntaxError": 1}
    assert "malformed.xml: Opening and ending tag mismatch" in error_of(records)


def test_entity_bomb_is_not_expanded_and_external_entities_are_not_fetched():
    (bomb, reason), = read("wikipedia", "entity_bomb.xml")
    assert reason is None and bomb["text"] == "Boom boom, a page of text long enough to keep."
    (xxe, reason), = read("wikipedia", "external_entity.xml")
    assert reason is None and xxe["text"] == "Secret: and enough other words to keep it."


def test_invalid_utf8_is_replaced_not_fatal_in_every_format():
    (wiki, _), = read("wikipedia", "invalid_utf8.xml")
    assert "sm\ufffdall" in wiki["text"]
    (page, _), = read("commoncrawl", "invalid_utf8.warc.gz")
    assert "\ufffd" in page["text"] and json.loads(page["meta"])["decode_errors"] >= 1
    conll = read("conll2003", "conll_invalid_utf8/train.txt")
    assert [r["text"] for r, _ in conll] == ["EU rejects", "G\ufffdr"]
    imdb = {r["id"]: r for r, reason in read("imdb", "aclImdb_hostile.tar.gz") if reason is None}
    assert json.loads(imdb["s/train/neg/2"]["meta"])["decode_errors"] == 2
    (line, reason), = read("jsonl", "invalid_utf8.jsonl", text_field="text", id_field="id")
    assert reason is None and line["text"] == "caf\ufffd au lait"


def test_truncated_gzip_member_and_non_gzip_bytes_in_warc_gz():
    records = read("commoncrawl", "truncated_member.warc.gz")
    assert reasons(records) == {None: 2, "error:corrupt_record": 1}
    assert "truncated_member.warc.gz@" in error_of(records)
    records = read("commoncrawl", "not_gzip.warc.gz")
    assert reasons(records) == {"error:ValueError": 1}
    assert error_of(records).endswith("not_gzip.warc.gz: named .gz but is not gzip "
                                      "(starts with b'This is ')")


def test_hostile_tarball_members_are_rejected_and_nothing_is_extracted():
    records = read("imdb", "aclImdb_hostile.tar.gz")
    assert reasons(records) == {None: 2, "tar_unsafe_path": 2, "tar_link": 1}
    assert not (BAD / "evil_3_9.txt").exists() and not Path("/abs").exists()


def test_conll_wrong_columns_name_file_and_line_and_unknown_tags_are_kept_for_the_task_stage():
    records = read("conll2003", "conll_bad_columns/train.txt")
    assert reasons(records) == {None: 1, "error:ConllFormatError": 1}
    assert "conll_bad_columns/train.txt:6: expected 4 columns" in error_of(records)
    tags = [json.loads(r["meta"])["ner_tags"] for r, _ in read("conll2003",
                                                               "conll_unknown_tag/train.txt")]
    assert tags == [["B-ORG", "O"], ["B-FOOD"]]  # the tasks stage counts it as unknown_ner_tag


def test_empty_files():
    assert reasons(read("wikipedia", "empty.xml.bz2")) == {"error:EOFError": 1}
    assert read("commoncrawl", "empty.warc.gz") == []
    assert read("conll2003", "conll_empty/train.txt") == []


def test_jsonl_with_broken_lines_keeps_the_good_ones():
    records = read("jsonl", "mixed.jsonl.gz", text_field="text", id_field="id")
    assert [(r["id"], reason) for r, reason in records] == [
        ("s/1", None), ("s/mixed.jsonl.gz:2", "invalid_json"), ("s/3", "text_not_a_string"),
        ("s/4", None)]


@pytest.mark.slow
def test_ingest_over_the_whole_bad_corpus_completes_and_adds_up(tmp_path):
    from pipelines import ingest
    from pipelines.manifest import materialize
    from pipelines.recipe import load_recipe

    recipe = tmp_path / "bad.toml"
    recipe.write_text(f"""name = "bad"
[[ingest.sources]]
kind = "wikipedia"
path = "{BAD}/*.xml*"
[[ingest.sources]]
kind = "commoncrawl"
path = "{BAD}/*.warc.gz"
[[ingest.sources]]
kind = "conll2003"
path = "{BAD}/conll_*/train.txt"
[[ingest.sources]]
kind = "imdb"
path = "{BAD}/aclImdb_hostile.tar.gz"
[[ingest.sources]]
kind = "jsonl"
path = "{BAD}/mixed.jsonl.gz"
""", encoding="utf-8")
    out = materialize(ingest, load_recipe(recipe).ingest, {}, tmp_path / "root")
    c = out.counters
    assert c["in"] == c["out"] + sum(v for k, v in c.items() if k.startswith(("dropped:",
                                                                              "error:")))
    assert c["error:EOFError"] == 2 and c["error:corrupt_record"] == 1
    assert c["error:XMLSyntaxError"] == 1 and c["error:ConllFormatError"] == 1
    rejected = pq.read_table(out.path / "rejected").to_pylist()
    assert all(r["reason"] for r in rejected)


@pytest.mark.slow
def test_a_50_mb_single_line_document_goes_through_clean_and_dedup(tmp_path):
    from pipelines import clean, dedup, ingest
    from pipelines.manifest import materialize
    from pipelines.recipe import load_recipe

    words = ["lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit",
             "sed", "do", "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore",
             "magna", "aliqua"]
    import random

    rng = random.Random(0)
    text = " ".join(rng.choice(words) + str(rng.randrange(1000)) for _ in range(5_500_000))
    assert len(text) > 50_000_000
    (tmp_path / "big.jsonl").write_text(json.dumps({"id": "big", "text": text}) + "\n" +
                                        json.dumps({"id": "small", "text": "a small doc"}) + "\n")
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "big"\n[[ingest.sources]]\nkind = "jsonl"\n'
                      f'path = "{tmp_path}/big.jsonl"\n[clean]\nmin_chars = 1\nfilters = []\n',
                      "utf-8")
    r = load_recipe(recipe)
    i = materialize(ingest, r.ingest, {}, tmp_path / "root")
    c = materialize(clean, r.clean, {"ingest": i}, tmp_path / "root")
    d = materialize(dedup, r.dedup, {"clean": c}, tmp_path / "root")
    assert d.counters["out"] == 2
    kept = pq.read_table(d.path / "docs", columns=["id", "text"]).to_pylist()
    assert {row["id"]: len(row["text"]) for row in kept}["jsonl/big"] == len(text)
