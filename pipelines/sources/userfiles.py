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
import json
import os
from collections.abc import Iterator
from typing import Any

import pyarrow.parquet as pq

from pipelines.schema import Document


def _document(record: dict[str, Any], source: str, path: str, number: int, text_field: str,
              id_field: str | None) -> tuple[Document, str | None]:
    name = os.path.basename(path)
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


def read_jsonl(path: str, source: str, text_field: str = "text",
               id_field: str | None = "id") -> Iterator[tuple[Document, str | None]]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                reason, error = (None, "") if isinstance(record, dict) else (
                    "not_a_json_object", "not a JSON object")
            except json.JSONDecodeError as exc:
                reason, error = "invalid_json", f"invalid JSON ({exc.msg} at column {exc.colno})"
            if reason:
                bad = Document(id=f"{source}/{os.path.basename(path)}:{number}", source=source,
                               split="train", text=line[:1000],
                               meta={"file": os.path.basename(path), "record": number,
                                     "error": f"{path}:{number}: {error}"})
                yield bad, reason
                continue
            yield _document(record, source, path, number, text_field, id_field)


def read_parquet(path: str, source: str, text_field: str = "text",
                 id_field: str | None = "id") -> Iterator[tuple[Document, str | None]]:
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            number += 1
            yield _document(record, source, path, number, text_field, id_field)
