"""IMDb Large Movie Review Dataset in the aclImdb layout -> one Document per review.

Contract: `list_files(path)` finds `aclImdb/{train,test}/{pos,neg,unsup}/<id>_<rating>.txt` under a
directory (other files, such as the README and the bag-of-words features, are not reviews);
`read(path, source)` turns one review file into a Document with id, split, label and rating taken
from the path, and `<br />` markup turned into newlines.
Reference: Maas et al., ACL 2011, https://ai.stanford.edu/~amaas/data/sentiment/
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from pipelines.schema import Document

_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_BR = re.compile(r"<br\s*/?>", re.I)


def list_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path] if _REVIEW.search(path.replace(os.sep, "/")) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        found.extend(os.path.join(dirpath, name) for name in sorted(filenames))
    return [f for f in found if _REVIEW.search(f.replace(os.sep, "/"))]


def read(path: str, source: str) -> Iterator[tuple[Document, str | None]]:
    match = _REVIEW.search(path.replace(os.sep, "/"))
    if match is None:
        raise ValueError(f"{path}: not an aclImdb review path (<split>/<label>/<id>_<rating>.txt)")
    split_dir, label, review_id, rating = match.groups()
    with open(path, "rb") as fh:
        raw = fh.read()
    text = raw.decode("utf-8", errors="replace")
    split = "unsup" if label == "unsup" else split_dir
    meta = {"label": label, "rating": int(rating), "review_id": int(review_id),
            "decode_errors": text.count("\ufffd")}
    doc = Document(id=f"{source}/{split_dir}/{label}/{review_id}", source=source, split=split,
                   text=_BR.sub("\n", text).strip(), meta=meta)
    yield (doc, None) if doc.text else (doc, "empty_review")
