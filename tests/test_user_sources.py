"""Users' own corpora (JSONL, Parquet), IOB1 CoNLL input, and the aclImdb tarball read in place."""

import gzip
import io
import json
import tarfile
import tempfile
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.ingest import READERS, read_source_file
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


def read_jsonl_reference(path, source, text_field="text", id_field="id"):
    """The JSONL reader before orjson and ISA-L: text mode, `json.loads` per line."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = userfiles._without_surrogates(json.loads(line))  # as the reader does
                reason, error = (None, "") if isinstance(record, dict) else (
                    "not_a_json_object", "not a JSON object")
            except json.JSONDecodeError as exc:
                reason, error = "invalid_json", f"invalid JSON ({exc.msg} at column {exc.colno})"
            if reason:
                yield userfiles.Document(
                    id=f"{source}/{path.rsplit('/', 1)[-1]}:{number}", source=source,
                    split="train", text=line[:1000],
                    meta={"file": path.rsplit("/", 1)[-1], "record": number,
                          "error": f"{path}:{number}: {error}"}), reason
                continue
            yield userfiles._document(record, source, path.rsplit("/", 1)[-1], number,
                                      text_field, id_field)


def _same_as_reference(path, **fields):
    new = [(d.to_row(), r) for d, r in userfiles.read_jsonl(str(path), "s", **fields)]
    old = [(d.to_row(), r) for d, r in read_jsonl_reference(str(path), "s", **fields)]
    assert new == old
    return new


# Lines orjson reads differently from `json`, or refuses, and line ends text mode splits on.
AWKWARD = [b'{"id": 1, "text": "big", "n": 123456789012345678901234567890}',
           b'{"id": 2, "text": "nan", "x": NaN, "y": [1.5, {"z": -0.0}]}',
           b'{"id": 3, "text": "lone \\ud800 surrogate"}', b'\xef\xbb\xbf{"id": 4, "text": "bom"}',
           b'{"id": 5, "text": "bad \xff\xfe utf-8"}', b'{"id": 6, "text": "a\r{"id": 7}',
           b'{"id": 8, "text": "crlf"}\r', b'\xe3\x80\x80', b'[1, 2]', b'"text"', b'  ',
           b'{"id": 9, "text": "tab\tinside"}', b'{"id": 10, "text": "dup", "id": 11}',
           b'{"id": 12, "text": "nested", "m": {"a": [1, 2, {"b": null}]}}']


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(AWKWARD),
                          st.binary(max_size=40),
                          st.dictionaries(st.sampled_from(["id", "text", "k", "n"]), st.one_of(
                              st.text(), st.integers(min_value=-2**70, max_value=2**70),
                              st.floats(), st.none(), st.booleans()), max_size=4).map(
                              lambda d: json.dumps(d).encode("utf-8"))), max_size=12),
       st.sampled_from([b"\n", b"\r\n", b"\r"]), st.booleans())
def test_jsonl_reader_matches_the_text_mode_json_reader(lines, newline, gz):
    data = newline.join(lines) + newline
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("x.jsonl.gz" if gz else "x.jsonl")
        path.write_bytes(gzip.compress(data) if gz else data)
        _same_as_reference(path)


def test_jsonl_reader_matches_the_reference_on_real_files(corpora, tmp_path):
    ccnet = _same_as_reference(corpora / "chinese_web_ccnet" / "cleared1.jsonl",
                               text_field="raw_content", id_field="digest")
    assert len(ccnet) == 100 and all(r is None for _, r in ccnet)
    # Awkward lines beside real pages, gzipped with CRLF line ends.
    pages = (corpora / "chinese_web_ccnet" / "cleared1.jsonl").read_bytes().splitlines()[:20]
    path = tmp_path / "mixed.jsonl.gz"
    path.write_bytes(gzip.compress(b"\r\n".join(pages[:10] + AWKWARD + pages[10:]) + b"\r\n"))
    rows = _same_as_reference(path, text_field="raw_content", id_field="digest")
    assert sum(r is None for _, r in rows) == 20  # the awkward lines have no raw_content


def test_a_lone_surrogate_escape_becomes_a_replacement_character_not_a_failed_stage(tmp_path):
    # "\ud800" is valid JSON but no UTF-8 text: before, it reached the Parquet writer and the
    # ingest stage died with a UnicodeEncodeError that named no file.
    path = tmp_path / "s.jsonl"
    path.write_text('{"id": "a", "text": "one \\ud800 two", "tag": ["\\udfff"]}\n'
                    '{"id": "b", "text": "a pair \\ud83d\\ude00 stays"}\n', encoding="utf-8")
    (a, reason_a), (b, reason_b) = userfiles.read_jsonl(str(path), "s")
    assert (a.text, a.meta["tag"], reason_a) == ("one \ufffd two", ["\ufffd"], None)
    assert (b.text, reason_b) == ("a pair \U0001F600 stays", None)
    assert pa.Table.from_pylist([a.to_row(), b.to_row()]).num_rows == 2


FIELDS = {"text_field": "raw_content", "id_field": "digest"}


def _reference_rows(path, monkeypatch):
    """What the ingest stage read from a file with the reference reader."""
    with monkeypatch.context() as patch:
        patch.setitem(READERS, "jsonl", types.SimpleNamespace(read=read_jsonl_reference))
        return list(read_source_file("jsonl", "s", str(path), FIELDS))


def test_a_truncated_or_damaged_gzip_keeps_every_line_before_the_fault(corpora, tmp_path,
                                                                        monkeypatch):
    # ISA-L stops up to half a megabyte short of a fault; zlib reads on to it.
    pages = (corpora / "chinese_web_ccnet" / "cleared1.jsonl").read_bytes()
    whole = gzip.compress(pages, mtime=0)
    damaged = bytearray(whole)
    damaged[len(whole) * 2 // 3] ^= 0xFF
    for name, data in (("cut.jsonl.gz", whole[: len(whole) * 2 // 3]),
                       ("damaged.jsonl.gz", bytes(damaged))):
        path = tmp_path / name
        path.write_bytes(data)
        new = [(d, r) for d, r in read_source_file("jsonl", "s", str(path), FIELDS)]
        old = _reference_rows(path, monkeypatch)
        assert new == old
        assert new[-1][1].startswith("error:") and len(new) > 30
