"""Shard stage: tokenize, pack and write Arrow shards that training memory-maps (Beam).

Contract: `run(cfg: ShardConfig, {"dedup": docs, "tokenizer": model}, out, options) -> counters`.
Each input file (one source's documents, at most `[ingest] file_bytes` of them) is packed on its
own, in parallel and in bounded memory, with no shuffle:
1. Documents whose split is in `cfg.splits` are tokenized (one SentencePiece per worker) and
   assigned to `validation` when `stable_hash(id)` falls in `validation_fraction`, else to
   `train`, so no document's tokens are in both.
2. Per split, the file's documents are ordered by a stable hash of their id (a deterministic
   shuffle; training shuffles sequences globally again), concatenated with EOS after each, and
   cut into `seq_len` sequences without padding; the tail shorter than `seq_len` is dropped and
   counted (at most one sequence per file and split).
3. The sequences go to Arrow IPC streams `out/<split>/part-<file>-FFFF.arrow` of at most
   `shard_bytes` of tokens, one column `input_ids` (list<uint16>, or uint32 when the vocabulary
   exceeds 65,536), each written under a temporary name and renamed. Beside them,
   `out/<split>/documents-<file>.parquet` maps every document id to its first token and token
   count in the file's stream (lineage from a sequence back to its documents).
4. `out/index.json` (per-shard source, rows, tokens, bytes, sha256; totals per split and per
   source and split; the tokenizer's sha256; the input stages' keys) is written last. An input
   file holds one source's documents, so no sequence crosses sources: the mix stage and training
   weight sources by these per-source files.
Same inputs give the same bytes whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.io import (
    ReadFiles,
    basename,
    count,
    iter_batches,
    parquet_files,
    run_pipeline,
    text_bytes,
)
from pipelines.manifest import (
    CountersMismatch,
    RunOptions,
    file_facts,
    read_manifest,
    sha256_file,
)
from pipelines.progress import Reporter
from pipelines.recipe import ShardConfig
from tokenizer import spm
from tokenizer.unigram import UnigramEncoder, with_eos

NAME = "shard"
PROGRESS_INPUT = "dedup"
VERSION = 5  # 2: size-bounded files, document lineage, input keys; 3: batched tokenize;
# 4: packed per input file (bounded memory, no shuffle), files named after it; 5: index.json
# gives each file's source and tokens, sequences and files per source and split
_FRACTION_SCALE = 1_000_000
_ENCODE_CHUNK = 2048  # documents per SentencePiece call in the shard stage


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


_PLACEMENT_HASH = hashlib.blake2b(digest_size=24, person=b"sieve-shard")


def _placement_digest(doc_id: str) -> bytes:
    h = _PLACEMENT_HASH.copy()  # cheaper than a new keyed object per document
    h.update(doc_id.encode("utf-8"))
    return h.digest()


def placements(doc_ids: list[str], validation_fraction: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per document: is it validation, and its order key; from one 24-byte stable hash of its id
    (independent 64-bit draws), vectorised over the batch."""
    digests = b"".join(map(_placement_digest, doc_ids))
    draws = np.frombuffer(digests, dtype=">u8").reshape(-1, 3).astype(np.uint64)
    is_validation = draws[:, 0] % _FRACTION_SCALE < round(validation_fraction * _FRACTION_SCALE)
    return is_validation, draws[:, 2]



