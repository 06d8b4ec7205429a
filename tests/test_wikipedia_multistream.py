"""A multistream dump and index built from the real sample, in the layout Wikimedia publishes,
read by byte ranges: the same pages as reading the whole dump, split across several inputs."""

import bz2
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.sources import wikipedia


def build_multistream(sample: Path, folder: Path, pages_per_stream: int = 20) -> Path:
    """Header stream, streams of `pages_per_stream` pages, footer stream; index offset:id:title."""
    xml = bz2.decompress(sample.read_bytes())
    header_end = xml.index(b"</siteinfo>") + len(b"</siteinfo>\n")
    pages = re.findall(rb"  <page>.*?</page>\n", xml[header_end:], flags=re.S)
    dump = folder / "enwiki-20160501-pages-articles-multistream.xml.bz2"
    index_lines = []
    with open(dump, "wb") as out:
        out.write(bz2.compress(xml[:header_end]))
        for k in range(0, len(pages), pages_per_stream):
            offset = out.tell()
            group = pages[k: k + pages_per_stream]
            for page in group:
                page_id = re.search(rb"<id>(\d+)</id>", page).group(1).decode()
                title = re.search(rb"<title>(.*?)</title>", page).group(1).decode()
                index_lines.append(f"{offset}:{page_id}:{title}")
            out.write(bz2.compress(b"".join(group)))
        out.write(bz2.compress(b"</mediawiki>\n"))
    index = folder / "enwiki-20160501-pages-articles-multistream-index.txt.bz2"
    index.write_bytes(bz2.compress(("\n".join(index_lines) + "\n").encode()))
    return dump


@pytest.fixture(scope="module")
def multistream(corpora, tmp_path_factory) -> Path:
    sample = next((corpora / "wikipedia_xml").glob("*.bz2"))
    return build_multistream(sample, tmp_path_factory.mktemp("multistream"))


def test_ranges_cover_every_page_once_and_match_the_plain_dump(corpora, multistream):
    sample = next((corpora / "wikipedia_xml").glob("*.bz2"))
    ranges = wikipedia.stream_ranges(str(multistream), max_bytes=200_000)
    assert len(ranges) > 3
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    inputs = wikipedia.list_files(str(multistream.parent))  # the index is not an input itself
    assert inputs == [f"{multistream}#{a}-{b}" for a, b in wikipedia.stream_ranges(
        str(multistream))]
    from_ranges = [r for a, b in ranges for r in
                   wikipedia.read_streams(str(multistream), a, b, "wikipedia")]
    plain = list(wikipedia.read(str(sample), "wikipedia"))
    assert [(d.id, d.text, r) for d, r in from_ranges] == [(d.id, d.text, r) for d, r in plain]
    assert sum(r is None for _, r in from_ranges) == 106


def test_ingest_fans_a_multistream_dump_out_over_two_workers(multistream, tmp_path):
    from pipelines import ingest
    from pipelines.manifest import RunOptions, materialize
    from pipelines.recipe import load_recipe

    recipe = tmp_path / "r.toml"
    recipe.write_text(f'name = "w"\n[[ingest.sources]]\nkind = "wikipedia"\n'
                      f'path = "{multistream.parent}"\n', encoding="utf-8")
    cfg = load_recipe(recipe).ingest
    one = materialize(ingest, cfg, {}, tmp_path / "one")
    two = materialize(ingest, cfg, {}, tmp_path / "two", RunOptions(workers=2))
    assert one.counters == two.counters
    assert {k: v for k, v in one.counters.items() if k != "text_bytes"} == {
        "in": 206, "out": 106, "dropped:redirect": 100}
    for part in sorted((one.path / "docs").glob("*.parquet")):
        assert part.read_bytes() == (two.path / "docs" / part.name).read_bytes()
    assert pq.read_table(one.path / "docs").num_rows == 106
