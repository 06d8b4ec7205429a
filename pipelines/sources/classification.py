"""Labelled text in a CSV or TSV file with a header row -> one Document per row, for text
classification (ChnSentiCorp's `label,review` among them).

Contract: `read(path, source, text_field, label_field, label_names, split_field,
test_fraction, split_seed, delimiter, id_field)` yields one Document per data row: `text` from
`text_field`, `meta.label` the row's label (mapped through `label_names` where given),
`meta.label_value` the value as written, `meta.file` and `meta.line`. The split comes from
`split_field` where the recipe names one (train, validation|dev|valid, test), else from a seeded
hash of the text: a stable split, so the same text is always in the same split, a duplicate
review never lands on both sides, and adding rows moves no other row. Ids are
`<source>/<id_field value>` or `<source>/<file stem>:<line>`.

Bad input: a header without the named columns, a row with the wrong number of fields, a label
outside `label_names` or a split value outside the known names is an error naming the file and
line (the rows before it are kept); a row with an empty text is a rejected record
(`empty_text`) naming its line.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterator

from pipelines.schema import Document

SPLIT_NAMES = {"train": "train", "validation": "validation", "valid": "validation",
               "dev": "validation", "test": "test"}


class ClassificationFormatError(ValueError):
    pass


def hash_split(text: str, test_fraction: float, seed: int) -> str:
    """'test' for a `test_fraction` share of texts, chosen by a keyed hash of the text."""
    digest = hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=8,
                             key=seed.to_bytes(8, "little")).digest()
    return "test" if int.from_bytes(digest, "little") / 2**64 < test_fraction else "train"


def read(path: str, source: str, text_field: str = "text", label_field: str = "label",
         label_names: dict[str, str] | None = None, split_field: str | None = None,
         test_fraction: float = 0.2, split_seed: int = 0, delimiter: str | None = None,
         id_field: str | None = None) -> Iterator[tuple[Document, str | None]]:
    if delimiter is None:
        delimiter = "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","
    name = os.path.basename(path)
    stem = name.split(".")[0]
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise ClassificationFormatError(f"{path}: empty file (a header row is needed)")
        wanted = [f for f in (text_field, label_field, split_field, id_field) if f]
        missing = [f for f in wanted if f not in header]
        if missing:
            raise ClassificationFormatError(
                f"{path}:1: no column {missing[0]!r} in the header {header[:10]} "
                f"(delimiter {delimiter!r})")
        col = {f: header.index(f) for f in wanted}
        for fields in reader:
            line = reader.line_num
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                raise ClassificationFormatError(
                    f"{path}:{line}: {len(fields)} fields, the header has {len(header)}")
            raw = fields[col[label_field]].strip()
            if label_names is not None and raw not in label_names:
                raise ClassificationFormatError(
                    f"{path}:{line}: label {raw!r} is not one of {sorted(label_names)}")
            text = fields[col[text_field]].strip()
            if split_field:
                value = fields[col[split_field]].strip().lower()
                if value not in SPLIT_NAMES:
                    raise ClassificationFormatError(
                        f"{path}:{line}: split {value!r} is not one of {sorted(SPLIT_NAMES)}")
                split = SPLIT_NAMES[value]
            else:
                split = hash_split(text, test_fraction, split_seed)
            native = fields[col[id_field]].strip() if id_field else ""
            doc_id = f"{source}/{native}" if native else f"{source}/{stem}:{line}"
            meta = {"label": label_names[raw] if label_names is not None else raw,
                    "label_value": raw, "file": name, "line": line}
            doc = Document(id=doc_id, source=source, split=split, text=text, meta=meta)
            yield (doc, None) if text else (doc, "empty_text")
