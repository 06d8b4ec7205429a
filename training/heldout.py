"""The neutral held-out text set: documents no build contains, scored in bits per byte so that
runs with different data (and different tokenizers) compare on the same text.

Contract: `read_held_out(paths, limit) -> list[str]` reads, in order,
- `.json`: a mapping or list of documents, each a string or an object whose `text`,
  `articleBody` or `content` field is the text (the extraction benchmarks' ground-truth files);
- `.jsonl` (optionally `.gz`): one such object per line;
- `.txt`: one document per file;
and keeps at most `limit` non-empty documents. A file it cannot read fails with its name and the
problem. The dedup stage drops every pretraining document that shares a decontamination n-gram
with these texts (`DedupConfig.held_out`), so no arm of a comparison trains on them.
Imports only the standard library (it runs on the GPU machine).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

TEXT_FIELDS = ("text", "articleBody", "content")


class HeldOutError(ValueError):
    pass


def _text_of(item: Any, where: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, dict):
        for field in TEXT_FIELDS:
            if isinstance(item.get(field), str):
                return item[field]
    raise HeldOutError(f"{where}: a document is neither a string nor an object with one of "
                       f"the fields {', '.join(TEXT_FIELDS)}")


def _documents(path: Path) -> Iterator[str]:
    name = path.name.removesuffix(".gz")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            if name.endswith(".jsonl"):
                for number, line in enumerate(fh, 1):
                    if line.strip():
                        yield _text_of(json.loads(line), f"{path}:{number}")
            elif name.endswith(".json"):
                data = json.load(fh)
                items = data.values() if isinstance(data, dict) else data
                if not isinstance(items, Iterable) or isinstance(items, str | bytes):
                    raise HeldOutError(f"{path}: expected a JSON object or list of documents")
                for item in items:
                    yield _text_of(item, str(path))
            elif name.endswith(".txt"):
                yield fh.read()
            else:
                raise HeldOutError(f"{path}: held-out files are .json, .jsonl or .txt")
    except FileNotFoundError:
        raise HeldOutError(f"{path}: held-out file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise HeldOutError(f"{path}: cannot read held-out documents: {exc}") from None


def read_held_out(paths: Iterable[str], limit: int = 0) -> list[str]:
    docs: list[str] = []
    for path in paths:
        for text in _documents(Path(path)):
            if text.strip():
                docs.append(text)
                if limit and len(docs) >= limit:
                    return docs
    return docs
