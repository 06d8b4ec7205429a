"""Document: the one record that flows between data stages.

Contract: every document stage reads and writes Parquet files with exactly `ARROW_SCHEMA` (kept
documents) or `REJECTED_SCHEMA` (the same columns plus `reason`). `meta` travels as a JSON object
serialised to a string so that one flat schema carries every source's provenance.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

SPLITS = ("train", "validation", "test", "unsup")

ARROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("meta", pa.string(), nullable=False),  # JSON object
    ]
)
REJECTED_SCHEMA = ARROW_SCHEMA.append(pa.field("reason", pa.string(), nullable=False))


# json.dumps with options builds a new encoder on every call: a third of its time on the small
# metas of a document. One encoder, the same text.
_META_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def dump_meta(meta: dict[str, Any]) -> str:
    """A document's meta as stored: `json.dumps(meta, ensure_ascii=False, sort_keys=True)`."""
    return _META_ENCODER.encode(meta)


@dataclass
class Document:
    id: str  # "<source>/<native id>": stable, and the dedup tie-breaker
    source: str
    split: str
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"document {self.id!r}: split {self.split!r} is not one of {SPLITS}")

    def to_row(self) -> dict[str, str]:
        return {
            "id": self.id,
            "source": self.source,
            "split": self.split,
            "text": self.text,
            "meta": dump_meta(self.meta),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Document:
        return cls(
            id=row["id"],
            source=row["source"],
            split=row["split"],
            text=row["text"],
            meta=json.loads(row["meta"]) if row["meta"] else {},
        )


def stable_hash(value: str) -> int:
    """A 64-bit hash that is the same in every process (Python's `hash()` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "big")
