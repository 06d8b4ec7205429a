"""CoNLL-2003 column files (`token POS chunk NER`) -> one Document per sentence.

Contract: `read(path, source)` yields one Document per sentence: `text` is the tokens joined by
spaces, `meta` holds tokens, pos_tags, chunk_tags, ner_tags and the index of the `-DOCSTART-`
document it belongs to. The split comes from the file name (train / valid|testa|dev / test|testb).
IOB1 tags (the original eng.train/testa/testb) are converted to IOB2 (`meta.converted_from_iob1`).
A line without exactly four columns is an error naming the file and line. The same reader takes
other CoNLL column layouts (the `conll` source kind: named columns, a separator, Weibo NER's
character tokens with a word-position digit).
Reference: Tjong Kim Sang & De Meulder, CoNLL 2003, https://aclanthology.org/W03-0419/
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from pipelines.schema import Document

_SPLIT_NAMES = {"train": "train", "valid": "validation", "dev": "validation", "testa": "validation",
                "test": "test", "testb": "test"}


_TAG = re.compile(r"^(O|[BI]-[A-Za-z][\w.-]*)$")  # B-PER.NOM: Weibo NER's name/nominal


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


CONLL2003_COLUMNS = ("token", "pos", "chunk", "ner")
_TAGGED = ("chunk", "ner")  # columns whose values must be IOB tags


def read(path: str, source: str, columns: list[str] | tuple[str, ...] = CONLL2003_COLUMNS,
         separator: str | None = None, strip_position_digit: bool = False, joiner: str = " "
         ) -> Iterator[tuple[Document, str | None]]:
    """One Document per sentence of a CoNLL column file. `columns` names the columns of a token
    line ("token" and "ner" required; CoNLL-2003's by default), `separator` splits them (None:
    any whitespace), `strip_position_digit` drops the word-position digit that ends each token
    of character-level sets (Weibo NER: 科0 技1), `joiner` joins tokens into the text ("" for
    characters). Every column but the token goes into `meta` as `<name>_tags`."""
    split = split_of(path)
    doc_index = -1
    sentence_index = 0
    rows: list[list[str]] = []
    columns = tuple(columns)
    width = len(columns)
    names = [("tokens" if c == "token" else f"{c}_tags") for c in columns]

    def sentence() -> Document:
        values = {name: list(col) for name, col in zip(names, zip(*rows, strict=True),
                                                        strict=True)}
        meta: dict = {}
        converted = False
        for column, name in zip(columns, names, strict=True):
            if column in _TAGGED:
                iob2 = iob1_to_iob2(values[name])
                converted |= iob2 != values[name]
                values[name] = iob2
        meta.update(values)
        meta.update({"doc_index": doc_index, "sentence_index": sentence_index})
        if converted:
            meta["converted_from_iob1"] = True
        return Document(id=f"{source}/{split}/{sentence_index:06d}", source=source, split=split,
                        text=joiner.join(values["tokens"]), meta=meta)

    with open(path, encoding="utf-8", errors="replace") as fh:  # bad bytes -> U+FFFD
        for line_no, line in enumerate(fh, start=1):
            stripped = line.rstrip("\r\n")
            cols = stripped.split(separator) if stripped.strip() else []
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
            if len(cols) != width:
                raise ConllFormatError(
                    f"{path}:{line_no}: expected {width} columns ({' '.join(columns)}), got "
                    f"{len(cols)}: {stripped[:80]!r}")
            for k, column in enumerate(columns):
                if column in _TAGGED and not _TAG.match(cols[k]):
                    raise ConllFormatError(
                        f"{path}:{line_no}: column {k + 1} {cols[k]!r} is not an IOB tag "
                        "(O, B-TYPE or I-TYPE)")
            if strip_position_digit:
                token = cols[columns.index("token")]
                if len(token) < 2 or not token[-1].isdigit():
                    raise ConllFormatError(
                        f"{path}:{line_no}: token {token!r} does not end in a word-position "
                        "digit (strip_position_digit)")
                cols[columns.index("token")] = token[:-1]
            rows.append(cols)
    if rows:
        yield sentence(), None
