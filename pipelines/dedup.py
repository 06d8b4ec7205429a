"""Dedup stage: exact duplicates of normalised text (Beam).

Contract: `run(cfg: DedupConfig, {"clean": folder}, out, options) -> counters`. Each document is
keyed by the SHA-1 of its text, lower-cased with whitespace collapsed; per key, the document with
the smallest id is kept and every other one is dropped as `duplicate_exact` with `meta.duplicate_of`
naming the keeper. Grouping by key means no step needs every document in one process.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator

import apache_beam as beam

from pipelines.io import (
    ReadDocuments,
    check_document_outputs,
    run_pipeline,
    write_kept_and_rejected,
)
from pipelines.manifest import RunOptions
from pipelines.recipe import DedupConfig

NAME = "dedup"
VERSION = 1

_WS = re.compile(r"\s+")


def exact_key(text: str, lowercase: bool) -> str:
    norm = _WS.sub(" ", text).strip()
    return hashlib.sha1((norm.lower() if lowercase else norm).encode("utf-8")).hexdigest()


def keep_first(group: tuple[str, Iterable[dict]]) -> Iterator[tuple[dict, str | None]]:
    _, rows = group
    keeper, *others = sorted(rows, key=lambda r: r["id"])
    yield keeper, None
    for row in others:
        meta = json.loads(row["meta"])
        meta["duplicate_of"] = keeper["id"]
        meta_json = json.dumps(meta, ensure_ascii=False, sort_keys=True)
        yield {**row, "meta": meta_json}, "duplicate_exact"


def run(cfg: DedupConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    lowercase = cfg.lowercase

    def build(p: beam.Pipeline) -> None:
        pairs = (
            p
            | "Read" >> ReadDocuments(str(inputs["clean"]))
            | "KeyByText" >> beam.Map(lambda r: (exact_key(r["text"], lowercase), r))
            | "GroupByText" >> beam.GroupByKey()  # text hash -> [row]
            | "KeepFirst" >> beam.FlatMap(keep_first)  # (row, reason | None)
        )
        write_kept_and_rejected(pairs, str(out), NAME, cfg.num_shards)

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    return counters
