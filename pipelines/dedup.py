"""Dedup stage: decontamination, exact dedup, then MinHash LSH, all in Beam.

Contract: `run(cfg: DedupConfig, {"clean": folder}, out, options) -> counters`.
Only the pretraining splits (`cfg.pretraining_splits`) are deduplicated; evaluation splits pass
through untouched and are what the pretraining documents are decontaminated against.

1. Decontamination: a pretraining document sharing a `decontaminate_ngram`-word n-gram with any
   evaluation document is dropped as `decontaminated` (the evaluation n-gram hashes are one sorted
   array, a side input: evaluation sets are small by nature).
2. Exact: documents keyed by the SHA-1 of their normalised text; per key the best-ranked is kept,
   the rest dropped as `duplicate_exact`.
3. MinHash LSH without a single-node union-find (ARCHITECTURE.md): signatures are computed in
   batches (`pipelines.minhash`, identical to datasketch); each document goes to one bucket per
   band; within a bucket every document is linked to the better-ranked members whose estimated
   Jaccard reaches `threshold` (to the best-ranked member when `verify` is off), at most
   `max_links_per_doc` of them. A document is dropped as `duplicate_minhash` only for a linked
   document that has no better-ranked link itself (a root, which is certainly kept), so chains of
   weak links cannot remove content whose only similar survivor is gone: every removed document
   has a kept document it directly resembles. Documents whose better neighbours are all removed
   themselves are kept (a few duplicates left rather than content lost).
4. Rank (the keep rule): earlier build first (incremental), then `source_priority`, then longer
   text, then id; deterministic whatever the number of workers.

Outputs: `docs/`, `rejected/` (with `meta.duplicate_of`), `signatures/` (id, rank, signature:
what a later build dedups against), `clusters.json` (size histogram, largest clusters with sample
ids, clusters over `max_cluster_size`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.io import (
    ReadDocuments,
    WriteRows,
    check_document_outputs,
    count,
    parquet_files,
    run_pipeline,
    write_kept_and_rejected,
)
from pipelines.manifest import RunOptions
from pipelines.minhash import MinHasher, ngram_hashes64, words
from pipelines.recipe import DedupConfig

NAME = "dedup"
VERSION = 2  # 2: decontamination and MinHash LSH

Rank = tuple  # (generation, source priority, -chars, id): smaller is better
SIGNATURE_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("rank", pa.string(), nullable=False),  # JSON of the rank tuple
    pa.field("signature", pa.list_(pa.uint32()), nullable=False),
])


def exact_key(text: str, lowercase: bool) -> str:
    norm = " ".join(text.split())
    return hashlib.sha1((norm.lower() if lowercase else norm).encode("utf-8")).hexdigest()


def rank_of(row: dict, priority: list[str], generation: int = 1) -> Rank:
    source = row["source"]
    prio = priority.index(source) if source in priority else len(priority)
    return (generation, prio, -len(row["text"]), row["id"])


def _with_duplicate_of(row: dict, keeper: str) -> dict:
    meta = json.loads(row["meta"])
    meta["duplicate_of"] = keeper
    return {**row, "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True)}


# ---- decontamination ------------------------------------------------------------------------

def ngram_hashes(text: str, n: int) -> np.ndarray:
    return ngram_hashes64(words(text), n)


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


class Decontaminate(beam.DoFn):
    """row -> row (main output), or (row, "decontaminated") to the `dropped` output when it
    shares an n-gram with the sorted evaluation n-gram hashes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def process(self, row: dict, eval_grams: np.ndarray):
        grams = ngram_hashes(row["text"], self.n)
        if len(grams) and len(eval_grams):
            pos = np.searchsorted(eval_grams, grams).clip(max=len(eval_grams) - 1)
            if np.any(eval_grams[pos] == grams):
                yield beam.pvalue.TaggedOutput("dropped", (row, "decontaminated"))
                return
        yield row


# ---- exact ----------------------------------------------------------------------------------

def keep_best(group: tuple[str, Iterable[tuple[Rank, dict]]]):
    """text hash -> [(rank, row)]: the best-ranked (rank, row) to the main output, the others
    as (row, "duplicate_exact") to the `dropped` output. One step with two outputs, not a
    step and three filters: every step costs Beam's per-element overhead on every document."""
    _, members = group
    (rank, keeper), *others = sorted(members, key=lambda m: m[0])
    yield rank, keeper
    for _, row in others:
        yield beam.pvalue.TaggedOutput(
            "dropped", (_with_duplicate_of(row, keeper["id"]), "duplicate_exact"))


