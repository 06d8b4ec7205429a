"""Beam plumbing shared by the document stages: options, Parquet in/out, counters.

Contract:
- `pipeline_options(options)` turns Sieve's RunOptions into Beam PipelineOptions (runner named
  explicitly; `--workers N` > 1 means the DirectRunner's multi-processing mode).
- `ReadDocuments(folder)` reads `<folder>/docs/*.parquet` as row dicts with Beam's own Parquet IO.
- `WriteRows(folder, schema, num_shards)` writes rows deterministically: each row goes to shard
  `stable_hash(id) % num_shards`, rows are sorted by id inside a shard, and each shard file is
  written under a temporary name then renamed. Same input, same bytes, whatever the worker count.
- `run_pipeline(build, options, namespace)` runs a pipeline and returns its committed counters.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Iterable
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines.manifest import CountersMismatch, RunOptions
from pipelines.schema import ARROW_SCHEMA, REJECTED_SCHEMA, stable_hash

Row = dict[str, Any]


def pipeline_options(options: RunOptions) -> PipelineOptions:
    args = [f"--runner={options.runner}"]
    if options.runner in ("DirectRunner", "direct"):
        if options.workers > 1:
            args += ["--direct_running_mode=multi_processing",
                     f"--direct_num_workers={options.workers}"]
        else:
            args += ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
    return PipelineOptions(args + list(options.beam_args))


def run_pipeline(build: Callable[[beam.Pipeline], None], options: RunOptions,
                 namespace: str) -> dict[str, int]:
    """Build and run a pipeline, wait for it, and return the counters of `namespace`."""
    pipeline = beam.Pipeline(options=pipeline_options(options))
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


@functools.lru_cache(maxsize=4096)
def _counter(namespace: str, name: str) -> beam.metrics.metric.Metrics.DelegatingCounter:
    # Building a counter object costs more than incrementing it: build each once per process.
    return beam.metrics.Metrics.counter(namespace, name)


def count(namespace: str, name: str, value: int = 1) -> None:
    _counter(namespace, name).inc(value)


def parquet_files(folder: str, sub: str = "docs") -> list[str]:
    pattern = FileSystems.join(folder, sub, "*.parquet")
    matches = FileSystems.match([pattern])[0].metadata_list
    return sorted(m.path for m in matches)


class ReadDocuments(beam.PTransform):
    """`<folder>/docs/*.parquet` -> row dicts with the Document columns."""

    def __init__(self, folder: str, sub: str = "docs") -> None:
        super().__init__()
        self.folder, self.sub = folder, sub

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if not parquet_files(self.folder, self.sub):  # Beam's reader fails on an empty match
            return pbegin | "Empty" >> beam.Create([])
        pattern = FileSystems.join(self.folder, self.sub, "*.parquet")
        return pbegin | "ReadParquet" >> beam.io.ReadFromParquet(pattern)


class ReadDocumentBatches(beam.PTransform):
    """`<folder>/docs/*.parquet` -> pyarrow Tables (record batches) of the given columns."""

    def __init__(self, folder: str, columns: list[str], sub: str = "docs") -> None:
        super().__init__()
        self.folder, self.columns, self.sub = folder, columns, sub

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        if not parquet_files(self.folder, self.sub):
            return pbegin | "Empty" >> beam.Create([])
        pattern = FileSystems.join(self.folder, self.sub, "*.parquet")
        return pbegin | "ReadParquetBatches" >> beam.io.ReadFromParquetBatched(
            pattern, columns=self.columns)


def write_table(table: pa.Table, folder: str, index: int, num_shards: int) -> str:
    """One shard file `<folder>/part-NNNNN-of-MMMMM.parquet`, rows sorted by id, written under a
    temporary name then renamed (a reader never sees half a file)."""
    table = table.sort_by("id")  # UTF-8 byte order is code point order: same as sorted(ids)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    final = FileSystems.join(folder, f"part-{index:05d}-of-{num_shards:05d}.parquet")
    tmp = final + ".tmp"
    with FileSystems.create(tmp) as fh:
        fh.write(buffer.getvalue())
    FileSystems.rename([tmp], [final])
    return final


def write_shard(shard: tuple[int, Iterable[Row]], folder: str, num_shards: int,
                schema: pa.Schema) -> str:
    index, rows = shard
    return write_table(pa.Table.from_pylist(list(rows), schema=schema), folder, index, num_shards)


class WriteRows(beam.PTransform):
    """Rows -> `<folder>/part-NNNNN-of-MMMMM.parquet`, by stable hash of id, sorted by id.

    Every shard file is written, empty ones included, so a folder always has its schema."""

    def __init__(self, folder: str, schema: pa.Schema, num_shards: int) -> None:
        super().__init__()
        self.folder, self.schema, self.num_shards = folder, schema, num_shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        n = self.num_shards
        keyed = rows | "KeyByShard" >> beam.Map(lambda r: (stable_hash(r["id"]) % n, r))
        every_shard = (rows.pipeline | "ShardNumbers" >> beam.Create(range(n))
                       | "NoRow" >> beam.Map(lambda i: (i, None)))
        return (
            (keyed, every_shard)
            | "AllShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()  # shard -> [row, None]
            | "DropPlaceholders" >> beam.MapTuple(lambda i, rs: (i, [r for r in rs if r]))
            | "WriteShard" >> beam.Map(write_shard, self.folder, n, self.schema)
        )


def read_rows(folder: str, sub: str = "docs", columns: list[str] | None = None) -> Iterable[Row]:
    """Rows of a document folder in a fixed order (file by file, id order within a file)."""
    for path in parquet_files(folder, sub):
        with FileSystems.open(path) as fh:
            table = pq.read_table(fh, columns=columns)
        yield from table.to_pylist()


def check_document_outputs(stage: str, out: str, counters: dict[str, int]) -> None:
    """The files must hold what the counters say: kept rows == out, rejected rows == the rest."""
    kept = sum(pq.read_metadata(p).num_rows for p in parquet_files(out, "docs"))
    rejected = sum(pq.read_metadata(p).num_rows for p in parquet_files(out, "rejected"))
    lost = sum(v for k, v in counters.items() if k.startswith(("dropped:", "error:")))
    if kept != counters.get("out", 0) or rejected != lost:
        raise CountersMismatch(
            f"stage {stage}: files disagree with counters: {kept} kept rows vs out="
            f"{counters.get('out', 0)}, {rejected} rejected rows vs dropped+errors={lost}")


class Route(beam.DoFn):
    """Counts and routes `(row, reason | None)` pairs: kept rows to the main output, the rest to
    `rejected` with their reason. A stage's rule DoFn yields such pairs into this one."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def process(self, item: tuple[Row, str | None]):
        row, reason = item
        count(self.namespace, "in")
        if reason is None:
            count(self.namespace, "out")
            yield row
        else:
            count(self.namespace, reason if reason.startswith("error:") else f"dropped:{reason}")
            yield beam.pvalue.TaggedOutput("rejected", {**row, "reason": reason})


def write_kept_and_rejected(pairs: beam.PCollection, out: str, namespace: str,
                            num_shards: int) -> None:
    """`(row, reason | None)` pairs -> `<out>/docs/` and `<out>/rejected/`, counted."""
    routed = pairs | "Route" >> beam.ParDo(Route(namespace)).with_outputs("rejected", main="kept")
    _ = routed.kept | "WriteKept" >> WriteRows(FileSystems.join(out, "docs"), ARROW_SCHEMA,
                                                num_shards)
    _ = routed.rejected | "WriteRejected" >> WriteRows(FileSystems.join(out, "rejected"),
                                                        REJECTED_SCHEMA, num_shards)
