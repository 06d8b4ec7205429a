"""CoNLL-2003 column files (`token POS chunk NER`) -> one Document per sentence.

Contract: `read(path, source)` yields one Document per sentence: `text` is the tokens joined by
spaces, `meta` holds tokens, pos_tags, chunk_tags, ner_tags and the index of the `-DOCSTART-`
document it belongs to. The split comes from the file name (train / valid|testa|dev / test|testb).
IOB1 tags (the original eng.train/testa/testb) are converted to IOB2 (`meta.converted_from_iob1`).
A line without exactly four columns is an error naming the file and line.
Reference: Tjong Kim Sang & De Meulder, CoNLL 2003, https://aclanthology.org/W03-0419/
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from pipelines.schema import Document

_SPLIT_NAMES = {"train": "train", "valid": "validation", "dev": "validation", "testa": "validation",
                "test": "test", "testb": "test"}


_TAG = re.compile(r"^(O|[BI]-[A-Za-z][\w-]*)$")


class ConllFormatError(ValueError):
    pass


def split_of(path: str) -> str:
    stem = os.path.basename(path).lower()
    for part in (stem.split(".")[0], stem.rsplit(".", 1)[-1]):  # train.txt, eng.testa
        if part in _SPLIT_NAMES:
            return _SPLIT_NAMES[part]
    raise ConllFormatError(f"{path}: cannot tell the split from the file name "
                           f"(expected one of {sorted(_SPLIT_NAMES)})")


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 (B- only between adjacent entities of one type) -> IOB2 (B- opens every entity).
    IOB2 input comes back unchanged, so the reader converts every sentence it reads."""
    out = []
    previous = "O"
    for tag in tags:
        if tag.startswith("I-") and (previous == "O" or previous[2:] != tag[2:]):
            tag = "B-" + tag[2:]
        out.append(tag)
        previous = tag
    return out


def read(path: str, source: str) -> Iterator[tuple[Document, str | None]]:
    split = split_of(path)
    doc_index = -1
    sentence_index = 0
    rows: list[list[str]] = []

    def sentence() -> Document:
        tokens, pos, chunk, ner = (list(col) for col in zip(*rows, strict=True))
        iob2_chunk, iob2_ner = iob1_to_iob2(chunk), iob1_to_iob2(ner)
        meta = {"tokens": tokens, "pos_tags": pos, "chunk_tags": iob2_chunk,
                "ner_tags": iob2_ner, "doc_index": doc_index, "sentence_index": sentence_index}
        if iob2_ner != ner or iob2_chunk != chunk:
            meta["converted_from_iob1"] = True
        return Document(id=f"{source}/{split}/{sentence_index:06d}", source=source, split=split,
                        text=" ".join(tokens), meta=meta)

    with open(path, encoding="utf-8", errors="replace") as fh:  # bad bytes -> U+FFFD
        for line_no, line in enumerate(fh, start=1):
            cols = line.split()
            if not cols:
                if rows:
                    yield sentence(), None
                    sentence_index += 1
                    rows = []
                continue
            if cols[0] == "-DOCSTART-":
                if rows:
                    yield sentence(), None
                    sentence_index += 1
                    rows = []
                doc_index += 1
                continue
            if len(cols) != 4:
                raise ConllFormatError(
                    f"{path}:{line_no}: expected 4 columns (token POS chunk NER), got {len(cols)}: "
                    f"{line.rstrip()[:80]!r}")
            for column, tag in ((2, cols[2]), (3, cols[3])):
                if not _TAG.match(tag):
                    raise ConllFormatError(
                        f"{path}:{line_no}: column {column + 1} {tag!r} is not an IOB tag "
                        "(O, B-TYPE or I-TYPE)")
            rows.append(cols)
    if rows:
        yield sentence(), None
