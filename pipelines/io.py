"""Beam plumbing shared by the document stages: options, streaming Parquet in/out, counters.

Contract:
- `pipeline_options(options)` turns Sieve's RunOptions into Beam PipelineOptions (the runner named
  exactly: pipelines/runners.py).
- `ReadFiles(paths)` is one element per input file, `(index, path)`, spread over the workers: the
  input split of every document stage. A stage reads its file in record batches
  (`iter_batches`) and streams what it keeps into `ParquetSink`s, a row group per batch: no step
  holds a stage's rows, and nothing but file names and metadata crosses a shuffle.
- Output names follow from the input file, never from the worker count or a hash of ids: ingest
  writes `<source>-<task>-<part>.parquet` (`part` rolls over at `file_bytes`); clean and dedup,
  which only drop rows, write one file per input file under the input's own name, in the
  input's row order. Same input, same bytes, whatever the number of workers or the runner.
- `DocumentSinks(out, name)` is the kept (`docs/`) and rejected (`rejected/`) file of one input.
- `run_pipeline(build, options, namespace)` runs a pipeline and returns its committed counters.
- `settle_heap()`, from a DoFn's `setup` once its models are loaded: see there.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import re
from collections.abc import Callable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import runners
from pipelines.manifest import CountersMismatch, RunOptions
from pipelines.schema import ARROW_SCHEMA, REJECTED_SCHEMA

# Rows per record batch read, and so at most per row group written: big enough that per-batch
# costs vanish, small enough that a batch of long documents stays a few MB (and a reader of one
# row group, such as `sieve inspect`, reads little).
BATCH_ROWS = 1024


def pipeline_options(options: RunOptions) -> PipelineOptions:
    return PipelineOptions(runners.beam_args(options))


def run_pipeline(build: Callable[[beam.Pipeline], None], options: RunOptions,
                 namespace: str) -> dict[str, int]:
    """Build and run a pipeline, wait for it, and return the counters of `namespace`."""
    beam_options = pipeline_options(options)
    pipeline = beam.Pipeline(runner=runners.runner(options, beam_options), options=beam_options)
    build(pipeline)
    result = pipeline.run()
    state = result.wait_until_finish()
    if state not in (None, "DONE", beam.runners.runner.PipelineState.DONE):
        raise RuntimeError(f"{namespace}: Beam job ended in state {state}")
    counters: dict[str, int] = {}
    for metric in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        counters[metric.key.metric.name] = counters.get(metric.key.metric.name, 0) + int(value)
    return counters


GC_THRESHOLDS = (10_000, 20, 20)
# glibc's mallopt: serve blocks up to 32 MB (its most) from the heap, not from fresh mappings, and
# keep up to 512 MB of freed heap for the next batch instead of handing it back to the kernel.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 512 << 20


def settle_heap() -> None:
    """Once a DoFn has loaded its models, tune the worker's memory management for batches:
    - What it holds now lives as long as the worker: take it out of the cycle collector's view
      (`gc.freeze`), and collect the youngest generation every 10,000 allocations, not 700. A
      batch of rows makes tens of thousands of short-lived objects (metadata dicts, strings)
      that reference counting frees anyway; CPython's defaults traced every long-lived object
      again on each full collection: 0.87 s of the clean stage's 33.6 s at 100k documents,
      0.23 s of dedup's 11.5 s (gc.callbacks, 1 worker).
    - A batch's arrays (a few MB to tens of MB) are reused from glibc's heap (`mallopt`), not
      mapped afresh, faulted in and zeroed by the kernel page by page each time: the clean
      stage at 100k took 281,479 page faults and 1.88 s of system time, 220,834 and 1.53 s with
      these settings (perf stat). Skipped where the C library is not glibc."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    except (OSError, AttributeError):
        pass


@functools.lru_cache(maxsize=4096)
def _counter(namespace: str, name: str) -> beam.metrics.metric.Metrics.DelegatingCounter:
    # Building a counter object costs more than incrementing it: build each once per process.
    return beam.metrics.Metrics.counter(namespace, name)


def count(namespace: str, name: str, value: int = 1) -> None:
    if value:
        _counter(namespace, name).inc(value)


def count_all(namespace: str, counts: dict[str, int]) -> None:
    for name, value in counts.items():
        count(namespace, name, value)


def parquet_files(folder: str, sub: str = "docs") -> list[str]:
    pattern = FileSystems.join(folder, sub, "*.parquet")
    matches = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path for m in matches)