# ---- MinHash LSH ----------------------------------------------------------------------------

class Sign(beam.DoFn):
    """A batch of (rank, row) -> the batch's [(id, rank, signature)]."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg

    def setup(self) -> None:
        self.hasher = MinHasher(self.cfg.bands * self.cfg.rows, self.cfg.seed, self.cfg.ngram)

    def process(self, batch: list[tuple[Rank, dict]]
                ) -> Iterator[list[tuple[str, Rank, np.ndarray]]]:
        sigs = self.hasher.signatures([row["text"] for _, row in batch])
        # One element per batch: the banding step works on batches too.
        yield [(row["id"], rank, sig) for (rank, row), sig in zip(batch, sigs, strict=True)]


_BAND_MIX = (np.arange(1, 1025, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def bucket_keys(sigs: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64[docs, bands]: a 64-bit hash of each band's rows (equal bands, equal keys)."""
    banded = sigs[:, : bands * rows].reshape(len(sigs), bands, rows).astype(np.uint64)
    mixed = (banded * _BAND_MIX[:rows]).sum(axis=2, dtype=np.uint64)  # wraps mod 2^64
    mixed ^= mixed >> np.uint64(33)
    mixed *= np.uint64(0xFF51AFD7ED558CCD)
    return mixed ^ (mixed >> np.uint64(33))


class BandEntries(NamedTuple):
    """One batch's (band, bucket) entries that fall in one partition, with their documents."""

    bands: np.ndarray  # int16[entries]
    keys: np.ndarray  # uint64[entries]
    docs: np.ndarray  # int32[entries]: index into ids / ranks / sigs
    ids: list[str]
    ranks: list[Rank]
    sigs: np.ndarray  # uint32[documents, permutations]


def partition_bands(batch: list[tuple[str, Rank, np.ndarray]], bands: int, rows: int,
                    partitions: int) -> Iterator[tuple[int, BandEntries]]:
    """A batch of signed documents -> (partition, BandEntries): one element per partition per
    batch instead of one per (document, band), so the shuffle moves arrays, not objects."""
    sigs = np.stack([s for _, _, s in batch])
    keys = bucket_keys(sigs, bands, rows)  # [docs, bands]
    part = (keys % np.uint64(partitions)).astype(np.int64)
    for p in np.unique(part):
        doc_idx, band_idx = np.nonzero(part == p)
        used, local = np.unique(doc_idx, return_inverse=True)
        yield int(p), BandEntries(band_idx.astype(np.int16), keys[doc_idx, band_idx],
                                  local.astype(np.int32), [batch[i][0] for i in used],
                                  [batch[i][1] for i in used], sigs[used])


def link_members(members: list[tuple[Rank, str, np.ndarray]], cfg: DedupConfig):
    """One bucket's members -> (id, (better rank, better id)) links (see the module contract)."""
    members = sorted(members, key=lambda m: (m[0], m[1]))
    sigs = np.stack([m[2] for m in members])
    for i in range(1, len(members)):
        rank, doc_id, _ = members[i]
        if rank[0] == 0:  # a document of the earlier build is final: never linked away
            continue
        if cfg.verify:
            similarity = (sigs[:i] == sigs[i]).mean(axis=1)
            better = np.flatnonzero(similarity >= cfg.threshold)
            count(NAME, "lsh_candidates_rejected_by_verification", int(better.size == 0))
        else:
            better = np.array([0])
        for j in better[: cfg.max_links_per_doc]:
            if members[j][1] != doc_id:
                yield doc_id, (members[j][0], members[j][1])


