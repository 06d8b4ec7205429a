"""Clean stage: normalise every document, then apply the recipe's rules (Beam).

Contract: `run(cfg: CleanConfig, {"ingest": folder}, out, options) -> counters`. Each document is
normalised (`filters.normalize`: ftfy's mojibake repair, NFC, control characters, whitespace),
annotated with its language, then judged by its source's rules (`CleanConfig.rules_for`): URL
blocklist, minimum length, language, and the quality rule sets (C4, Gopher, FineWeb) in the
recipe's order. The first reason wins. Kept documents have their PII redacted and go to
`out/docs/`; dropped ones go to `out/rejected/` with the reason.

Counters: `dropped:<reason>` in total, and per source `source:<name>:dropped:<reason>`,
`source:<name>:<split>:in` / `:out`, `pii:<kind>` and `source:<name>:pii:<kind>`,
`mojibake_fixed`, `c4_lines_removed`. A split of a labelled source (IMDb, CoNLL-2003), or any
validation or test split, that loses every document fails the stage: an emptied evaluation set is
never a silent outcome.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import apache_beam as beam

from pipelines import filters, quality
from pipelines.io import (
    ReadDocuments,
    check_document_outputs,
    count,
    run_pipeline,
    write_kept_and_rejected,
)
from pipelines.manifest import RunOptions, sha256_file
from pipelines.recipe import LABELLED_KINDS, CleanConfig, CleanRuleOverride
from pipelines.schema import Document

NAME = "clean"
VERSION = 5  # 5: spacing normalised before the mojibake repair too (idempotent);
# 3: mojibake, C4 / Gopher / FineWeb rules, PII redaction, blocklist, per-source;
# 4: mojibake_fixed counts only repairs that change the normalised text


class EmptiedSplit(RuntimeError):
    """The rules dropped every document of a split that must not be emptied."""


def fingerprint(cfg: CleanConfig) -> dict:
    """Part of the stage key beyond the recipe section: the blocklist's content (an edited list
    rebuilds) and each source's resolved rules (the built-in per-kind defaults live in code)."""
    return {"blocklist_sha256": sha256_file(Path(cfg.blocklist)) if cfg.blocklist else None,
            "rules": {source: cfg.rules_for(source).model_dump(mode="json")
                      for source in sorted(cfg.source_kinds)}}


class CleanDocument(beam.DoFn):
    def __init__(self, cfg: CleanConfig, blocklist: quality.Blocklist | None) -> None:
        self.cfg = cfg
        self.blocklist = blocklist
        self._rules: dict[str, CleanRuleOverride] = {}

    def rules(self, source: str) -> CleanRuleOverride:
        if source not in self._rules:
            self._rules[source] = self.cfg.rules_for(source)
        return self._rules[source]

    def process(self, row: dict) -> Iterator[tuple[dict, str | None]]:
        doc = Document.from_row(row)
        rules = self.rules(doc.source)
        doc.text, fixed = filters.normalize_counted(doc.text, self.cfg.fix_mojibake)
        if fixed:
            count(NAME, "mojibake_fixed")
        doc.meta["language"], doc.meta["language_score"] = filters.identify_language(doc.text)
        reason = None
        if self.blocklist is not None:
            url = doc.meta.get("url")
            domain = doc.meta.get("domain") or (urlsplit(url).hostname if url else None)
            reason = self.blocklist.reason(url, domain)
        reason = (reason or filters.too_short(doc, rules.min_chars)
                  or filters.wrong_language(doc, rules.languages, self.cfg.min_language_score))
        if reason is None and rules.filters:
            cleaned, reason = filters.apply_quality(doc.text, rules.filters, self.cfg)
            if reason is None:
                if cleaned != doc.text:  # C4 removed lines
                    count(NAME, "c4_lines_removed",
                          doc.text.count("\n") - cleaned.count("\n"))
                doc.text = cleaned
        prefix = f"source:{doc.source}"
        count(NAME, f"{prefix}:{doc.split}:in")
        if reason is None:
            if rules.pii:
                doc.text, found = quality.redact_pii(doc.text, rules.pii)
                for kind, n in found.items():
                    count(NAME, f"pii:{kind}", n)
                    count(NAME, f"{prefix}:pii:{kind}", n)
            count(NAME, f"{prefix}:{doc.split}:out")
        else:
            count(NAME, f"{prefix}:dropped:{reason}")
        yield doc.to_row(), reason


def check_splits(cfg: CleanConfig, counters: dict[str, int]) -> None:
    """Fail when a labelled source's split, or any validation/test split, was emptied."""
    for key, n in counters.items():
        parts = key.split(":")
        if len(parts) != 4 or parts[0] != "source" or parts[3] != "in" or not n:
            continue
        source, split = parts[1], parts[2]
        kind = cfg.source_kinds.get(source, source)
        if counters.get(f"source:{source}:{split}:out", 0) == 0 and (
                kind in LABELLED_KINDS or split in ("validation", "test")):
            reasons = {k.split(":dropped:", 1)[1]: v for k, v in counters.items()
                       if k.startswith(f"source:{source}:dropped:")}
            raise EmptiedSplit(
                f"stage clean: every one of the {n:,} documents of {source}/{split} was "
                f"dropped (reasons for {source}: {reasons}); set [clean.sources.{source}] "
                f"rules that keep them, e.g. filters = []")


def run(cfg: CleanConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    blocklist = quality.Blocklist.from_file(cfg.blocklist) if cfg.blocklist else None

    def build(p: beam.Pipeline) -> None:
        pairs = (
            p
            | "Read" >> ReadDocuments(str(inputs["ingest"]))
            | "Clean" >> beam.ParDo(CleanDocument(cfg, blocklist))  # (row, reason | None)
        )
        write_kept_and_rejected(pairs, str(out), NAME, cfg.num_shards)

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    check_splits(cfg, counters)
    return counters


def reason_table(counters: dict[str, int]) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """(source names, rows): for each source the documents in, kept, and dropped per reason;
    rows are ("in", [...]), ("kept", [...]) and then each reason, most frequent first. The build
    prints it and the data card shows it."""
    sources = sorted({k.split(":")[1] for k in counters if k.startswith("source:")})
    def total(source: str, what: str) -> int:
        return sum(v for k, v in counters.items()
                   if k.startswith(f"source:{source}:") and k.endswith(f":{what}")
                   and k.count(":") == 3 and k.split(":")[2] != "pii")
    reasons = sorted({k.split(":dropped:", 1)[1] for k in counters if ":dropped:" in k},
                     key=lambda r: (-counters.get(f"dropped:{r}", 0), r))  # ties by name
    rows = [("in", [total(s, "in") for s in sources]),
            ("kept", [total(s, "out") for s in sources])]
    rows += [(r, [counters.get(f"source:{s}:dropped:{r}", 0) for s in sources]) for r in reasons]
    return sources, rows
