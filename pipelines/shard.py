"""Shard stage: tokenize, pack and write Arrow shards that training memory-maps (Beam).

Contract: `run(cfg: ShardConfig, {"dedup": docs, "tokenizer": model}, out, options) -> counters`.
1. Documents whose split is in `cfg.splits` are tokenized (in parallel, one SentencePiece per
   worker) and assigned to `validation` when `stable_hash(id)` falls in `validation_fraction`,
   else to `train`, so no document's tokens are in both; then to bucket `stable_hash(id) % n`.
2. Per (split, bucket), documents are ordered by a stable hash of their id (a deterministic
   shuffle), concatenated with EOS after each, and cut into `seq_len` sequences without padding;
   the tail shorter than `seq_len` is dropped and counted.
3. A bucket's sequences go to Arrow IPC streams `out/<split>/part-BBBBB-FFFF.arrow` of at most
   `shard_bytes` of tokens, one column `input_ids` (list<uint16>, or uint32 when the vocabulary
   exceeds 65,536), each written under a temporary name and renamed. Beside them,
   `out/<split>/documents-BBBBB.parquet` maps every document id to its first token and token
   count in the bucket's stream (lineage from a sequence back to its documents).
4. `out/index.json` (per-shard rows, tokens, bytes, sha256; totals; the tokenizer's sha256; the
   input stages' keys) is written last.
Same inputs give the same bytes whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.io import ReadDocuments, count, run_pipeline
from pipelines.manifest import CountersMismatch, RunOptions, read_manifest
from pipelines.recipe import ShardConfig
from pipelines.schema import stable_hash
from tokenizer import spm

NAME = "shard"
VERSION = 2  # 2: size-bounded files, document lineage, input keys
_FRACTION_SCALE = 1_000_000


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def split_of(doc_id: str, validation_fraction: float) -> str:
    bucket = stable_hash(f"split:{doc_id}") % _FRACTION_SCALE
    return "validation" if bucket < validation_fraction * _FRACTION_SCALE else "train"


class Tokenize(beam.DoFn):
    """row -> ((split, shard), (order key, token ids as bytes)), or counted and dropped."""

    def __init__(self, cfg: ShardConfig, model_path: str) -> None:
        self.cfg, self.model_path = cfg, model_path

    def setup(self) -> None:
        self.sp = spm.load(self.model_path)
        self.dtype = token_dtype(self.sp.get_piece_size())

    def process(self, row: dict) -> Iterator[tuple[tuple[str, int], tuple[int, str, bytes]]]:
        count(NAME, "in")
        if row["split"] not in self.cfg.splits:
            count(NAME, "dropped:not_pretraining_split")
            return
        ids = self.sp.encode(row["text"])
        if not ids:
            count(NAME, "dropped:no_tokens")
            return
        count(NAME, "out")
        count(NAME, "tokens", len(ids))
        split = split_of(row["id"], self.cfg.validation_fraction)
        shard = stable_hash(f"shard:{row['id']}") % self.cfg.num_buckets
        order = stable_hash(f"order:{row['id']}")
        yield (split, shard), (order, row["id"], np.asarray(ids, dtype=self.dtype).tobytes())


class PackAndWrite(beam.DoFn):
    """(split, bucket) -> [(order, id, ids)] -> Arrow files of seq_len sequences + documents."""

    def __init__(self, cfg: ShardConfig, out: str, model_path: str) -> None:
        self.cfg, self.out, self.model_path = cfg, out, model_path

    def setup(self) -> None:
        self.dtype = token_dtype(spm.load(self.model_path).get_piece_size())

    def process(self, group: tuple[tuple[str, int], Iterable[tuple[int, str, bytes]]]):
        (split, bucket), docs = group
        eos = np.asarray([spm.EOS_ID], dtype=self.dtype)
        parts, ids_col, starts, lengths = [], [], [], []
        position = 0
        for _, doc_id, ids in sorted(docs):  # by order hash, then id: a deterministic shuffle
            tokens = np.frombuffer(ids, dtype=self.dtype)
            parts += [tokens, eos]
            ids_col.append(doc_id)
            starts.append(position)
            lengths.append(len(tokens) + 1)
            position += len(tokens) + 1
        stream = np.concatenate(parts)
        seq_len = self.cfg.seq_len
        n_seq = len(stream) // seq_len
        count(NAME, "eos_tokens", len(ids_col))
        count(NAME, "sequences", n_seq)
        count(NAME, "tokens_packed", n_seq * seq_len)
        count(NAME, "tokens_dropped_tail", len(stream) - n_seq * seq_len)
        documents = pa.table({"id": ids_col, "start_token": pa.array(starts, pa.int64()),
                              "num_tokens": pa.array(lengths, pa.int64())})
        sink = pa.BufferOutputStream()
        pq.write_table(documents, sink, compression="zstd")
        name = f"documents-{bucket:05d}.parquet"
        yield _write_atomically(FileSystems.join(self.out, split, name),
                                sink.getvalue().to_pybytes())
        rows_per_file = max(1, self.cfg.shard_bytes // (seq_len * self.dtype.itemsize))
        for file_no, first in enumerate(range(0, n_seq, rows_per_file)):
            last = min(first + rows_per_file, n_seq)
            values = pa.array(stream[first * seq_len: last * seq_len])
            offsets = pa.array(np.arange(0, (last - first) * seq_len + 1, seq_len, dtype=np.int32))
            table = pa.table({"input_ids": pa.ListArray.from_arrays(offsets, values)})
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table)
            name = f"part-{bucket:05d}-{file_no:04d}.arrow"
            yield _write_atomically(FileSystems.join(self.out, split, name),
                                    sink.getvalue().to_pybytes())


def _write_atomically(path: str, data: bytes) -> str:
    with FileSystems.create(path + ".tmp") as fh:
        fh.write(data)
    FileSystems.rename([path + ".tmp"], [path])
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_index(out: Path, cfg: ShardConfig, model_path: Path, vocab_size: int,
                inputs: dict[str, str]) -> dict:
    shards = []
    for path in sorted(out.glob("*/part-*.arrow")):
        with pa.ipc.open_stream(pa.memory_map(str(path))) as reader:
            rows = sum(batch.num_rows for batch in reader)
        shards.append({"path": path.relative_to(out).as_posix(), "split": path.parent.name,
                       "rows": rows, "tokens": rows * cfg.seq_len,
                       "bytes": path.stat().st_size, "sha256": _sha256(path)})
    splits = sorted({s["split"] for s in shards})
    index = {
        "format": "arrow-ipc-stream", "column": "input_ids", "seq_len": cfg.seq_len,
        "dtype": token_dtype(vocab_size).name, "vocab_size": vocab_size, "eos_id": spm.EOS_ID,
        "tokenizer_sha256": _sha256(model_path), "inputs": inputs, "shards": shards,
        "totals": {split: {"rows": sum(s["rows"] for s in shards if s["split"] == split),
                           "tokens": sum(s["tokens"] for s in shards if s["split"] == split)}
                   for split in splits},
    }
    index["totals"]["all"] = {"rows": sum(s["rows"] for s in shards),
                              "tokens": sum(s["tokens"] for s in shards)}
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=2, sort_keys=True), "utf-8")
    os.replace(tmp, out / "index.json")
    return index


def run(cfg: ShardConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    model_path = str(Path(inputs["tokenizer"]) / "tokenizer.model")

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | "Read" >> ReadDocuments(str(inputs["dedup"]))
            | "Tokenize" >> beam.ParDo(Tokenize(cfg, model_path))  # (split, shard) -> doc tokens
            | "GroupByShard" >> beam.GroupByKey()
            | "PackAndWrite" >> beam.ParDo(PackAndWrite(cfg, str(out), model_path))
        )

    counters = run_pipeline(build, options, NAME)
    keys = {name: (read_manifest(Path(folder)) or {}).get("key", "") for name, folder in
            inputs.items()}
    index = write_index(Path(out), cfg, Path(model_path), spm.load(model_path).get_piece_size(),
                        keys)
    tokens = counters.get("tokens", 0) + counters.get("eos_tokens", 0)
    packed = counters.get("tokens_packed", 0)
    indexed = index["totals"]["all"]["tokens"]
    if tokens != packed + counters.get("tokens_dropped_tail", 0) or packed != indexed:
        raise CountersMismatch(
            f"shard: token counts do not add up: {counters}, index {index['totals']}")
    return counters