class LinkPartition(beam.DoFn):
    """partition -> [BandEntries] -> links for every bucket with two or more members."""

    def __init__(self, cfg: DedupConfig) -> None:
        self.cfg = cfg

    def process(self, element: tuple[int, Iterable[BandEntries]]):
        _, batches = element
        batches = list(batches)
        bands = np.concatenate([b.bands for b in batches])
        keys = np.concatenate([b.keys for b in batches])
        which = np.concatenate([np.full(len(b.bands), k, np.int32) for k, b in enumerate(batches)])
        docs = np.concatenate([b.docs for b in batches])
        order = np.lexsort((keys, bands))
        bands, keys, which, docs = bands[order], keys[order], which[order], docs[order]
        starts = np.flatnonzero(np.r_[True, (bands[1:] != bands[:-1]) | (keys[1:] != keys[:-1])])
        sizes = np.diff(np.r_[starts, len(keys)])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            count(NAME, "lsh_buckets_with_collisions")
            members = []
            for k in range(start, start + size):
                b, d = batches[which[k]], docs[k]
                members.append((b.ranks[d], b.ids[d], b.sigs[d]))
            yield from link_members(members, self.cfg)


def choose_roots(element: tuple[str, dict[str, list]]) -> Iterator[tuple[str, tuple[Rank, str]]]:
    """Keyed by a linked-to document j: if j links to nobody better (a root, so kept), each
    document linking to j may be dropped for it."""
    j, groups = element
    if groups["links_of_j"]:
        return
    for doc_id, j_rank in groups["linked_from"]:
        yield doc_id, (j_rank, j)


