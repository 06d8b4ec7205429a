"""IMDb Large Movie Review Dataset in the aclImdb layout -> one Document per review.

Contract: `list_files(path)` takes an `aclImdb_v1.tar.gz` as it is, or finds
`aclImdb/{train,test}/{pos,neg,unsup}/<id>_<rating>.txt` under a directory (other files, such as
the README and the bag-of-words features, are not reviews); `read(path, source)` turns one review
file, or every review of the tarball (streamed, never extracted), into Documents with id, split,
label and rating taken from the path, and `<br />` markup turned into newlines.
Reference: Maas et al., ACL 2011, https://ai.stanford.edu/~amaas/data/sentiment/
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator

from pipelines.schema import Document

_REVIEW = re.compile(r"(?:^|/)(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_BR = re.compile(r"<br\s*/?>", re.I)


def is_tarball(path: str) -> bool:
    return path.endswith((".tar.gz", ".tgz", ".tar"))


def list_files(path: str) -> list[str]:
    if os.path.isfile(path) and is_tarball(path):
        return [path]
    if os.path.isfile(path):
        return [path] if _REVIEW.search(path.replace(os.sep, "/")) else []
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        found.extend(os.path.join(dirpath, name) for name in sorted(filenames))
    return [f for f in found if _REVIEW.search(f.replace(os.sep, "/"))]


def read(path: str, source: str) -> Iterator[tuple[Document, str | None]]:
    if is_tarball(path):
        yield from read_tarball(path, source)
        return
    match = _REVIEW.search(path.replace(os.sep, "/"))
    if match is None:
        raise ValueError(f"{path}: not an aclImdb review path (<split>/<label>/<id>_<rating>.txt)")
    with open(path, "rb") as fh:
        yield review(match, fh.read(), source)


def read_tarball(path: str, source: str) -> Iterator[tuple[Document, str | None]]:
    """`aclImdb_v1.tar.gz` read in place, streaming: nothing is extracted to disk. Links,
    absolute or `..` member names and members outside the review layout are rejected records."""
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            name = member.name
            if member.isdir():
                continue
            meta = {"tar": os.path.basename(path), "member": name}
            reason = None
            if member.issym() or member.islnk():
                reason = "tar_link"
            elif name.startswith("/") or ".." in name.split("/"):
                reason = "tar_unsafe_path"
            elif not member.isfile() or _REVIEW.search(name) is None:
                reason = "tar_outside_layout"
            if reason:
                yield Document(id=f"{source}/tar:{name}", source=source, split="train", text="",
                               meta=meta), reason
                continue
            handle = tar.extractfile(member)
            yield review(_REVIEW.search(name), handle.read() if handle else b"", source)


def review(match: re.Match, raw: bytes, source: str) -> tuple[Document, str | None]:
    split_dir, label, review_id, rating = match.groups()
    text = raw.decode("utf-8", errors="replace")
    split = "unsup" if label == "unsup" else split_dir
    meta = {"label": label, "rating": int(rating), "review_id": int(review_id),
            "decode_errors": text.count("\ufffd")}
    doc = Document(id=f"{source}/{split_dir}/{label}/{review_id}", source=source, split=split,
                   text=_BR.sub("\n", text).strip(), meta=meta)
    return (doc, None) if doc.text else (doc, "empty_review")
