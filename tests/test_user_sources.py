"""Users' own corpora (JSONL, Parquet), IOB1 CoNLL input, and the aclImdb tarball read in place."""

import gzip
import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.sources import conll2003, imdb, userfiles


def test_jsonl_with_custom_fields_and_bad_lines(tmp_path):
    path = tmp_path / "corpus.jsonl.gz"
    lines = [json.dumps({"doc": "a1", "body": "First document text.", "lang": "en"}),
             "{not json",
             json.dumps(["a", "list"]),
             json.dumps({"doc": "a2", "title": "no body here"}),
             "",
             json.dumps({"body": "No id field, so the file and line name it."})]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    records = list(userfiles.read_jsonl(str(path), "mine", text_field="body", id_field="doc"))
    assert [(d.id, r) for d, r in records] == [
        ("mine/a1", None), ("mine/corpus.jsonl.gz:2", "invalid_json"),
        ("mine/corpus.jsonl.gz:3", "not_a_json_object"), ("mine/a2", "missing_text_field"),
        ("mine/corpus.jsonl.gz:6", None)]
    assert records[0][0].meta == {"lang": "en", "file": "corpus.jsonl.gz", "record": 1}
    assert records[1][0].meta["error"].endswith("corpus.jsonl.gz:2: invalid JSON "
                                                 "(Expecting property name enclosed in double "
                                                 "quotes at column 2)")


def test_parquet_with_custom_fields(tmp_path):
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"uid": ["x", "y"], "content": ["Some text.", None],
                             "score": [0.5, 0.7]}), path)
    records = list(userfiles.read_parquet(str(path), "pq", text_field="content", id_field="uid"))
    assert [(d.id, d.text, r) for d, r in records] == [("pq/x", "Some text.", None),
                                                       ("pq/y", "", "text_not_a_string")]
    assert records[0][0].meta["score"] == 0.5


def test_iob1_input_is_converted_to_iob2(corpora, tmp_path):
    gold = [d for d, _ in conll2003.read(str(corpora / "conll2003" / "valid.txt"), "c")][:300]

    def to_iob1(tags):
        out, previous = [], "O"
        for tag in tags:
            same_type_before = previous != "O" and previous[2:] == tag[2:]
            out.append("I-" + tag[2:] if tag.startswith("B-") and not same_type_before else tag)
            previous = tag
        return out

    path = tmp_path / "eng.testa"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("-DOCSTART- -X- -X- O\n\n")
        for d in gold:
            for row in zip(d.meta["tokens"], d.meta["pos_tags"], to_iob1(d.meta["chunk_tags"]),
                           to_iob1(d.meta["ner_tags"]), strict=True):
                fh.write(" ".join(row) + "\n")
            fh.write("\n")
    converted = [d for d, _ in conll2003.read(str(path), "c")]
    assert [d.meta["ner_tags"] for d in converted] == [d.meta["ner_tags"] for d in gold]
    assert [d.meta["chunk_tags"] for d in converted] == [d.meta["chunk_tags"] for d in gold]
    assert any(d.meta.get("converted_from_iob1") for d in converted)
    assert not any(d.meta.get("converted_from_iob1") for d in gold)


def test_imdb_tarball_is_read_in_place_and_hostile_members_are_rejected(corpora, tmp_path):
    root = corpora / "imdb_aclImdb"
    reviews = sorted((root / "aclImdb" / "train" / "pos").glob("*.txt"))[:20]
    path = tmp_path / "aclImdb_v1.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for review in reviews:
            tar.add(review, arcname=str(review.relative_to(root)))
        tar.add(root / "aclImdb" / "README", arcname="aclImdb/README")
        evil = tarfile.TarInfo("aclImdb/train/pos/../../../etc/evil_1_9.txt")
        evil.size = 4
        tar.addfile(evil, io.BytesIO(b"evil"))
        link = tarfile.TarInfo("aclImdb/train/pos/99999_9.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    records = list(imdb.read(str(path), "imdb"))
    kept = [d for d, r in records if r is None]
    assert len(kept) == 20 and all(d.meta["label"] == "pos" for d in kept)
    assert kept[0].text == reviews[0].read_text(encoding="utf-8").replace("<br />", "\n").strip()
    assert sorted(r for _, r in records if r) == ["tar_link", "tar_outside_layout",
                                                  "tar_unsafe_path"]
    assert not (tmp_path / "aclImdb").exists()  # nothing extracted


def test_ingest_stage_reads_user_jsonl_with_the_recipe_fields(tmp_path):
    from pipelines import ingest
    from pipelines.manifest import materialize
    from pipelines.recipe import load_recipe

    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text(
        json.dumps({"key": "1", "content": "hello world"}) + "\n{broken\n", encoding="utf-8")
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "mine"\n[[ingest.sources]]\nkind = "jsonl"\npath = "data"\n'
                      'text_field = "content"\nid_field = "key"\n', encoding="utf-8")
    out = materialize(ingest, load_recipe(recipe).ingest, {}, tmp_path / "root")
    # text_bytes: the UTF-8 bytes read, "hello world" and the rejected line "{broken\n"
    assert out.counters == {"in": 2, "out": 1, "dropped:invalid_json": 1, "text_bytes": 19}
    rows = pq.read_table(out.path / "docs").to_pylist()
    assert [(r["id"], r["text"]) for r in rows] == [("jsonl/1", "hello world")]
