"""Users' own corpora: JSON Lines (`.jsonl`, `.jsonl.gz`, `.json.gz`) and Parquet files.

Contract: `read_jsonl(path, source, text_field, id_field)` / `read_parquet(...)` yield one
Document per record: `text` from `text_field`, id `<source>/<value of id_field>` (or
`<source>/<file name>:<record number>` when `id_field` is empty or the record lacks it), every
other field in `meta` with the file and record number. A record without the text field, with a
non-string text, or (JSONL) a line that is not a JSON object comes back as a rejected record whose
reason names the problem and whose meta names the file and line; the rest of the file is still read.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow.parquet as pq
from isal import igzip

from pipelines.schema import Document


def _document(record: dict[str, Any], source: str, name: str, number: int, text_field: str,
              id_field: str | None) -> tuple[Document, str | None]:
    """`name`: the file's base name."""
    native = record.get(id_field) if id_field else None
    doc_id = f"{source}/{native}" if native not in (None, "") else f"{source}/{name}:{number}"
    meta = {k: v for k, v in record.items() if k not in (text_field, id_field)}
    meta.update({"file": name, "record": number})
    text = record.get(text_field)
    doc = Document(id=doc_id, source=source, split="train",
                   text=text if isinstance(text, str) else "", meta=meta)
    if text_field not in record:
        return doc, "missing_text_field"
    if not isinstance(text, str):
        return doc, "text_not_a_string"
    return doc, None if text.strip() else "empty_text"


_STDLIB = object()  # _parse's answer: parse this line with `json`
_SURROGATE = re.compile("[\ud800-\udfff]")
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")


def _big_float(value: Any) -> bool:
    """Whether a parsed value holds a whole float of 2**63 or more: an integer orjson could
    not hold (it parses them as floats; every other number it parses exactly as `json`)."""
    if isinstance(value, float):
        return abs(value) >= 2.0**63 and value.is_integer()
    if isinstance(value, dict):
        return any(map(_big_float, value.values()))
    if isinstance(value, list):
        return any(map(_big_float, value))
    return False


def _parse(line: bytes) -> Any:
    """`json.loads` of a line, by orjson (4x faster) where that gives the same value. orjson
    rejects NaN, lone surrogates and invalid UTF-8, and turns integers past 64 bits into
    floats: such a line is parsed again by `json`."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return _STDLIB
    return _STDLIB if _big_float(record) else record


def _without_surrogates(value: Any) -> Any:
    """A parsed value with each lone surrogate (a JSON escape such as "\\ud800", which no UTF-8
    text can hold) replaced by U+FFFD, as the reader replaces invalid UTF-8 bytes."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def _raw_lines(path: str) -> Iterator[bytes]:
    """A file's lines split at "\n"; gzip by ISA-L, 3x zlib's speed. ISA-L gives up on a
    damaged or truncated gzip up to half a megabyte before the fault, so then the file is read
    again by zlib from the first line not yet given: every whole line before the fault is kept,
    and zlib's error is the one raised."""
    if not path.endswith(".gz"):
        with open(path, "rb") as fh:
            yield from fh
        return
    given = 0
    try:
        with igzip.open(path, "rb") as fh:
            for line in fh:
                given += 1
                yield line
    except Exception:  # noqa: BLE001 (zlib decides, below)
        with gzip.open(path, "rb") as fh:
            yield from itertools.islice(fh, given, None)


def _lines(path: str) -> Iterator[bytes]:
    """The lines of a file as text mode reads them, before decoding: "\r\n" and a lone "\r"
    end a line too, and each line ends in "\n" (the last as the file does)."""
    for line in _raw_lines(path):
        if b"\r" not in line:
            yield line
            continue
        pieces = _LINE_BREAK.split(line)  # neither byte occurs inside a UTF-8 sequence
        yield from (piece + b"\n" for piece in pieces[:-1])
        if pieces[-1]:
            yield pieces[-1]


def read_jsonl(path: str, source: str, text_field: str = "text",
               id_field: str | None = "id") -> Iterator[tuple[Document, str | None]]:
    name = os.path.basename(path)
    for number, raw in enumerate(_lines(path), start=1):
        record = _parse(raw)
        if record is _STDLIB or not isinstance(record, dict):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                record = _without_surrogates(json.loads(line))
                reason, error = (None, "") if isinstance(record, dict) else (
                    "not_a_json_object", "not a JSON object")
            except json.JSONDecodeError as exc:
                reason, error = "invalid_json", f"invalid JSON ({exc.msg} at column {exc.colno})"
            if reason:
                bad = Document(id=f"{source}/{name}:{number}", source=source,
                               split="train", text=line[:1000],
                               meta={"file": name, "record": number,
                                     "error": f"{path}:{number}: {error}"})
                yield bad, reason
                continue
        yield _document(record, source, name, number, text_field, id_field)


def read_parquet(path: str, source: str, text_field: str = "text",
                 id_field: str | None = "id") -> Iterator[tuple[Document, str | None]]:
    name = os.path.basename(path)
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            number += 1
            yield _document(record, source, name, number, text_field, id_field)