def basename(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def source_stem(source: str, task: int) -> str:
    """The name ingest gives the files of one task of a source; later stages keep it."""
    return f"{source}-{task:05d}"


def source_files(folder: str, source: str, sub: str = "docs") -> list[str]:
    """The files of `folder/sub` that hold documents of `source` (their names say so)."""
    pattern = re.compile(rf"{re.escape(source)}-\d{{5}}-\d{{3}}\.parquet")
    return [p for p in parquet_files(folder, sub) if pattern.fullmatch(basename(p))]


class ReadFiles(beam.PTransform):
    """`paths` -> `(index, path)` per file, spread over the workers by a Reshuffle."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = list(paths)

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (pbegin
                | "Files" >> beam.Create(list(enumerate(self.paths)))  # (index, path)
                | "Spread" >> beam.Reshuffle())


def iter_batches(path: str, columns: list[str] | None = None,
                 batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """A Parquet file as tables of at most `batch_rows` rows, read a row group at a time."""
    with FileSystems.open(path) as fh:
        reader = pq.ParquetFile(fh)
        for batch in reader.iter_batches(batch_size=batch_rows, columns=columns,
                                         use_threads=False):
            yield pa.Table.from_batches([batch])


def text_bytes(table: pa.Table) -> int:
    """UTF-8 bytes of a batch's text column (what the stages count as `text_bytes`)."""
    return int(pc.sum(pc.binary_length(table.column("text"))).as_py() or 0)


def num_rows(paths: list[str]) -> int:
    total = 0
    for path in paths:
        with FileSystems.open(path) as fh:
            total += pq.ParquetFile(fh).metadata.num_rows
    return total


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    # Dictionary-encoding the text column only costs time (every value is distinct).
    return [n for n in ("source", "split", "reason") if n in schema.names]


class ParquetSink:
    """Tables streamed into `<folder>/<name>`, one row group per write, each file written under a
    temporary name and renamed when closed (a reader never sees half a file).

    With `max_bytes`, `name` is a stem: files are `<stem>-000.parquet`, `<stem>-001.parquet`,
    ..., a new one started once the current one holds `max_bytes` of Arrow data. A sink that
    was never written to still leaves one (empty) file, so every input has its output."""

    def __init__(self, folder: str, name: str, schema: pa.Schema,
                 max_bytes: int | None = None, compression: str = "zstd") -> None:
        self.folder, self.name, self.schema, self.max_bytes = folder, name, schema, max_bytes
        self.compression = compression
        self.paths: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._fh = None
        self._bytes = 0
        self.rows = 0

    def _open(self) -> None:
        name = (f"{self.name}-{len(self.paths):03d}.parquet" if self.max_bytes is not None
                else self.name)
        final = FileSystems.join(self.folder, name)
        self.paths.append(final)
        self._fh = FileSystems.create(final + ".tmp")
        self._writer = pq.ParquetWriter(pa.PythonFile(self._fh, mode="w"), self.schema,
                                        compression=self.compression,
                                        use_dictionary=_dictionary_columns(self.schema))
        self._bytes = 0

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._fh.close()
            final = self.paths[-1]
            FileSystems.rename([final + ".tmp"], [final])
            self._writer = self._fh = None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self._writer is None or (self.max_bytes is not None
                                    and self._bytes >= self.max_bytes):
            self._finish()
            self._open()
        self._writer.write_table(table.cast(self.schema) if table.schema != self.schema
                                 else table)
        self._bytes += table.nbytes
        self.rows += table.num_rows

    def close(self) -> list[str]:
        if not self.paths:
            self._open()
        self._finish()
        return self.paths


class DocumentSinks:
    """The kept (`<out>/docs/<name>`) and rejected (`<out>/rejected/<name>`) file of one input;
    `write(kept, rejected)` takes a batch of each, `close()` commits both."""

    def __init__(self, out: str, name: str, max_bytes: int | None = None) -> None:
        self.kept = ParquetSink(FileSystems.join(out, "docs"), name, ARROW_SCHEMA, max_bytes)
        self.rejected = ParquetSink(FileSystems.join(out, "rejected"), name, REJECTED_SCHEMA,
                                    max_bytes)

    def write(self, kept: pa.Table | None, rejected: pa.Table | None = None) -> None:
        if kept is not None:
            self.kept.write(kept)
        if rejected is not None:
            self.rejected.write(rejected)

    def close(self) -> list[str]:
        return self.kept.close() + self.rejected.close()


def with_reasons(table: pa.Table, reasons: list[str]) -> pa.Table:
    """Rows and their reasons -> a REJECTED_SCHEMA table."""
    return table.append_column("reason", pa.array(reasons, pa.string())).cast(REJECTED_SCHEMA)


def check_document_outputs(stage: str, out: str, counters: dict[str, int]) -> None:
    """The files must hold what the counters say: kept rows == out, rejected rows == the rest."""
    kept = num_rows(parquet_files(out, "docs"))
    rejected = num_rows(parquet_files(out, "rejected"))
    lost = sum(v for k, v in counters.items() if k.startswith(("dropped:", "error:")))
    if kept != counters.get("out", 0) or rejected != lost:
        raise CountersMismatch(
            f"stage {stage}: files disagree with counters: {kept} kept rows vs out="
            f"{counters.get('out', 0)}, {rejected} rejected rows vs dropped+errors={lost}")
