"""Dedup stage: decontamination, exact dedup, then MinHash LSH, all in Beam, on batches.

Contract: `run(cfg: DedupConfig, {"clean": folder}, out, options) -> counters`.
Only the pretraining splits (`cfg.pretraining_splits`) are deduplicated; evaluation splits pass
through untouched and are what the pretraining documents are decontaminated against.

1. Decontamination: a pretraining document sharing a `decontaminate_ngram`-word n-gram with any
   evaluation document is dropped as `decontaminated` (the evaluation n-gram hashes are one sorted
   array, a side input: evaluation sets are small by nature); its rejected row's meta names the
   first matching n-gram's words (`matched_ngram`).
2. Exact: documents keyed by a 128-bit hash of their normalised text (`minhash.exact_key`:
   whitespace collapsed, lower-cased); per key the best-ranked is kept, the rest dropped as
   `duplicate_exact`.
3. MinHash LSH without a single-node union-find (ARCHITECTURE.md): signatures are computed in
   batches (`pipelines.minhash`, identical to datasketch); each document goes to one bucket per
   band; within a bucket every document is linked to the better-ranked members whose estimated
   Jaccard reaches `threshold` (to the best-ranked member when `verify` is off), at most
   `max_links_per_doc` of them, the first in rank order (compared one by one until that many
   pass: a bucket of s near copies costs about s x max_links_per_doc comparisons, not the
   s(s-1)/2 pairs, 128 million at 16,000 copies, bench/dedup_runaway.py). A document is
   dropped as `duplicate_minhash` only for a linked document that has no better-ranked link
   itself (a root, which is certainly kept), so chains of weak links cannot remove content
   whose only similar survivor is gone: every removed document has a kept document it directly
   resembles. Documents whose better neighbours are all removed themselves are kept (a few
   duplicates left rather than content lost).
4. Rank (the keep rule): earlier build first (incremental), then `source_priority`, then longer
   text, then id; deterministic whatever the number of workers.

The plan moves metadata, not documents, and moves it in batches (bench/dedup_vs_datatrove.py:
per-document Beam elements, and rows or signatures crossing shuffles they are not needed in, cost
more than the MinHash computation):
- `Prepare` turns a record batch into one value per bucket partition (`BandEntries`: bucket
  keys and the documents as columns, `Docs`) and its signatures, keyed by where they wait for
  requests; a bundle appends them to one scratch file per partition, and the elements are the
  paths.
- Exact dedup is "band -1", whose bucket key is the exact key: the same shuffle as the LSH bands.
  Exact duplicates have the same words, hence the same signature and the same bucket in every
  band, so each LSH bucket holds whole exact groups and ignores all but their best member: the
  LSH decision equals running it on the exact survivors only.
- `Buckets` finds the buckets of two or more members and asks for their signatures only; those
  travel to the bucket partition (`fetch_signatures`), where `LinkGroups` verifies and links.
  No step holds every signature, and a document no bucket shares never ships its signature.
- Links travel in batches to the partition of their target, where roots are known; drops travel
  to the shard of the dropped document, where the rows are: one join, per output shard.

Outputs: `docs/`, `rejected/` (with `meta.duplicate_of`), `signatures/` (id, rank terms, signature:
what a later build dedups against), `clusters.json` (size histogram, largest clusters with sample
ids, clusters over `max_cluster_size`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

import apache_beam as beam
import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.io import (
    DocumentSinks,
    ParquetSink,
    ReadFiles,
    basename,
    check_document_outputs,
    count,
    iter_batches,
    num_rows,
    parquet_files,
    run_pipeline,
    settle_heap,
    text_bytes,
    with_reasons,
)
from pipelines.manifest import RunOptions, held_out_fingerprint
from pipelines.minhash import MinHasher, encode_array, keys_of, ngram_hashes64, words
from pipelines.progress import Reporter
from pipelines.recipe import DedupConfig
from pipelines.schema import dump_meta, stable_hash

NAME = "dedup"
PROGRESS_INPUT = "clean"
VERSION = 8  # 3: batched plan; words hashed with FNV-1a (signatures of version 2 differ);
# 4: one output file per input file, rows streamed (signatures as in version 3);
# 5: Chinese, Japanese and Thai text shingled by its splitter's words (its signatures differ),
# 256 permutations for verification; 6: decontamination against the held-out set too, exact
# dedup can be turned off; 7: decontaminated rows name their matching n-gram; 8: ids ranked in
# code point order even where one ends in NUL (a NumPy string array tied "a" and "a\x00")
# Which word hashes (hence signatures) each stage version made: comparable when equal.
SIGNATURES_OF_VERSION = {3: 3, 4: 3, 5: 5, 6: 5, 7: 5, 8: 5}

Rank = tuple  # (generation, source priority, -chars, id): smaller is better
SIGNATURE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    # The keep rule's terms: index in this build's source_priority, minus the text length.
    pa.field("priority", pa.int32(), nullable=False),
    pa.field("neg_chars", pa.int64(), nullable=False),
    pa.field("signature", pa.list_(pa.uint32()), nullable=False),
])
EXACT_BAND = -1
ENTRIES_PER_PARTITION = 1_000_000
MIN_PARTITIONS = 4
_CHUNK = 4096  # documents per Prepare step: bounds memory whatever the row group size


def fingerprint(cfg: DedupConfig) -> dict | None:
    """Part of the stage key beyond the recipe section: the held-out files' content."""
    return held_out_fingerprint(cfg.held_out)


def with_meta(meta: str, key: str, value: str) -> str:
    """A row's meta JSON with one more key: `duplicate_of` (a duplicate's keeper) or
    `matched_ngram` (a decontaminated document's evaluation n-gram)."""
    parsed = json.loads(meta)
    parsed[key] = value
    return dump_meta(parsed)


def by_partition(keys: Iterable[str], partitions: int) -> np.ndarray:
    return np.fromiter((stable_hash(k) % partitions for k in keys), dtype=np.int64)