class PackFile(beam.DoFn):
    """(index, dedup file) -> its documents tokenized, placed in train or validation, ordered by
    a stable hash of their id, packed into `seq_len` sequences and written as
    `<split>/part-<file>-NNNN.arrow` (at most `shard_bytes` of tokens each) beside
    `<split>/documents-<file>.parquet` (lineage). Holds one input file's tokens, never more."""

    def __init__(self, cfg: ShardConfig, out: str, model_path: str,
                 progress_dir: str | None) -> None:
        self.cfg, self.out, self.model_path = cfg, out, model_path
        self.progress_dir = progress_dir

    def setup(self) -> None:
        self.sp = spm.load(self.model_path)
        # The compiled unigram encoder gives SentencePiece's ids at three times its speed
        # (tokenizer/unigram.py); models it does not cover go through SentencePiece.
        self.encoder = UnigramEncoder.load(self.model_path)
        self.dtype = token_dtype(self.sp.get_piece_size())
        self.eos = (spm.EOS_ID,)
        self.progress = Reporter(self.progress_dir)

    def encode(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids and the number per text."""
        if self.encoder is not None:
            return self.encoder.encode(texts)
        # One thread per worker: Beam parallelises across workers (and cores) itself.
        encoded = self.sp.encode(texts.to_pylist(), num_threads=1)
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        flat = np.fromiter(itertools.chain.from_iterable(encoded), np.uint32,
                           int(lengths.sum()))
        return flat, lengths

    def process(self, element: tuple[int, str]) -> Iterator[str]:
        _, path = element
        groups: dict[str, tuple[list, list, list, list]] = {
            "train": ([], [], [], []), "validation": ([], [], [], [])}  # orders ids lengths tokens
        for table in iter_batches(path, ["id", "split", "text"]):
            self._tokenize(table, groups)
            nbytes = text_bytes(table)
            count(NAME, "text_bytes", nbytes)
            self.progress.advance(docs=table.num_rows, nbytes=nbytes)
        stem = basename(path).removesuffix(".parquet")
        for split, (orders, ids, lengths, tokens) in groups.items():
            if not ids:
                continue
            yield from self._pack(split, stem, np.concatenate(orders), ids,
                                  np.concatenate(lengths), np.concatenate(tokens))
        self.progress.advance(files=1)
        self.progress.flush()

    def _tokenize(self, batch: pa.Table, groups: dict) -> None:
        count(NAME, "in", batch.num_rows)
        wanted = pc.is_in(batch.column("split"), pa.array(self.cfg.splits))
        # Filtering copies every column, the text included: only when something is left out.
        packed = batch if pc.all(wanted).as_py() else batch.filter(wanted)
        count(NAME, "dropped:not_pretraining_split", batch.num_rows - packed.num_rows)
        kept_ids = packed.column("id").to_pylist()
        texts = packed.column("text")
        is_validation, orders = placements(kept_ids, self.cfg.validation_fraction)
        empty = 0
        for lo in range(0, len(texts), _ENCODE_CHUNK):
            flat, lengths = self.encode(texts.slice(lo, _ENCODE_CHUNK))
            starts = np.cumsum(lengths) - lengths
            empty += int((lengths == 0).sum())
            count(NAME, "tokens", int(lengths.sum()))
            for is_val, split in ((False, "train"), (True, "validation")):
                js = np.flatnonzero((lengths > 0)
                                    & (is_validation[lo:lo + len(lengths)] == is_val))
                if not len(js):
                    continue
                orders_, ids_, lengths_, tokens_ = groups[split]
                orders_.append(orders[lo + js])
                ids_.extend(kept_ids[lo + j] for j in js.tolist())
                lengths_.append(lengths[js] + 1)
                # Each document's tokens followed by EOS, in one flat array.
                tokens_.append(with_eos(flat, starts[js], lengths[js], spm.EOS_ID)
                               .astype(self.dtype, copy=False))
        count(NAME, "dropped:no_tokens", empty)
        count(NAME, "out", len(kept_ids) - empty)

    def _pack(self, split: str, stem: str, order_keys: np.ndarray, ids_all: list[str],
              lengths_all: np.ndarray, tokens_all: np.ndarray) -> Iterator[str]:
        starts_all = np.cumsum(lengths_all) - lengths_all
        # By order hash, then id: a deterministic shuffle of the file's documents.
        perm = np.argsort(order_keys, kind="stable")
        if np.any(np.diff(order_keys[perm]) == 0):  # a 64-bit tie: let the ids decide
            perm = np.asarray(sorted(range(len(ids_all)),
                                     key=lambda k: (int(order_keys[k]), ids_all[k])), np.int64)
        lengths = lengths_all[perm]  # tokens and EOS
        # Every document's tokens (and EOS) in the new order: one concatenation of slices
        # (views), cheaper than gathering token by token.
        starts_old, ends_old = starts_all[perm].tolist(), (starts_all + lengths_all)[perm].tolist()
        stream = np.concatenate([tokens_all[a:b] for a, b in zip(starts_old, ends_old,
                                                                   strict=True)])
        ids_col = [ids_all[k] for k in perm]
        starts = np.cumsum(lengths) - lengths
        seq_len = self.cfg.seq_len
        n_seq = len(stream) // seq_len
        count(NAME, "eos_tokens", len(ids_col))
        count(NAME, "sequences", n_seq)
        count(NAME, "tokens_packed", n_seq * seq_len)
        count(NAME, "tokens_dropped_tail", len(stream) - n_seq * seq_len)
        documents = pa.table({"id": ids_col, "start_token": pa.array(starts, pa.int64()),
                              "num_tokens": pa.array(lengths, pa.int64())})
        yield _write_atomically(FileSystems.join(self.out, split, f"documents-{stem}.parquet"),
                                lambda sink: pq.write_table(documents, sink, compression="zstd"))
        rows_per_file = max(1, self.cfg.shard_bytes // (seq_len * self.dtype.itemsize))
        for file_no, first in enumerate(range(0, n_seq, rows_per_file)):
            last = min(first + rows_per_file, n_seq)
            values = pa.array(stream[first * seq_len: last * seq_len])
            offsets = pa.array(np.arange(0, (last - first) * seq_len + 1, seq_len, dtype=np.int32))
            table = pa.table({"input_ids": pa.ListArray.from_arrays(offsets, values)})
            name = f"part-{stem}-{file_no:04d}.arrow"
            yield _write_atomically(FileSystems.join(self.out, split, name),
                                    lambda sink, table=table: _write_stream(sink, table))


def _write_stream(sink: pa.NativeFile, table: pa.Table) -> None:
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)


def _write_atomically(path: str, write: Callable[[pa.NativeFile], None]) -> str:
    """`write(sink)` into `path` + ".tmp" (any Beam filesystem), then rename into place."""
    with FileSystems.create(path + ".tmp") as fh:
        write(pa.PythonFile(fh, mode="w"))
    FileSystems.rename([path + ".tmp"], [path])
    return path


_PART = re.compile(r"part-(?P<source>.+)-\d{5}(?:-\d{3})+-\d{4}\.arrow")


def shard_source(name: str) -> str:
    """The source of a shard file, from its name (`part-<source>-<task>-<file>-<part>.arrow`,
    after the ingest file it was packed from)."""
    match = _PART.fullmatch(name)
    if match is None:
        raise ValueError(f"{name}: not a shard file name (part-<source>-NNNNN-NNN-NNNN.arrow)")
    return match["source"]


def write_index(out: Path, cfg: ShardConfig, model_path: Path, vocab_size: int,
                inputs: dict[str, str], workers: int = 1) -> dict:
    shards = []
    paths = sorted(out.glob("*/part-*.arrow"), key=lambda p: p.relative_to(out).as_posix())
    for path, facts in zip(paths, file_facts(paths, workers), strict=True):
        shards.append({"path": path.relative_to(out).as_posix(), "split": path.parent.name,
                       "source": shard_source(path.name),
                       "rows": facts["rows"], "tokens": facts["rows"] * cfg.seq_len,
                       "bytes": facts["bytes"], "sha256": facts["sha256"]})
    splits = sorted({s["split"] for s in shards})
    by_source: dict[str, dict[str, dict[str, int]]] = {}
    for s in shards:
        totals = by_source.setdefault(s["source"], {}).setdefault(
            s["split"], {"sequences": 0, "tokens": 0, "files": 0})
        totals["sequences"] += s["rows"]
        totals["tokens"] += s["tokens"]
        totals["files"] += 1
    index = {
        "format": "arrow-ipc-stream", "column": "input_ids", "seq_len": cfg.seq_len,
        "dtype": token_dtype(vocab_size).name, "vocab_size": vocab_size, "eos_id": spm.EOS_ID,
        "tokenizer_sha256": sha256_file(model_path), "inputs": inputs, "shards": shards,
        "sources": by_source,
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

    files = parquet_files(str(inputs["dedup"]))

    def build(p: beam.Pipeline) -> None:
        _ = (
            p
            | "Read" >> ReadFiles(files)  # (index, path)
            | "Pack" >> beam.ParDo(PackFile(cfg, str(out), model_path, options.progress_dir))
        )

    counters = run_pipeline(build, options, NAME)
    keys = {name: (read_manifest(Path(folder)) or {}).get("key", "") for name, folder in
            inputs.items()}
    index = write_index(Path(out), cfg, Path(model_path), spm.load(model_path).get_piece_size(),
                        keys, options.workers)
    tokens = counters.get("tokens", 0) + counters.get("eos_tokens", 0)
    packed = counters.get("tokens_packed", 0)
    indexed = index["totals"]["all"]["tokens"]
    if tokens != packed + counters.get("tokens_dropped_tail", 0) or packed != indexed:
        raise CountersMismatch(
            f"shard: token counts do not add up: {counters}, index {index['totals']}")
    return counters
