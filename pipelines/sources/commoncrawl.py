"""Common Crawl WARC / WET / WAT files (and any WARC/1.x, e.g. wget's) -> one Document per page.

Contract: `read(path, source) -> Iterator[(Document, reason | None)]`, streaming records with
warcio. HTTP 200 HTML `response` records -> main text (pipelines/sources/html_text.py) from HTML
decoded by the HTTP or <meta> charset (undecodable bytes replaced, and counted in
`meta.decode_errors`); WET `conversion` records -> their text as it is. Every other record
(warcinfo, request, metadata, WAT JSON, resource, revisit, non-HTML or non-200 responses) comes back
with its reason, so the counts of a file add up to its records.
Reference: https://iipc.github.io/warc-specifications/ (WARC 1.1), https://commoncrawl.org/get-started
"""

from __future__ import annotations

import codecs
import os
import re
import zlib
from collections.abc import Iterator
from urllib.parse import urlsplit

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord

from pipelines.schema import Document
from pipelines.sources.html_text import extract_main_text

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_GZIP_MAGIC = b"\x1f\x8b\x08"
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)


def read(path: str, source: str) -> Iterator[tuple[Document, str | None]]:
    """Every record of a WARC/WET/WAT file. A record that cannot be read (a truncated gzip member,
    bytes that are not gzip, a broken header) becomes an `error:corrupt_record` naming the file
    and offset, and reading resumes at the next record boundary found after it."""
    with open(path, "rb") as fh:
        head = fh.read(8)
        if path.endswith(".gz") and head and not head.startswith(_GZIP_MAGIC[:2]):
            raise ValueError(f"{path}: named .gz but is not gzip (starts with {head!r})")
        if not path.endswith(".gz") and head and not head.startswith((b"WARC/", b"\x1f\x8b")):
            raise ValueError(f"{path}: not a WARC file (starts with {head!r})")
        start = 0
        while start is not None:
            fh.seek(start)
            iterator = ArchiveIterator(fh, arc2warc=True)
            record_start = start  # where the record being read begins
            try:
                for record in iterator:
                    doc = record_to_document(record, source)
                    # Only now: warcio reads a record to its end to report its offset.
                    iterator.read_to_end(record)
                    record_start = (start + iterator.get_record_offset()
                                    + iterator.get_record_length())  # the next record's start
                    yield doc
                start = None
            except (ArchiveLoadFailed, OSError, EOFError, zlib.error, ValueError) as exc:
                yield Document(id=f"{source}/corrupt:{os.path.basename(path)}@{record_start}",
                               source=source, split="train", text="",
                               meta={"path": path, "offset": record_start,
                                     "error": f"{path}@{record_start}: {exc}"[:500]},
                               ), "error:corrupt_record"
                start = _next_record_boundary(fh, record_start + 1)


def _next_record_boundary(fh, offset: int) -> int | None:
    """The next gzip member (per-record compressed WARC) or `WARC/` line after `offset`."""
    fh.seek(offset)
    data = fh.read()
    hits = [i for i in (data.find(_GZIP_MAGIC), data.find(b"\nWARC/1.")) if i >= 0]
    if not hits:
        return None
    first = min(hits)
    return offset + first + (1 if data[first:first + 1] == b"\n" else 0)


def _record_id(record: ArcWarcRecord) -> str:
    rid = record.rec_headers.get_header("WARC-Record-ID") or ""
    return rid.strip("<>").removeprefix("urn:uuid:")


def record_to_document(record: ArcWarcRecord, source: str) -> tuple[Document, str | None]:
    headers = record.rec_headers
    url = (headers.get_header("WARC-Target-URI") or "").strip("<>")
    meta = {
        "url": url,
        "domain": urlsplit(url).hostname or "",
        "warc_record_id": headers.get_header("WARC-Record-ID") or "",
        "warc_date": headers.get_header("WARC-Date") or "",
        "warc_type": record.rec_type,
    }
    language = headers.get_header("WARC-Identified-Content-Language")
    if language:
        meta["crawl_language"] = language  # Common Crawl's own CLD2 guess (ISO 639-3)
    doc = Document(id=f"{source}/{_record_id(record)}", source=source, split="train", text="",
                   meta=meta)

    if record.rec_type == "conversion":
        raw = record.content_stream().read()
        doc.text, meta["decode_errors"] = _decode(raw, "utf-8")
        return (doc, None) if doc.text.strip() else (doc, "empty_text")
    if record.rec_type != "response":
        return doc, f"warc_{record.rec_type}"
    if record.http_headers is None:
        return doc, "not_http"
    status = record.http_headers.get_statuscode()
    if status != "200":
        meta["http_status"] = status
        return doc, "http_status"
    content_type = (record.http_headers.get_header("Content-Type") or "").lower()
    if not content_type.startswith(_HTML_TYPES):
        meta["content_type"] = content_type
        return doc, "not_html"
    raw = record.content_stream().read()
    html, meta["decode_errors"] = _decode(raw, _charset(content_type, raw))
    doc.text = extract_main_text(html)
    return (doc, None) if doc.text else (doc, "no_main_text")


def decode_html(raw: bytes, content_type: str = "") -> str:
    """HTML bytes -> text, by the HTTP or <meta> charset (UTF-8 otherwise), errors replaced."""
    return _decode(raw, _charset(content_type.lower(), raw))[0]


def _charset(content_type: str, raw: bytes) -> str:
    for candidate in (_HEADER_CHARSET.search(content_type), _META_CHARSET.search(raw[:4096])):
        if candidate:
            name = candidate.group(1)
            name = name.decode("ascii", "replace") if isinstance(name, bytes) else name
            try:
                return codecs.lookup(name).name
            except LookupError:
                continue
    return "utf-8"


def _decode(raw: bytes, charset: str) -> tuple[str, int]:
    """Decode, replacing undecodable bytes; return the text and how many replacements were made."""
    try:
        return raw.decode(charset), 0
    except UnicodeDecodeError:
        text = raw.decode(charset, errors="replace")
        return text, text.count("\ufffd")
