"""Clean stage: normalise every document, then apply the recipe's rules (Beam).

Contract: `run(cfg: CleanConfig, {"ingest": folder}, out, options) -> counters`. Documents are
normalised (`filters.normalize`), then each rule returns a drop reason or None; the first reason
wins. Kept documents go to `out/docs/`, dropped ones to `out/rejected/` with the reason, and each
reason has its counter. Per-source overrides (`[clean.sources.<name>]`) change a rule's numbers
for one source: CoNLL sentences are short by nature and must not be emptied.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import apache_beam as beam

from pipelines import filters
from pipelines.io import (
    ReadDocuments,
    check_document_outputs,
    run_pipeline,
    write_kept_and_rejected,
)
from pipelines.manifest import RunOptions
from pipelines.recipe import CleanConfig
from pipelines.schema import Document

NAME = "clean"
VERSION = 2  # 2: language identification


class CleanDocument(beam.DoFn):
    def __init__(self, cfg: CleanConfig) -> None:
        self.cfg = cfg

    def process(self, row: dict) -> Iterator[tuple[dict, str | None]]:
        doc = Document.from_row(row)
        doc.text = filters.normalize(doc.text)
        override = self.cfg.sources.get(doc.source)
        min_chars = self.cfg.min_chars
        languages = self.cfg.languages
        if override is not None:
            min_chars = override.min_chars if override.min_chars is not None else min_chars
            languages = override.languages if override.languages is not None else languages
        doc.meta["language"], doc.meta["language_score"] = filters.identify_language(doc.text)
        reason = (filters.too_short(doc, min_chars)
                  or filters.wrong_language(doc, languages, self.cfg.min_language_score))
        yield doc.to_row(), reason


def run(cfg: CleanConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    def build(p: beam.Pipeline) -> None:
        pairs = (
            p
            | "Read" >> ReadDocuments(str(inputs["ingest"]))
            | "Clean" >> beam.ParDo(CleanDocument(cfg))  # (row, reason | None)
        )
        write_kept_and_rejected(pairs, str(out), NAME, cfg.num_shards)

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    return counters
