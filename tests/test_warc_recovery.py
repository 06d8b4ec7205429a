"""A broken record in the middle of a real .warc.gz is counted and skipped; the records after it
are still read."""

from collections import Counter

from warcio.archiveiterator import ArchiveIterator

from pipelines.sources import commoncrawl


def member_bounds(data_path) -> list[tuple[int, int, str]]:
    bounds = []
    with open(data_path, "rb") as fh:
        iterator = ArchiveIterator(fh)
        for record in iterator:
            kind = record.rec_type
            iterator.read_to_end(record)
            bounds.append((iterator.get_record_offset(), iterator.get_record_length(), kind))
    return bounds


def reasons(path) -> Counter:
    return Counter(reason for _, reason in commoncrawl.read(str(path), "cc"))


def test_truncated_gzip_member_is_skipped_and_the_rest_is_read(corpora, tmp_path):
    source = corpora / "commoncrawl_warc" / "warcfile.warc.gz"
    data = source.read_bytes()
    bounds = member_bounds(source)
    k = next(i for i, b in enumerate(bounds) if b[2] == "response" and i > 10)
    offset, length, _ = bounds[k]
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(data[: offset + length // 2] + data[offset + length:])
    got = reasons(broken)
    assert got["error:corrupt_record"] == 1
    assert got[None] == 15  # 16 pages, one of them broken
    assert got["warc_request"] == 17 and got["warc_metadata"] == 16


def test_non_gzip_bytes_between_members_are_skipped(corpora, tmp_path):
    source = corpora / "commoncrawl_warc" / "warcfile.warc.gz"
    data = source.read_bytes()
    offset = member_bounds(source)[5][0]
    garbage = tmp_path / "garbage.warc.gz"
    garbage.write_bytes(data[:offset] + b"this is not gzip at all\n" * 20 + data[offset:])
    got = reasons(garbage)
    assert got["error:corrupt_record"] == 1
    assert got[None] == 16


def test_a_clean_file_reports_no_errors(corpora):
    got = reasons(corpora / "commoncrawl_warc" / "warcfile.warc.gz")
    assert "error:corrupt_record" not in got and got[None] == 16
