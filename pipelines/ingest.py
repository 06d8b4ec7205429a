"""Ingest stage: the recipe's sources -> Documents (Beam).

Contract: `run(cfg: IngestConfig, inputs={}, out, options) -> counters`. One element per input
file fans out (a Reshuffle spreads them over workers), each source module turns its file into
`(Document, reason | None)` pairs, and the shared router writes kept documents to `out/docs/` and
everything else to `out/rejected/` with its reason. A file that fails part-way is counted as
`error:<kind>` and leaves a rejected record naming the file and the problem; the documents it
yielded before the failure are kept. The key's fingerprint covers every input file's path, size
and modification time, so a changed source re-ingests.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import apache_beam as beam
import pyarrow as pa
from lxml import etree

from pipelines.io import check_document_outputs, run_pipeline, write_kept_and_rejected
from pipelines.manifest import RunOptions
from pipelines.recipe import IngestConfig, Source, expand_source_files
from pipelines.schema import Document
from pipelines.sources import commoncrawl, conll2003, imdb, userfiles, wikipedia

NAME = "ingest"
VERSION = 6  # 2: WET crawl_language; 3: jsonl, parquet; 4: trafilatura fast; 5: WARC resync;
#             6: main text by pipelines/sources/html_text.py instead of trafilatura

READERS: dict[str, ModuleType | SimpleNamespace] = {
    "wikipedia": wikipedia, "commoncrawl": commoncrawl, "imdb": imdb, "conll2003": conll2003,
    "jsonl": SimpleNamespace(read=userfiles.read_jsonl),
    "parquet": SimpleNamespace(read=userfiles.read_parquet),
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


class ReadSourceFile(beam.DoFn):
    """(kind, source name, path, reader fields) -> (row, reason | None) for every record."""

    def process(self, task: tuple[str, str, str, dict]) -> Iterator[tuple[dict, str | None]]:
        kind, source, path, fields = task
        try:
            for doc, reason in READERS[kind].read(path, source, **fields):
                yield doc.to_row(), reason
        except READ_ERRORS as exc:
            # The records read before the failure were yielded; the failure itself is recorded.
            kind_name = type(exc).__name__
            failed = Document(id=f"{source}/file:{path}", source=source, split="train", text="",
                              meta={"path": path, "error": f"{path}: {exc}"})
            yield failed.to_row(), f"error:{kind_name}"


def run(cfg: IngestConfig, inputs: dict, out: os.PathLike, options: RunOptions) -> dict[str, int]:
    tasks = [(src.kind, src.source_name, path,
              {"text_field": src.text_field, "id_field": src.id_field}
              if src.kind in USER_KINDS else {})
             for src in cfg.sources for path in list_files(src)]

    def build(p: beam.Pipeline) -> None:
        pairs = (
            p
            | "Files" >> beam.Create(tasks)  # (kind, source, path)
            | "FanOut" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadSourceFile())  # (row, reason | None)
        )
        write_kept_and_rejected(pairs, str(out), NAME, cfg.num_shards)

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, str(out), counters)
    return counters