class ClusterStats(beam.CombineFn):
    """(root, [removed ids]) -> size histogram, the 10 largest clusters, clusters over limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def create_accumulator(self) -> tuple[Counter, list]:
        return Counter(), []

    def add_input(self, acc: tuple[Counter, list], cluster: tuple[str, list[str]]):
        sizes, largest = acc
        root, members = cluster
        sizes[1 + len(members)] += 1
        largest = sorted([*largest, (-(1 + len(members)), root, sorted(members)[:5])])[:10]
        return sizes, largest

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


def apply_drops(element: tuple[str, dict[str, list]]) -> Iterator[tuple[dict, str | None]]:
    _, groups = element
    (row,) = groups["row"]
    roots = groups["root"]
    if roots:
        _, root = min(roots)
        yield _with_duplicate_of(row, root), "duplicate_minhash"
    else:
        yield row, None


# ---- the job --------------------------------------------------------------------------------

def _read_earlier_signatures(p: beam.Pipeline, cfg: DedupConfig) -> beam.PCollection:
    earlier = cfg.against
    manifest_path = os.path.join(earlier, "manifest.json")
    if not os.path.exists(manifest_path):
        raise FileNotFoundError(f"dedup.against: {earlier} has no manifest.json (not a build)")
    with open(manifest_path, encoding="utf-8") as fh:
        old = json.load(fh)["config"]
    for key in ("ngram", "bands", "rows", "seed"):
        if old.get(key) != getattr(cfg, key):
            raise ValueError(f"dedup.against: {earlier} used {key}={old.get(key)}, this recipe "
                             f"{getattr(cfg, key)}: signatures are not comparable")
    if not parquet_files(earlier, "signatures"):
        return p | "NoEarlier" >> beam.Create([])
    return (
        p
        | "ReadEarlier" >> beam.io.ReadFromParquet(
            FileSystems.join(earlier, "signatures", "*.parquet"))
        | "EarlierFirst" >> beam.Map(lambda r: (
            r["id"], (0, *json.loads(r["rank"])[1:]), np.asarray(r["signature"], np.uint32)))
    )


def run(cfg: DedupConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    out = str(out)
    pretraining, priority = set(cfg.pretraining_splits), cfg.source_priority
    lowercase = cfg.lowercase

    def build(p: beam.Pipeline) -> None:
        docs = p | "Read" >> ReadDocuments(str(inputs["clean"]))
        parts = docs | "BySplit" >> beam.Partition(
            lambda r, _: 0 if r["split"] in pretraining else 1, 2)
        pre, evaluation = parts[0], parts[1]
        outcomes = [evaluation | "EvalPassThrough" >> beam.Map(lambda r: (r, None))]

        if cfg.decontaminate:
            n = cfg.decontaminate_ngram
            eval_grams = (
                evaluation
                | "EvalNgrams" >> beam.Map(lambda r: ngram_hashes(r["text"], n))
                | "AllEvalNgrams" >> beam.CombineGlobally(SortedUnion())  # one sorted uint64 array
            )
            checked = pre | "Decontaminate" >> beam.ParDo(
                Decontaminate(n), beam.pvalue.AsSingleton(eval_grams)).with_outputs(
                    "dropped", main="clean")
            outcomes.append(checked.dropped)
            pre = checked.clean

        exact = (
            pre
            | "KeyByText" >> beam.Map(lambda r: (exact_key(r["text"], lowercase),
                                                 (rank_of(r, priority), r)))
            | "GroupByText" >> beam.GroupByKey()  # text hash -> [(rank, row)]
            | "KeepBest" >> beam.FlatMap(keep_best).with_outputs("dropped", main="kept")
        )
        outcomes.append(exact.dropped)
        survivors = exact.kept  # (rank, row)

        if not cfg.minhash:
            outcomes.append(survivors | "NoMinHash" >> beam.MapTuple(lambda _, r: (r, None)))
        else:
            signed = (
                survivors
                | "Batch" >> beam.BatchElements(min_batch_size=64, max_batch_size=512)
                | "Sign" >> beam.ParDo(Sign(cfg))  # [(id, rank, signature)] per batch
            )
            indexed = signed
            if cfg.against:
                earlier = (_read_earlier_signatures(p, cfg)
                           | "BatchEarlier" >> beam.BatchElements(min_batch_size=256,
                                                                  max_batch_size=4096))
                indexed = (signed, earlier) | "WithEarlier" >> beam.Flatten()
            partitions = 8 * cfg.num_shards
            links = (
                indexed
                | "Bands" >> beam.FlatMap(partition_bands, cfg.bands, cfg.rows, partitions)
                | "GroupByPartition" >> beam.GroupByKey()  # partition -> [BandEntries]
                | "Link" >> beam.ParDo(LinkPartition(cfg))  # id -> (better rank, better id)
                | "DistinctLinks" >> beam.Distinct()
            )
            linked_from = links | "ByTarget" >> beam.MapTuple(
                lambda doc_id, better: (better[1], (doc_id, better[0])))
            links_of = links | "BySource" >> beam.MapTuple(lambda doc_id, _: (doc_id, True))
            drops = (
                {"linked_from": linked_from, "links_of_j": links_of}
                | "JoinTargets" >> beam.CoGroupByKey()
                | "Roots" >> beam.FlatMap(choose_roots)  # id -> (root rank, root id)
            )
            _ = (
                drops
                | "BestRoot" >> beam.CombinePerKey(min)
                | "ByRoot" >> beam.Map(lambda d: (d[1][1], d[0]))
                | "GroupByRoot" >> beam.GroupByKey()  # root -> [removed ids]
                | "ToList" >> beam.MapTuple(lambda root, ids: (root, list(ids)))
                | "ClusterStats" >> beam.CombineGlobally(ClusterStats(cfg.max_cluster_size))
                | "WriteClusters" >> beam.Map(write_json, FileSystems.join(out, "clusters.json"))
            )
            outcomes.append(
                {"row": survivors | "ById" >> beam.MapTuple(lambda _, r: (r["id"], r)),
                 "root": drops}
                | "JoinDrops" >> beam.CoGroupByKey()
                | "ApplyDrops" >> beam.FlatMap(apply_drops)
            )
            # The signatures of the documents this build keeps: what a later build dedups against.
            _ = (
                {"sig": signed | "SigById" >> beam.FlatMap(
                    lambda batch: [(sig[0], sig) for sig in batch]), "root": drops}
                | "JoinSigDrops" >> beam.CoGroupByKey()
                | "KeptSignatures" >> beam.FlatMap(
                    lambda e: [] if e[1]["root"] else [e[1]["sig"][0]])
                | "SignatureRows" >> beam.Map(lambda s: {
                    "id": s[0], "rank": json.dumps(list(s[1])), "signature": s[2].tolist()})
                | "WriteSignatures" >> WriteRows(FileSystems.join(out, "signatures"),
                                                 SIGNATURE_SCHEMA, cfg.num_shards)
            )
        pairs = tuple(outcomes) | "AllOutcomes" >> beam.Flatten()  # (row, reason | None)
        write_kept_and_rejected(pairs, out, NAME, cfg.num_shards)

    counters = run_pipeline(build, options, NAME)
    check_document_outputs(NAME, out, counters)
    return counters
