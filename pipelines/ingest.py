"""Ingest stage: the recipe's sources -> Documents (Beam).

Contract: `run(cfg: IngestConfig, inputs={}, out, options) -> counters`. The input files are
planned into tasks (`plan_tasks`: a large file alone, small files of one source together), one
element per task fans out (a Reshuffle spreads them over workers), each source module turns its
files into `(Document, reason | None)` pairs, and the task streams kept documents into
`out/docs/<source>-<task>-NNN.parquet` and everything else into `out/rejected/` with its reason,
in record batches, a new file every `file_bytes`. A file that fails part-way is counted as
`error:<kind>` and leaves a rejected record naming the file and the problem; the documents it
yielded before the failure are kept. The key's fingerprint covers every input file's path, size
and modification time, so a changed source re-ingests.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import NamedTuple

import apache_beam as beam
import pyarrow as pa
from lxml import etree

from pipelines.io import (
    BATCH_ROWS,
    DocumentSinks,
    check_document_outputs,
    count_all,
    run_pipeline,
    source_stem,
    text_bytes,
)
from pipelines.manifest import RunOptions
from pipelines.progress import Reporter
from pipelines.recipe import IngestConfig, Source, expand_source_files
from pipelines.schema import ARROW_SCHEMA, REJECTED_SCHEMA, Document
from pipelines.sources import classification, commoncrawl, conll2003, imdb, userfiles, wikipedia

NAME = "ingest"
VERSION = 11  # 2: WET crawl_language; 3: jsonl, parquet; 4: trafilatura fast; 5: WARC resync;
#             6: main text by pipelines/sources/html_text.py instead of trafilatura;
#             7: streamed into files per input split (no shuffle of rows);
#             8: classification and conll kinds, wiki variant/OpenCC, IOB tags with dots;
#             9: Wikipedia disambiguation pages marked (meta.disambiguation);
#             10: Wikipedia comments removed first, local File/Category namespace names;
#             11: Wikipedia headings of empty sections dropped (References, 脚注)

READERS: dict[str, ModuleType | SimpleNamespace] = {
    "wikipedia": wikipedia, "commoncrawl": commoncrawl, "imdb": imdb, "conll2003": conll2003,
    "jsonl": SimpleNamespace(read=userfiles.read_jsonl),
    "parquet": SimpleNamespace(read=userfiles.read_parquet),
    "classification": classification,
    "conll": conll2003,
}
USER_KINDS = ("jsonl", "parquet")


def list_files(src: Source) -> list[str]:
    reader = READERS[src.kind]
    if hasattr(reader, "list_files"):
        return reader.list_files(src.path)
    return expand_source_files(src)


def fingerprint(cfg: IngestConfig) -> str:
    digest = hashlib.sha256()
    for src in cfg.sources:
        for path in list_files(src):
            stat = os.stat(path.split("#", 1)[0])  # multistream ranges: the dump's stat
            digest.update(f"{src.source_name}\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


# What a damaged or hostile input file raises while it is read: the file's failure is recorded as
# `error:<exception type>` and the job goes on. Anything else is a bug and stops the job.
READ_ERRORS = (OSError, EOFError, ValueError, UnicodeError, zlib.error, tarfile.TarError,
               etree.LxmlError, pa.ArrowException)
# Input files of one source are read together until a task holds this many bytes on disk: one
# task per large file (a dump part, a crawl shard), one for thousands of small ones (aclImdb).
TASK_BYTES = 8 * 2**20


class Task(NamedTuple):
    """One input split: some files of one source, read in order into `<source>-<number>-*`."""

    kind: str
    source: str
    number: int
    paths: tuple[str, ...]
    fields: dict


def plan_tasks(cfg: IngestConfig) -> list[Task]:
    """The input splits, from the file list alone (never from the worker count)."""
    tasks: list[Task] = []
    for src in cfg.sources:
        fields = reader_fields(src)
        group: list[str] = []
        size = 0
        number = 0
        for path in list_files(src):
            group.append(path)
            size += _disk_bytes(path)
            if size >= TASK_BYTES:
                tasks.append(Task(src.kind, src.source_name, number, tuple(group), fields))
                group, size, number = [], 0, number + 1
        if group:
            tasks.append(Task(src.kind, src.source_name, number, tuple(group), fields))
    return tasks


def reader_fields(src: Source) -> dict:
    """The recipe's fields a source kind's reader takes."""
    if src.kind in USER_KINDS:
        return {"text_field": src.text_field, "id_field": src.id_field}
    if src.kind == "classification":
        return {"text_field": src.text_field, "label_field": src.label_field,
                "label_names": src.label_names, "split_field": src.split_field,
                "test_fraction": src.test_fraction, "split_seed": src.split_seed,
                "delimiter": src.delimiter,
                # an id column only where the recipe names one (most CSV sets have none)
                "id_field": src.id_field if "id_field" in src.model_fields_set else None}
    if src.kind == "wikipedia" and {"variant", "convert"} & src.model_fields_set:
        return {"variant": src.variant, "convert": src.convert}
    if src.kind == "conll":
        return {"columns": list(src.columns), "separator": src.separator,
                "strip_position_digit": src.strip_position_digit, "joiner": src.joiner}
    return {}


def _disk_bytes(path: str) -> int:
    if "#" in path:  # a range of a multistream dump
        start, _, end = path.rpartition("#")[2].partition("-")
        return int(end) - int(start)
    return os.path.getsize(path)


def read_source_file(kind: str, source: str, path: str, fields: dict
                     ) -> Iterator[tuple[dict, str | None]]:
    """(row, reason | None) for every record of one input file; a failure part-way yields the
    records read before it, then one `error:<type>` record naming the file and the problem."""
    try:
        for doc, reason in READERS[kind].read(path, source, **fields):
            yield doc.to_row(), reason
    except READ_ERRORS as exc:
        failed = Document(id=f"{source}/file:{path}", source=source, split="train", text="",
                          meta={"path": path, "error": f"{path}: {exc}"})
        yield failed.to_row(), f"error:{type(exc).__name__}"


class IngestTask(beam.DoFn):
    """(index, Task) -> its documents, streamed into `<source>-<number>-NNN.parquet` files of
    `docs/` and `rejected/`; counts `in`, `out`, `dropped:<reason>`, `error:<kind>`."""

    def __init__(self, out: str, file_bytes: int, progress_dir: str | None) -> None:
        self.out, self.file_bytes, self.progress_dir = out, file_bytes, progress_dir

    def setup(self) -> None:
        self.progress = Reporter(self.progress_dir)

    def process(self, element: tuple[int, Task]) -> Iterator[str]:
        _, task = element
        sinks = DocumentSinks(self.out, source_stem(task.source, task.number), self.file_bytes)
        kept: list[dict] = []
        rejected: list[dict] = []
        counts: Counter = Counter()

        def flush() -> None:
            tables = (pa.Table.from_pylist(kept, ARROW_SCHEMA) if kept else None,
                      pa.Table.from_pylist(rejected, REJECTED_SCHEMA) if rejected else None)
            sinks.write(*tables)
            counts["text_bytes"] = sum(text_bytes(t) for t in tables if t is not None)
            count_all(NAME, counts)
            self.progress.advance(docs=len(kept) + len(rejected), nbytes=counts["text_bytes"])
            kept.clear()
            rejected.clear()
            counts.clear()

        for path in task.paths:
            for row, reason in read_source_file(task.kind, task.source, path, task.fields):
                counts["in"] += 1
                if reason is None:
                    counts["out"] += 1
                    kept.append(row)
                else:
                    counts[reason if reason.startswith("error:") else f"dropped:{reason}"] += 1
                    rejected.append({**row, "reason": reason})
                if len(kept) + len(rejected) >= BATCH_ROWS:
                    flush()
            self.progress.advance(files=1)
        flush()
        self.progress.flush()
        yield from sinks.close()


def run(cfg: IngestConfig, inputs: dict, out: os.PathLike, options: RunOptions) -> dict[str, int]:
    tasks = plan_tasks(cfg)

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | "Tasks" >> beam.Create(list(enumerate(tasks)))  # (index, Task)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(IngestTask(str(out), cfg.file_bytes, options.progress_dir))
        )

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    return counters