def partition_count(documents: int, cfg: DedupConfig) -> int:
    """Bucket, signature and root partitions: enough that one holds about ENTRIES_PER_PARTITION
    band entries (what a partition's step holds in memory), whatever the corpus size; never
    fewer than MIN_PARTITIONS, so that two workers share the work. The decisions do not depend
    on it: every entry of a bucket lands in the same partition."""
    entries = documents * (cfg.bands + 1)
    return max(MIN_PARTITIONS, -(-entries // ENTRIES_PER_PARTITION))


# ---- decontamination ------------------------------------------------------------------------

class SortedUnion(beam.CombineFn):
    """uint64 arrays -> one sorted array of their distinct values (merged once, at the end)."""

    def create_accumulator(self) -> list[np.ndarray]:
        return []

    def add_input(self, acc: list[np.ndarray], array: np.ndarray) -> list[np.ndarray]:
        if len(array):
            acc.append(array)
        return acc

    def merge_accumulators(self, accs: Iterable[list[np.ndarray]]) -> list[np.ndarray]:
        return [np.unique(np.concatenate(arrays)) for arrays in [[a for acc in accs for a in acc]]
                if arrays]

    def extract_output(self, acc: list[np.ndarray]) -> np.ndarray:
        return np.unique(np.concatenate(acc)) if acc else np.zeros(0, dtype=np.uint64)


def evaluation_ngrams(table: pa.Table, pretraining: set[str], n: int) -> np.ndarray:
    """A record batch -> the distinct n-gram hashes of its evaluation documents."""
    evaluation = pc.invert(pc.is_in(table.column("split"), pa.array(sorted(pretraining))))
    texts = table.column("text").filter(evaluation).to_pylist()
    return np.unique(ngram_hashes64(texts, n)[0]) if texts else np.zeros(0, dtype=np.uint64)


def held_out_ngrams(paths: list[str], n: int, batch: int = 512) -> Iterable[np.ndarray]:
    """The held-out set's distinct n-gram hashes (training/heldout.py reads it), a batch of
    documents at a time; counts its documents as `held_out_documents`."""
    from training.heldout import read_held_out

    texts = read_held_out(paths)
    count(NAME, "held_out_documents", len(texts))
    for start in range(0, len(texts), batch):
        yield np.unique(ngram_hashes64(texts[start: start + batch], n)[0])


def contaminated(texts: list[str], n: int, eval_grams: np.ndarray) -> np.ndarray:
    """int64 per text: the index of its first n-gram found in the sorted evaluation n-gram
    hashes (the n-gram of words `words(text)[i: i + n]`), or -1 if it shares none."""
    first = np.full(len(texts), -1, dtype=np.int64)
    if not texts or not len(eval_grams):
        return first
    grams, offsets = ngram_hashes64(texts, n)
    pos = np.searchsorted(eval_grams, grams).clip(max=len(eval_grams) - 1)
    found = np.flatnonzero(eval_grams[pos] == grams)
    if len(found):
        text_of = np.searchsorted(offsets, found, side="right") - 1
        starts, at = np.unique(text_of, return_index=True)  # `found` ascends: first per text
        first[starts] = found[at] - offsets[starts]
    return first


def matched_ngram(text: str, first: int, n: int) -> str:
    """The words of a decontaminated document's first evaluation n-gram (what the inspect page
    shows beside it)."""
    return " ".join(words(text)[first: first + n])


# ---- batches of metadata ----------------------------------------------------------------------

_BAND_MIX = (np.arange(1, 1025, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def bucket_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64[docs, bands]: a 64-bit hash of each band's rows (equal bands, equal keys)."""
    banded = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    mixed = (banded * _BAND_MIX[:rows]).sum(axis=2, dtype=np.uint64)  # wraps mod 2^64
    mixed ^= mixed >> np.uint64(33)
    mixed *= np.uint64(0xFF51AFD7ED558CCD)
    return mixed ^ (mixed >> np.uint64(33))


class Docs(NamedTuple):
    """Documents as columns: what the buckets need to know of them. Columns, not a list of rank
    tuples: the shuffle pickles a handful of arrays instead of an object per document. The ids
    travel as an Arrow string array (a list of str is taken too): a batch's ids went to up to
    bands + 1 partitions, each a pickled list of strings, 5.1 s of the dedup stage's 78 s at
    1M documents with 1 worker; an Arrow take and pickle copy two buffers."""

    ids: pa.Array | list[str]
    generation: np.ndarray  # int8: 0 for an earlier build's documents, 1 for this build's
    priority: np.ndarray  # int32: index of the source in source_priority
    neg_chars: np.ndarray  # int64: minus the text length (longer first)
    exact: np.ndarray  # uint64[docs, 2]: exact key
    file: np.ndarray  # int32: index of the input file the document is in (-1: earlier build)

    def id_list(self) -> list[str]:
        return self.ids.to_pylist() if isinstance(self.ids, pa.Array) else list(self.ids)

    def rank(self, i: int, ids: list[str] | None = None) -> Rank:
        """Document i's rank terms; `ids`: `id_list()`, where the caller ranks many."""
        doc_id = ids[i] if ids is not None else (
            self.ids[i].as_py() if isinstance(self.ids, pa.Array) else self.ids[i])
        return (int(self.generation[i]), int(self.priority[i]), int(self.neg_chars[i]), doc_id)

    def take(self, idx: np.ndarray) -> Docs:
        return Docs(_id_array(self.ids).take(pa.array(idx, pa.int64())), self.generation[idx],
                    self.priority[idx], self.neg_chars[idx], self.exact[idx], self.file[idx])

    @staticmethod
    def concat(parts: list[Docs]) -> Docs:
        return Docs(pa.concat_arrays([_id_array(p.ids) for p in parts]),
                    *(np.concatenate([p[k] for p in parts]) for k in range(1, 6)))

    def positions(self) -> np.ndarray:
        """int64 per document: its place in rank order (the keep rule). The ids are ordered by
        Arrow (UTF-8 bytes: code point order, as str compares); a NumPy string array drops
        trailing NULs, so "a" and "a\\x00" tied there."""
        by_id = np.empty(len(self.ids), dtype=np.int64)
        by_id[pc.sort_indices(_id_array(self.ids)).to_numpy()] = np.arange(len(self.ids))
        order = np.lexsort((by_id, self.neg_chars, self.priority, self.generation))
        position = np.empty(len(order), dtype=np.int64)
        position[order] = np.arange(len(order))
        return position


def _id_array(ids: pa.Array | list[str]) -> pa.Array:
    return ids if isinstance(ids, pa.Array) else pa.array(ids, pa.string())


def exact_array(keys: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(keys), dtype=np.uint64).reshape(-1, 2)


class BandEntries(NamedTuple):
    """One batch's (band, bucket) entries that fall in one partition, with their documents."""

    bands: np.ndarray  # int16[entries]; EXACT_BAND for the exact key
    keys: np.ndarray  # uint64[entries]
    docs: np.ndarray  # int32[entries]: index into `of`
    of: Docs


def band_entries(docs: Docs, sigs: np.ndarray | None, cfg: DedupConfig, partitions: int,
                 with_exact: bool):
    """A batch of documents -> ("bands", partition, its BandEntries): one value per partition
    per batch instead of one per (document, band); and, when verifying, ("sigs", signature
    partition, (exact keys, signatures)). `BundleSpills` parks them in scratch files."""
    columns = []
    if with_exact:
        columns.append(docs.exact[:, :1])
    if sigs is not None:
        columns.append(bucket_keys(sigs, cfg.bands, cfg.rows))
    if not columns or not len(docs.ids):
        return
    keys = np.hstack(columns)  # [docs, bands (+1)]
    first_band = EXACT_BAND if with_exact else 0
    part = (keys % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        doc_idx, column = np.nonzero(part == p)
        # doc_idx ascends (row-major): np.unique's values and inverse without its sort
        new = _runs(doc_idx)
        used, local = doc_idx[new], np.cumsum(new) - 1
        yield "bands", int(p), BandEntries(
            (column + first_band).astype(np.int16), keys[doc_idx, column], local.astype(np.int32),
            docs.take(used))
    if sigs is not None and cfg.verify:
        where = signature_partitions(docs.exact, partitions)
        for sp in np.unique(where):
            mine = np.flatnonzero(where == sp)
            yield "sigs", int(sp), (docs.exact[mine], sigs[mine])


SCRATCH = "_scratch"  # under the stage's output folder; removed when the job ends


def scratch_file(folder: str) -> str:
    """A new scratch file's path (unique: a bundle on any worker may write one)."""
    return FileSystems.join(folder, f"{uuid.uuid4().hex}.pkl")


def spill(value: Any, folder: str) -> str:
    """Park a value (arrays, a table) in a scratch file; the shuffle moves its path instead."""
    path = scratch_file(folder)
    with FileSystems.create(path) as fh:
        pickle.dump(value, fh, protocol=5)
    return path


def unspill(path: str) -> Any:
    with FileSystems.open(path) as fh:
        return pickle.loads(fh.read())


def spill_each(values: Iterable[Any], folder: str) -> list[tuple[str, int, int]]:
    """Park several values in one scratch file: (path, offset, size) of each, for
    `unspill_range`."""
    path = scratch_file(folder)
    where, offset = [], 0
    with FileSystems.create(path) as fh:
        for value in values:
            raw = pickle.dumps(value, protocol=5)
            fh.write(raw)
            where.append((path, offset, len(raw)))
            offset += len(raw)
    return where


def unspill_range(path: str, offset: int, size: int) -> Any:
    with FileSystems.open(path) as fh:
        fh.seek(offset)
        return pickle.loads(fh.read(size))


def unspill_all(paths: Iterable[str]) -> list[Any]:
    """Every value of the files (a `BundleSpills` file holds several, one after another)."""
    values = []
    for path in sorted(paths):  # sorted: the same order on any runner
        with FileSystems.open(path) as fh:
            raw = fh.read()
        data = io.BytesIO(raw)
        while data.tell() < len(raw):
            values.append(pickle.load(data))
    return values


class BundleSpills:
    """The scratch files a DoFn's bundle appends values to: one per (tag, partition), so a
    bundle's values for a partition wait in one file. One file per batch and partition made
    their number grow with the square of the corpus (batches x partitions: 9,900 files at 1M
    documents, 7 s of creating, opening and deleting them). At most MAX_OPEN files are open at
    once: past that, the open ones are closed and new ones started."""

    MAX_OPEN = 256

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.open: dict[tuple[str, int], tuple[str, Any]] = {}
        self.closed: list[tuple[str, int, str]] = []

    def add(self, tag: str, partition: int, value: Any) -> None:
        entry = self.open.get((tag, partition))
        if entry is None:
            if len(self.open) >= self.MAX_OPEN:
                self._close()
            path = scratch_file(self.folder)
            entry = self.open[(tag, partition)] = (path, FileSystems.create(path))
        pickle.dump(value, entry[1], protocol=5)

    def _close(self) -> None:
        for (tag, partition), (path, fh) in sorted(self.open.items()):
            fh.close()
            self.closed.append((tag, partition, path))
        self.open = {}

    def finish(self):
        """The bundle's files, closed, as the outputs the shuffles take: ("bands", (partition,
        path)) and ("sigs", (signature partition, ("sigs", path))), in windowed form (what
        finish_bundle must emit)."""
        self._close()
        closed, self.closed = self.closed, []
        for tag, partition, path in closed:
            value = (partition, path) if tag == "bands" else (partition, ("sigs", path))
            yield beam.pvalue.TaggedOutput(tag, WindowedValue(value, MIN_TIMESTAMP,
                                                              [GlobalWindow()]))


class Prepare(beam.DoFn):
    """(file index, path) -> for each chunk of the file: its band entries and signatures per
    partition (see `band_entries`), appended to the bundle's scratch files, one per partition,
    which the bundle's end emits as ("bands", (partition, path)) and ("sigs", ...)
    (`BundleSpills`); the decontamination drops and the candidates' signatures, keyed by the
    file: (file, ("drops", [drop])), (file, ("signatures", chunk, path))."""

    def __init__(self, cfg: DedupConfig, scratch: str, partitions: int,
                 progress_dir: str | None) -> None:
        self.cfg, self.scratch, self.partitions = cfg, scratch, partitions
        self.progress_dir = progress_dir

    def setup(self) -> None:
        cfg = self.cfg
        self.hasher = MinHasher(cfg.num_perm, cfg.seed, cfg.ngram) if cfg.minhash else None
        self.progress = Reporter(self.progress_dir)
        settle_heap()

    def start_bundle(self) -> None:
        self.spills = BundleSpills(self.scratch)

    def finish_bundle(self):
        yield from self.spills.finish()

    def process(self, element: tuple[int, str], eval_grams: np.ndarray | None = None):
        file, path = element
        for chunk, table in enumerate(iter_batches(path, ["id", "source", "split", "text"],
                                                   _CHUNK)):
            yield from self._chunk(file, chunk, table, eval_grams)
            nbytes = text_bytes(table)
            count(NAME, "text_bytes", nbytes)
            self.progress.advance(docs=table.num_rows, nbytes=nbytes)
        self.progress.advance(files=1)
        self.progress.flush()

    def _chunk(self, file: int, chunk: int, table: pa.Table, eval_grams: np.ndarray | None):
        cfg = self.cfg
        ids = table.column("id").combine_chunks()
        sources = table.column("source").to_pylist()
        pretraining = set(cfg.pretraining_splits)
        candidate = np.array([s in pretraining for s in table.column("split").to_pylist()],
                             dtype=bool)
        if eval_grams is not None and len(eval_grams):
            texts = table.column("text").to_pylist()
            pre = np.flatnonzero(candidate)
            n = cfg.decontaminate_ngram
            first = contaminated([texts[i] for i in pre], n, eval_grams)
            hit = pre[first >= 0]
            if len(hit):
                # The matching n-gram travels where a duplicate's keeper does.
                yield beam.pvalue.TaggedOutput("files", (file, ("drops", [
                    (ids[int(i)].as_py(), "decontaminated", (), matched_ngram(texts[i], int(at), n))
                    for i, at in zip(hit, first[first >= 0], strict=True)])))
            candidate[hit] = False
        idx = np.flatnonzero(candidate)
        c_ids = ids.take(pa.array(idx, pa.int64()))
        c_text = table.column("text").take(pa.array(idx, pa.int64()))
        priority = {s: k for k, s in reversed(list(enumerate(cfg.source_priority)))}
        unlisted = len(cfg.source_priority)
        docs = Docs(c_ids, np.ones(len(idx), dtype=np.int8),
                    np.array([priority.get(sources[i], unlisted) for i in idx], dtype=np.int32),
                    -pc.utf8_length(c_text).to_numpy(zero_copy_only=False).astype(np.int64),
                    None, np.full(len(idx), file, dtype=np.int32))
        # Lower-cased code points, read by both kernels (exact keys keep case when told to),
        # straight from the Arrow column.
        encoded = encode_array(c_text) if self.hasher or cfg.lowercase else None
        keys_from = encoded if cfg.lowercase else encode_array(c_text, lower=False)
        docs = docs._replace(exact=exact_array(keys_of(keys_from)))
        sigs = self.hasher.signatures_of(encoded) if self.hasher else None
        for tag, partition, value in band_entries(docs, sigs, cfg, self.partitions, cfg.exact):
            self.spills.add(tag, partition, value)
        if sigs is not None and len(sigs):
            signatures = pa.table({
                "id": c_ids, "priority": docs.priority, "neg_chars": docs.neg_chars,
                "signature": pa.FixedSizeListArray.from_arrays(
                    pa.array(sigs.ravel()), sigs.shape[1]).cast(pa.list_(pa.uint32())),
            }, schema=SIGNATURE_SCHEMA)
            yield beam.pvalue.TaggedOutput("files", (file, (
                "signatures", chunk, spill(signatures, self.scratch))))


class ReadEarlier(beam.DoFn):
    """(index, signatures file of an earlier build) -> its band entries (`earlier_entries`)."""

    def __init__(self, cfg: DedupConfig, partitions: int, scratch: str) -> None:
        self.cfg, self.partitions, self.scratch = cfg, partitions, scratch

    def start_bundle(self) -> None:
        self.spills = BundleSpills(self.scratch)

    def process(self, element: tuple[int, str]):
        for table in iter_batches(element[1], list(SIGNATURE_SCHEMA.names), _CHUNK):
            for tag, partition, value in earlier_entries(table, self.cfg, self.partitions):
                self.spills.add(tag, partition, value)

    def finish_bundle(self):
        yield from self.spills.finish()


def earlier_entries(table: pa.Table, cfg: DedupConfig, partitions: int):
    """A batch of an earlier build's signatures -> its band entries (generation 0: they keep
    priority and are never linked away; no exact band: they are not re-emitted)."""
    ids = table.column("id").combine_chunks()
    exact = exact_array([hashlib.blake2b(b"earlier\x00" + i.encode("utf-8"),
                                         digest_size=16).digest() for i in ids.to_pylist()])
    docs = Docs(ids, np.zeros(len(ids), np.int8), table.column("priority").to_numpy(),
                table.column("neg_chars").to_numpy(), exact, np.full(len(ids), -1, np.int32))
    sigs = table.column("signature").combine_chunks().flatten().to_numpy(
        zero_copy_only=False).astype(np.uint32).reshape(len(ids), cfg.num_perm)
    yield from band_entries(docs, sigs, cfg, partitions, False)


# ---- buckets -> links and exact drops -------------------------------------------------------

def _runs(*columns: np.ndarray) -> np.ndarray:
    """bool per row of sorted columns: True where a new run of equal values starts."""
    new = np.zeros(len(columns[0]), dtype=bool)
    new[:1] = True
    for column in columns:
        new[1:] |= column[1:] != column[:-1]
    return new


def _shared(key: np.ndarray) -> np.ndarray:
    """bool per key: another element has the same value."""
    order = np.argsort(key)
    ranked = key[order]
    same = ranked[1:] == ranked[:-1]
    mark = np.zeros(len(key), dtype=bool)
    mark[1:] |= same
    mark[:-1] |= same
    out = np.empty(len(key), dtype=bool)
    out[order] = mark
    return out


def _row_labels(rows: np.ndarray) -> np.ndarray:
    """int64 per row of a uint64[n, 2] array: equal rows, equal labels; labels ascend with the
    rows in numeric order. (np.unique(axis=0) gives the same grouping but sorts the rows as
    opaque bytes: 4x slower; at 1M documents a profile put numpy's sorts at 12 s of dedup's
    143 s.)"""
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    ranked = rows[order]
    labels = np.empty(len(rows), dtype=np.int64)
    labels[order] = np.cumsum(_runs(ranked[:, 0], ranked[:, 1])) - 1
    return labels


def _first_pairs(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Groups of rows [start, start + size) -> (better, worse) row pairs: the group's first row
    with each row after it."""
    position = _positions(sizes)
    later = position > 0
    first = np.repeat(starts, sizes)[later]
    return first, first + position[later]


def _pass_count(threshold: float, permutations: int) -> int:
    """The fewest equal permutations whose share (a float64 division, as the estimate is
    computed) reaches `threshold`; permutations + 1 when none does."""
    return next((m for m in range(permutations + 1) if m / permutations >= threshold),
                permutations + 1)


def _link_capacity(sizes: np.ndarray, max_links: int) -> int:
    """The most links `_verified_links` can make: the row at position p of a bucket links to
    at most min(p, max_links) better rows."""
    k = sizes.astype(np.int64) - 1
    full = np.minimum(k, max_links)
    return int((full * (full + 1) // 2 + (k - full) * max_links).sum())


@numba.njit(cache=True, nogil=True)
def _verified_links(starts, sizes, rows, movable, table, needed, max_links, out_better,
                    out_worse):  # pragma: no cover (compiled)
    """For each bucket's rows after the first (whose document may move), its better rows in
    order whose signatures agree in at least `needed` permutations, at most `max_links` of
    them: the pairs into out_*, a row at a time, stopping at `max_links` passes, so a bucket of
    s near-duplicates costs about s x max_links comparisons and holds no s^2/2 pairs.
    Returns (pairs, rows with a candidate, rows none passed)."""
    n = 0
    candidates = 0
    rejected = 0
    perms = table.shape[1]
    for g in range(len(starts)):
        s0 = starts[g]
        for p in range(1, sizes[g]):
            w = s0 + p
            dw = rows[w]
            if not movable[dw]:
                continue
            candidates += 1
            hits = 0
            for q in range(p):
                db = rows[s0 + q]
                same = 0
                for k in range(perms):
                    if table[db, k] == table[dw, k]:
                        same += 1
                        if same >= needed:
                            break
                    elif same + perms - 1 - k < needed:
                        break
                if same >= needed:
                    if n == len(out_better):
                        raise IndexError("_verified_links: more links than _link_capacity")
                    out_better[n] = s0 + q
                    out_worse[n] = w
                    n += 1
                    hits += 1
                    if hits == max_links:
                        break
            if hits == 0:
                rejected += 1
    return n, candidates, rejected


class Buckets(beam.DoFn):
    """partition -> [path of BandEntries] -> what its buckets decide, in batches per destination:
    - ("files", (file, ("drops", [drop]))): exact duplicates, final here;
    - with verification, (partition, ("groups", path of Groups)): the LSH buckets of two or more
      exact-distinct members, and ("requests", (signature partition, (partition, [exact keys]))):
      the signatures those members need, fetched from where they were computed (no step holds
      every signature, and a document no bucket shares with another never ships its signature);
    - without, ("links", ...): the links to each bucket's best member (see `link_groups`).
    Vectorised over the partition's entries: a Python loop per bucket cost more than computing
    the signatures."""

    def __init__(self, cfg: DedupConfig, partitions: int, scratch: str) -> None:
        self.cfg, self.partitions, self.scratch = cfg, partitions, scratch

    def process(self, element: tuple[int, Iterable[str]]):
        partition, paths = element
        batches: list[BandEntries] = unspill_all(paths)
        if not batches:
            return
        offsets = np.cumsum([0] + [len(b.of.ids) for b in batches])
        band = np.concatenate([b.bands for b in batches])
        key = np.concatenate([b.keys for b in batches])
        doc = np.concatenate([b.docs + offsets[k] for k, b in enumerate(batches)])
        # Only entries whose key another entry shares can make a drop or a link, and most keys
        # are one document's: the others are ranked and sorted, not every document of the
        # partition (each document is in up to bands + 1 partitions: at 1M documents that
        # ranking and sorting was 14 s of dedup's 113 s, 20x its time at 100k).
        shared = _shared(key)
        band, key, doc = band[shared], key[shared], doc[shared]
        used, doc = np.unique(doc, return_inverse=True)
        docs = Docs.concat([b.of for b in batches]).take(used)
        del batches
        ids = docs.id_list()
        exact = _row_labels(docs.exact)
        position = docs.positions()

        # Exact groups inside each bucket: their best-ranked member stands for them.
        order = np.lexsort((position[doc], exact[doc], key, band))
        band, key, doc = band[order], key[order], doc[order]
        first = _runs(band, key, exact[doc])
        keeper = doc[np.maximum.accumulate(np.where(first, np.arange(len(doc)), 0))]
        lost = ~first & (band == EXACT_BAND)
        drops = [(ids[d], "duplicate_exact", docs.rank(k, ids), ids[k])
                 for d, k in zip(doc[lost], keeper[lost], strict=True)]
        yield from _by_file("files", drops, docs.file[doc[lost]])

        # LSH buckets of two or more (exact-distinct) members, best first.
        lsh = first & (band != EXACT_BAND)
        band, key, doc = band[lsh], key[lsh], doc[lsh]
        order = np.lexsort((position[doc], key, band))
        band, key, doc = band[order], key[order], doc[order]
        starts = np.flatnonzero(_runs(band, key))
        sizes = np.diff(np.r_[starts, len(doc)])
        many = sizes > 1
        count(NAME, "lsh_buckets_with_collisions", int(many.sum()))
        rows = doc[np.repeat(starts[many], sizes[many]) + _positions(sizes[many])]
        used, rows = np.unique(rows, return_inverse=True)
        groups = Groups(rows.astype(np.int32), sizes[many], docs.take(used))
        if not self.cfg.verify:
            yield from _tagged("links", link_groups(groups, None, self.cfg), self.partitions)
            return
        if len(used):
            yield partition, ("groups", spill(groups, self.scratch))
        where = signature_partitions(groups.of.exact, self.partitions)
        for sp in np.unique(where):
            yield beam.pvalue.TaggedOutput("requests", (int(sp), (
                "request", partition, groups.of.exact[where == sp])))


def _by_file(tag: str | None, drops: list[tuple], files: np.ndarray):
    """Drops -> one (file, ("drops", [drops])) element per input file they fall in."""
    groups = defaultdict(list)
    for drop, f in zip(drops, files.tolist(), strict=True):
        groups[f].append(drop)
    for f, batch in sorted(groups.items()):
        item = (f, ("drops", batch))
        yield item if tag is None else beam.pvalue.TaggedOutput(tag, item)


class Groups(NamedTuple):
    """A partition's LSH buckets of two or more members."""

    rows: np.ndarray  # int32: a member (index into `of`) per row, by bucket
    sizes: np.ndarray  # int64: rows per bucket; members of a bucket best-ranked first
    of: Docs


def signature_partitions(exact: np.ndarray, partitions: int) -> np.ndarray:
    """Where a document's signature waits for requests: by its exact key (exact duplicates have
    the same signature, and an earlier build's documents have keys of their own)."""
    return (exact[:, 1] % np.uint64(partitions)).astype(np.int64)


def _positions(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size - 1 for each size, concatenated."""
    total = int(sizes.sum())
    return np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)


class FetchSignatures(beam.DoFn):
    """signature partition -> [("sigs", path of (keys, uint32[keys, perms])) | ("request",
    partition, keys)] -> (partition, ("sigs", (path, offset, size) of (keys, their
    signatures))) per request. A signature partition's answers share one scratch file: a file
    per answer made their number grow with the square of the partitions (256 files at 1M
    documents, about 25,000 at 10M)."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch

    def process(self, element: tuple[int, Iterable[tuple]]):
        _, values = element
        values = list(values)
        stored = unspill_all(v[1] for v in values if v[0] == "sigs")
        requests = sorted(((v[1], v[2]) for v in values if v[0] == "request"),
                          key=lambda r: r[0])
        if not requests:
            return
        row = {k: i for i, k in enumerate(key for keys, _ in stored for key in key_bytes(keys))}
        sigs = np.concatenate([s for _, s in stored])
        answers = spill_each(((wanted, sigs[[row[k] for k in key_bytes(wanted)]])
                              for _, wanted in requests), self.scratch)
        for (partition, _), where in zip(requests, answers, strict=True):
            yield partition, ("sigs", where)


def key_bytes(exact: np.ndarray) -> list[bytes]:
    """uint64[docs, 2] exact keys -> 16 bytes each (hashable)."""
    raw = np.ascontiguousarray(exact).tobytes()
    return [raw[i: i + 16] for i in range(0, len(raw), 16)]


class LinkGroups(beam.DoFn):
    """partition -> its Groups and the signatures they asked for (scratch file ranges) -> links
    (`link_groups`)."""

    def __init__(self, cfg: DedupConfig, partitions: int) -> None:
        self.cfg, self.partitions = cfg, partitions

    def process(self, element: tuple[int, Iterable[tuple[str, str]]]):
        _, values = element
        values = list(values)
        sigs = {}
        for where in sorted(where for kind, where in values if kind == "sigs"):
            keys, found = unspill_range(*where)
            sigs.update(zip(key_bytes(keys), found, strict=True))
        for g in unspill_all(path for kind, path in values if kind == "groups"):
            yield from _tagged(None, link_groups(g, sigs, self.cfg), self.partitions)


def link_groups(groups: Groups, sigs: dict[bytes, np.ndarray] | None, cfg: DedupConfig
                ) -> list[tuple[str, int, Rank, str]]:
    """Buckets -> sorted (id, its file, better rank, better id) links: each member to the
    better-ranked
    members whose estimated Jaccard (from full signatures) reaches `threshold`, at most
    `max_links_per_doc` of them in rank order; to the bucket's best member without `sigs`."""
    starts = (np.cumsum(groups.sizes) - groups.sizes).astype(np.int64)
    doc = groups.rows
    # A document of the earlier build is final: never linked away.
    movable = groups.of.generation != 0
    if sigs is None:
        better, worse = _first_pairs(starts, groups.sizes)  # rows, not documents
        keep = movable[doc[worse]] if len(worse) else np.zeros(0, bool)
        better, worse = better[keep], worse[keep]
    else:
        table = np.stack([sigs[k] for k in key_bytes(groups.of.exact)]) if len(groups.of.ids) \
            else np.zeros((0, 1), np.uint32)
        size = _link_capacity(groups.sizes, cfg.max_links_per_doc)
        better, worse = np.empty(size, np.int64), np.empty(size, np.int64)
        n, candidates, rejected = _verified_links(
            starts, groups.sizes.astype(np.int64), doc.astype(np.int64), movable, table,
            _pass_count(cfg.threshold, table.shape[1]), cfg.max_links_per_doc, better, worse)
        better, worse = better[:n], worse[:n]
        if candidates:
            count(NAME, "lsh_candidates_rejected_by_verification", rejected)
    ids, files = groups.of.id_list(), groups.of.file
    return sorted({(ids[w], int(files[w]), groups.of.rank(b, ids), ids[b])
                   for b, w in zip(doc[better], doc[worse], strict=True)
                   if ids[b] != ids[w]})  # the same id in the earlier build: no duplicate


def _tagged(tag: str | None, links: list[tuple[str, int, Rank, str]], partitions: int):
    """Links -> ("in", links) to the partition of each target, ("out", ids) to the partition
    of each linking document: what `choose_roots` joins."""
    for p, v in _batched(None, links, lambda x: x[3], partitions):
        item = (p, ("in", v))
        yield item if tag is None else beam.pvalue.TaggedOutput(tag, item)
    for p, v in _batched(None, sorted({x[0] for x in links}), lambda x: x, partitions):
        item = (p, ("out", v))
        yield item if tag is None else beam.pvalue.TaggedOutput(tag, item)


def _batched(tag: str | None, items: list, key, partitions: int):
    """Items -> one (partition, [items]) element per partition (tagged when `tag`)."""
    groups = defaultdict(list)
    for item, p in zip(items, by_partition(map(key, items), partitions), strict=True):
        groups[int(p)].append(item)
    for p, group in sorted(groups.items()):
        yield (p, group) if tag is None else beam.pvalue.TaggedOutput(tag, (p, group))


def choose_roots(element: tuple[int, Iterable[tuple[str, list]]]):
    """partition -> [("in", links to targets here) | ("out", linking ids here)] -> for each
    document linked to a target that links to nobody better (a root, so kept), a drop for its
    best such root, batched by the input file of the dropped document."""
    _, values = element
    incoming, linking = set(), set()
    for kind, items in values:
        if kind == "in":
            incoming.update(items)
        else:
            linking.update(items)
    best: dict[str, tuple] = {}
    for doc, file, rank, target in incoming:
        if target not in linking and (doc not in best or (rank, target) < best[doc][2:4]):
            best[doc] = (doc, "duplicate_minhash", rank, target, file)
    drops = sorted(best.values())
    yield from _by_file(None, [d[:4] for d in drops], np.array([d[4] for d in drops], np.int64))


# ---- apply the drops, per input file ----------------------------------------------------------

class ApplyFile(beam.DoFn):
    """file -> [("file", path) | ("drops", [drop]) | ("signatures", chunk, path)] -> the
    same-named files in docs/, rejected/ and signatures/, streamed a batch at a time in the
    input's row order; counters, and ("clusters", (partition of the root, [(root, removed)]))."""

    def __init__(self, cfg: DedupConfig, out: str, partitions: int) -> None:
        self.cfg, self.out, self.partitions = cfg, out, partitions

    def process(self, element: tuple[int, Iterable[tuple]]):
        file, values = element
        values = list(values)
        (path,) = [v[1] for v in values if v[0] == "file"]
        best: dict[str, tuple] = {}  # id -> (id, reason, keeper rank, keeper)
        for value in values:
            for drop in value[1] if value[0] == "drops" else ():
                if drop[0] not in best or drop[2:] < best[drop[0]][2:]:
                    best[drop[0]] = drop
        name = basename(path)
        sinks = DocumentSinks(self.out, name)
        per_reason: Counter = Counter()
        found = 0
        for table in iter_batches(path):
            ids = table.column("id").to_pylist()
            dropped = [i for i, doc_id in enumerate(ids) if doc_id in best]
            if not dropped:
                sinks.write(table)
                count(NAME, "in", len(ids))
                count(NAME, "out", len(ids))
                continue
            found += len(dropped)
            metas = table.column("meta").to_pylist()
            reasons, rejected_metas = [], []
            for i in dropped:
                _, reason, _, keeper = best[ids[i]]
                reasons.append(reason)
                rejected_metas.append(
                    with_meta(metas[i], "duplicate_of", keeper) if reason.startswith("duplicate_")
                    else with_meta(metas[i], "matched_ngram", keeper)
                    if reason == "decontaminated" else metas[i])
                per_reason[reason] += 1
            keep = np.ones(len(ids), dtype=bool)
            keep[dropped] = False
            rejected = table.take(pa.array(dropped, pa.int64()))
            rejected = rejected.set_column(rejected.schema.get_field_index("meta"), "meta",
                                           pa.array(rejected_metas, pa.string()))
            sinks.write(table.filter(keep), with_reasons(rejected, reasons))
            count(NAME, "in", len(ids))
            count(NAME, "out", len(ids) - len(dropped))
        if found != len(best):
            raise RuntimeError(f"dedup {path}: a drop names a document not in the file")
        for reason, value in sorted(per_reason.items()):
            count(NAME, f"dropped:{reason}", value)
        yield from sinks.close()
        if self.cfg.minhash:
            # MinHash values are random: compressing them costs time and saves nothing.
            sink = ParquetSink(FileSystems.join(self.out, "signatures"), name, SIGNATURE_SCHEMA,
                               compression="none")
            pieces = sorted((v[1], v[2]) for v in values if v[0] == "signatures")
            for _, piece in pieces:
                sig_table = unspill(piece)
                # The signatures of the documents this build keeps: what a later build dedups
                # against.
                kept = np.array([i not in best for i in sig_table.column("id").to_pylist()], bool)
                sink.write(sig_table.filter(kept))
            yield from sink.close()
        minhash = [(d[3], d[0]) for d in best.values() if d[1] == "duplicate_minhash"]
        yield from _batched("clusters", minhash, lambda x: x[0], self.partitions)
        if file == 0:  # one element at least, so that clusters.json is written without clusters
            yield beam.pvalue.TaggedOutput("clusters", (0, []))


def cluster_stats(element: tuple[int, Iterable[list[tuple[str, str]]]], stats: ClusterStats):
    """partition -> [(root, removed id)] -> (None, ClusterStats accumulator of its clusters)."""
    _, batches = element
    members = defaultdict(list)
    for batch in batches:
        for root, doc in batch:
            members[root].append(doc)
    return None, stats.add_input(stats.create_accumulator(), sorted(members.items()))


def write_cluster_stats(element: tuple[None, Iterable], stats: ClusterStats, path: str) -> None:
    write_json(stats.extract_output(stats.merge_accumulators(element[1])), path)


class ClusterStats(beam.CombineFn):
    """[(root, [removed ids])] -> size histogram, the 10 largest clusters, clusters over limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def create_accumulator(self) -> tuple[Counter, list]:
        return Counter(), []

    def add_input(self, acc: tuple[Counter, list], clusters: list[tuple[str, list[str]]]):
        sizes, largest = acc
        for root, members in clusters:
            sizes[1 + len(members)] += 1
            largest.append((-(1 + len(members)), root, sorted(members)[:5]))
        return sizes, sorted(largest)[:10]

    def merge_accumulators(self, accs: Iterable[tuple[Counter, list]]):
        sizes, largest = Counter(), []
        for s, top in accs:
            sizes.update(s)
            largest = sorted(largest + top)[:10]
        return sizes, largest

    def extract_output(self, acc: tuple[Counter, list]) -> dict[str, Any]:
        sizes, largest = acc
        return {"clusters": sum(sizes.values()),
                "size_histogram": {str(k): v for k, v in sorted(sizes.items())},
                "largest": [{"size": -s, "kept": r, "sample_removed": m} for s, r, m in largest],
                "over_limit": sum(v for k, v in sizes.items() if k > self.limit),
                "limit": self.limit}


def write_json(stats: dict, path: str) -> None:
    with FileSystems.create(path) as fh:
        fh.write(json.dumps(stats, indent=2, sort_keys=True).encode("utf-8"))
    if stats["over_limit"]:
        logging.warning("dedup: %d clusters exceed max_cluster_size=%d (largest %d): check for "
                        "boilerplate or a too-loose threshold", stats["over_limit"],
                        stats["limit"], stats["largest"][0]["size"])


# ---- the job --------------------------------------------------------------------------------

def _check_earlier(cfg: DedupConfig) -> bool:
    """Validate `cfg.against` before the job starts; True when it has signatures to read."""
    earlier = cfg.against
    manifest_path = os.path.join(earlier, "manifest.json")
    if not os.path.exists(manifest_path):
        raise FileNotFoundError(f"dedup.against: {earlier} has no manifest.json (not a build)")
    with open(manifest_path, encoding="utf-8") as fh:
        manifest = json.load(fh)
    old = manifest["config"]
    old = {**old, "num_perm": max(old.get("permutations", 0), old["bands"] * old["rows"])}
    for key in ("ngram", "bands", "rows", "seed", "num_perm"):
        if old.get(key) != getattr(cfg, key):
            raise ValueError(f"dedup.against: {earlier} used {key}={old.get(key)}, this recipe "
                             f"{getattr(cfg, key)}: signatures are not comparable")
    earlier_version = manifest.get("version", VERSION)
    if SIGNATURES_OF_VERSION.get(earlier_version) != SIGNATURES_OF_VERSION[VERSION]:
        raise ValueError(f"dedup.against: {earlier} was built by dedup version "
                         f"{manifest['version']}, this is {VERSION}: its word hashes differ, "
                         "so its signatures are not comparable (rebuild it)")
    return bool(parquet_files(earlier, "signatures"))


class EvaluationNgrams(beam.DoFn):
    """(index, path) -> the distinct n-gram hashes of the file's evaluation documents (the
    text is read only for files that have some)."""

    def __init__(self, pretraining: list[str], n: int) -> None:
        self.pretraining, self.n = sorted(pretraining), n

    def process(self, element: tuple[int, str]):
        path = element[1]
        with FileSystems.open(path) as fh:
            splits = pq.read_table(fh, columns=["split"]).column("split")
        if pc.all(pc.is_in(splits, pa.array(self.pretraining))).as_py() is not False:
            return
        for table in iter_batches(path, ["split", "text"], _CHUNK):
            grams = evaluation_ngrams(table, set(self.pretraining), self.n)
            if len(grams):
                yield grams


def run(cfg: DedupConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    out = str(out)
    files = parquet_files(str(inputs["clean"]))
    partitions = partition_count(num_rows(files), cfg)
    has_earlier = _check_earlier(cfg) if cfg.against else False
    scratch = FileSystems.join(out, SCRATCH)

    def build(p: beam.Pipeline) -> None:
        inputs_ = p | "Read" >> ReadFiles(files)  # (index, path)
        side = []
        if cfg.decontaminate:
            grams = [inputs_ | "EvalNgrams" >> beam.ParDo(EvaluationNgrams(
                cfg.pretraining_splits, cfg.decontaminate_ngram))]
            if cfg.held_out:
                grams.append(p | "HeldOut" >> beam.Create([sorted(cfg.held_out)])
                             | "HeldOutNgrams" >> beam.FlatMap(held_out_ngrams,
                                                               cfg.decontaminate_ngram))
            eval_grams = (
                tuple(grams)
                | "EvalAndHeldOut" >> beam.Flatten()
                | "AllEvalNgrams" >> beam.CombineGlobally(SortedUnion())  # one sorted uint64 array
            )
            side = [beam.pvalue.AsSingleton(eval_grams)]
        prepared = inputs_ | "Prepare" >> beam.ParDo(
            Prepare(cfg, scratch, partitions, options.progress_dir), *side).with_outputs(
            "bands", "sigs", "files", main="unused")
        entries = [prepared.bands]  # partition -> path of BandEntries
        signatures = [prepared.sigs]  # signature partition -> ("sigs", path)
        if has_earlier:
            earlier = (
                p
                | "EarlierFiles" >> ReadFiles(parquet_files(cfg.against, "signatures"))
                | "EarlierBands" >> beam.ParDo(ReadEarlier(cfg, partitions, scratch)
                                               ).with_outputs("bands", "sigs", main="unused")
            )
            entries.append(earlier.bands)
            signatures.append(earlier.sigs)
        buckets = (
            tuple(entries)
            | "AllEntries" >> beam.Flatten()
            | "GroupByPartition" >> beam.GroupByKey()  # partition -> [path of BandEntries]
            | "Buckets" >> beam.ParDo(Buckets(cfg, partitions, scratch)).with_outputs(
                "files", "requests", "links", main="groups")
        )
        links = buckets.links  # partition -> ("in", links) | ("out", ids)
        if cfg.verify:
            fetched = (
                (*signatures, buckets.requests)
                | "SignaturesAndRequests" >> beam.Flatten()
                | "GroupBySignaturePartition" >> beam.GroupByKey()
                | "FetchSignatures" >> beam.ParDo(FetchSignatures(scratch))
            )
            links = (
                (buckets.groups, fetched)
                | "GroupsAndSignatures" >> beam.Flatten()
                | "GroupByBucketPartition" >> beam.GroupByKey()  # partition -> groups, sigs
                | "Link" >> beam.ParDo(LinkGroups(cfg, partitions))
            )
        minhash_drops = (
            links
            | "GroupByTarget" >> beam.GroupByKey()  # partition -> [("in", links) | ("out", ids)]
            | "Roots" >> beam.FlatMap(choose_roots)  # file -> ("drops", [drop])
        )
        every_file = p | "FileNames" >> beam.Create(
            [(i, ("file", path)) for i, path in enumerate(files)], reshuffle=False)
        applied = (
            (prepared.files, buckets.files, minhash_drops, every_file)
            | "FilesAndDrops" >> beam.Flatten()
            | "GroupByFile" >> beam.GroupByKey()  # file -> [("file", path) | drops | signatures]
            | "ApplyFile" >> beam.ParDo(ApplyFile(cfg, out, partitions)).with_outputs(
                "clusters", main="written")
        )
        if cfg.minhash:
            stats = ClusterStats(cfg.max_cluster_size)
            _ = (
                applied.clusters
                | "GroupByRoot" >> beam.GroupByKey()  # partition -> [(root, removed id)]
                | "Clusters" >> beam.Map(cluster_stats, stats)  # (None, partial statistics)
                | "AllClusters" >> beam.GroupByKey()
                | "WriteClusters" >> beam.Map(write_cluster_stats, stats,
                                              FileSystems.join(out, "clusters.json"))
            )

    try:
        counters = run_pipeline(build, options, NAME)
    finally:
        if FileSystems.exists(scratch):
            FileSystems.delete([scratch])
    check_document_outputs(NAME, out, counters)
    return counters
