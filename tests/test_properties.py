"""Property-based tests: arbitrary input never crashes the parsers and filters; where a parser
gives up, it raises only the errors the ingest stage records as `error:<kind>`."""

import gzip
import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import filters
from pipelines.ingest import READ_ERRORS
from pipelines.minhash import MinHasher
from pipelines.sources import commoncrawl, conll2003, userfiles, wikipedia

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TAGS = st.sampled_from(["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "I-LOC", "B-MISC"])


def consume(reader, data: bytes, name: str, **kwargs) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        try:
            for doc, reason in reader(str(path), "p", **kwargs):
                assert isinstance(doc.text, str) and (reason is None or isinstance(reason, str))
        except READ_ERRORS:
            pass  # recorded by the ingest stage as error:<kind> with the file named


@SETTINGS
@given(st.text())
def test_wikitext_conversion_never_crashes(text):
    out = wikipedia.wikitext_to_text(text)
    assert isinstance(out, str)


@SETTINGS
@given(st.text())
def test_normalize_is_idempotent(text):
    once = filters.normalize(text)
    assert filters.normalize(once) == once


@SETTINGS
@given(st.binary(max_size=2000))
def test_wikipedia_reader_on_arbitrary_bytes(data):
    consume(wikipedia.read, data, "pages-articles.xml")


@SETTINGS
@given(st.binary(max_size=2000))
def test_warc_reader_on_arbitrary_bytes(data):
    consume(commoncrawl.read, data, "x.warc")
    consume(commoncrawl.read, gzip.compress(data), "x.warc.gz")
    consume(commoncrawl.read, b"WARC/1.0\r\n" + data, "y.warc")


@SETTINGS
@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc")),
                                 min_size=1, max_size=5), min_size=0, max_size=6), max_size=20))
def test_conll_reader_on_arbitrary_rows(rows):
    data = "\n".join(" ".join(cols) for cols in rows).encode("utf-8")
    consume(conll2003.read, data, "train.txt")


@SETTINGS
@given(st.lists(st.one_of(st.text(), st.dictionaries(st.text(max_size=5), st.one_of(
    st.text(), st.integers(), st.none()))), max_size=10))
def test_jsonl_reader_on_arbitrary_lines(items):
    lines = [json.dumps(i) if isinstance(i, dict) else i.replace("\n", " ") for i in items]
    consume(userfiles.read_jsonl, "\n".join(lines).encode("utf-8"), "x.jsonl")


@SETTINGS
@given(st.lists(TAGS, max_size=30))
def test_iob2_conversion_is_idempotent_and_starts_every_entity_with_b(tags):
    converted = conll2003.iob1_to_iob2(tags)
    assert conll2003.iob1_to_iob2(converted) == converted
    for previous, tag in zip(["O", *converted], converted, strict=False):
        if tag.startswith("I-"):
            assert previous[2:] == tag[2:]


HASHER = MinHasher(num_perm=32, seed=1, ngram=5)


@SETTINGS
@given(st.lists(st.text(max_size=300), min_size=1, max_size=8))
def test_signatures_have_one_row_per_document(texts):
    sigs = HASHER.signatures(texts)
    assert sigs.shape == (len(texts), 32) and sigs.dtype == np.uint32
