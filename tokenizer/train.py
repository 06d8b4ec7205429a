"""Tokenizer stage: SentencePiece trained on the deduplicated training text.

Contract: `run(cfg: TokenizerConfig, {"dedup": folder}, out, options) -> counters`. Streams the
dedup stage's documents (a record batch at a time; `options.workers` files at once, on threads:
the reading and the compiled line scan release the GIL), keeps those whose split is in
`cfg.splits`, takes a bounded, seeded sample of `input_sentence_size` of their non-empty lines
while streaming (`SentenceSample`: a sample per file, merged in file order, so the sample and the
model do not depend on the worker count), writes it to a file SentencePiece trains from (so
neither the corpus nor the sample sits in Python while it trains), and writes:
- `out/tokenizer.model` (SentencePiece) and `out/hf/` (loads with
  `transformers.AutoTokenizer.from_pretrained`, bos/eos/pad/unk set);
- `out/stats.json`: per source, on up to `stats_docs_per_source` documents of every split, bytes
  per token, unknown-token and byte-fallback rates, and the share of the vocabulary used.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import quality_kernels
from pipelines.io import iter_batches, parquet_files, text_bytes
from pipelines.manifest import RunOptions
from pipelines.progress import Reporter
from pipelines.recipe import TokenizerConfig
from tokenizer import spm

NAME = "tokenizer"
PROGRESS_INPUT = "dedup"
VERSION = 5  # 2: transformers export, per-source statistics; 3: sample taken while streaming;
# 4: character_coverage chosen from the sample's scripts; 5: long lines sampled as pieces
# A line's position in read order: its file's index in the upper bits, its number among the
# file's lines below. Files are read in parallel; positions order them as one reader would.
POSITION_BITS = 40
# SentencePiece skips, with only a log line, every training line longer than its
# max_sentence_length (`spm.MAX_SENTENCE_BYTES`): 11 of the 100,000 lines sampled from the 1M
# scale corpus (long one-paragraph reviews). A line longer than this is sampled as pieces of at
# most this many bytes (`line_pieces`), cut after a sentence or a word where one ends in the
# second half of the piece, so every sampled sentence is one SentencePiece trains on.
MAX_SENTENCE_BYTES = spm.MAX_SENTENCE_BYTES


def source_stats(model_path: str, samples: dict[str, list[str]]) -> dict[str, dict]:
    sp = spm.load(model_path)
    vocab_size = sp.get_piece_size()
    byte_piece = np.array([sp.is_byte(i) for i in range(vocab_size)])
    used_all = np.zeros(vocab_size, dtype=bool)
    stats = {}
    for source, texts in sorted(samples.items()):
        ids = np.concatenate([np.asarray(x, dtype=np.int64) for x in sp.encode(texts)] or
                             [np.zeros(0, dtype=np.int64)])
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        used = np.zeros(vocab_size, dtype=bool)
        used[ids] = True
        used_all |= used
        stats[source] = {
            "docs": len(texts), "bytes": n_bytes, "tokens": int(len(ids)),
            "bytes_per_token": round(n_bytes / max(len(ids), 1), 4),
            "unk_rate": round(float(np.mean(ids == spm.UNK_ID)) if len(ids) else 0.0, 6),
            "byte_fallback_rate": round(float(np.mean(byte_piece[ids])) if len(ids) else 0.0, 6),
            "vocab_used": round(float(used.mean()), 4),
        }
    stats["all"] = {"vocab_size": vocab_size, "vocab_used": round(float(used_all.mean()), 4)}
    return stats


class SentenceSample:
    """A bounded, seeded sample of `size` training sentences (lines with a character that is not
    white space), taken while the documents stream past: the `size` lines with the smallest
    keys, a key being a 64-bit hash of (seed, document id, line number). The same as drawing
    `size` lines uniformly without replacement, the same whatever the order the documents come
    in, and never more than 2 x `size` lines held (their UTF-8 bytes in one array). `size` 0
    keeps every line (memory then grows with the corpus: for small builds only). The lines are
    found and hashed by a compiled scan of the Arrow column's bytes: no Python string per line.

    A sample of one file (`base`: the file's first position, `threshold`: the largest key the
    whole sample keeps so far, a bound that only drops lines the merged sample would drop) can be
    taken apart from the others and `merge`d into the whole in file order; the merged sample is
    the one a single reader would take."""

    def __init__(self, size: int, seed: int, base: int = 0,
                 threshold: int = np.iinfo(np.uint64).max,
                 max_bytes: int = MAX_SENTENCE_BYTES) -> None:
        self.size, self.seed, self.base, self.max_bytes = size, seed, base, max_bytes
        self.data: list[np.ndarray] = []  # uint8 line bytes, concatenated
        self.ends: list[np.ndarray] = []  # int64 end of each line within its data chunk
        self.keys: list[np.ndarray] = []
        self.positions: list[np.ndarray] = []  # read order, to write the sample in that order
        self.held = 0
        self.seen = 0
        self.threshold = int(threshold)

    def add(self, ids: pa.Array, texts: pa.Array) -> None:
        id_data, id_offsets = quality_kernels.utf8_buffers(ids)
        data, offsets = quality_kernels.utf8_buffers(texts)
        n = len(offsets) - 1
        # >= lines: every piece but a line's last holds at least half of max_bytes
        starts = np.empty(int(np.count_nonzero(data == 10)) + n + 1
                          + 2 * len(data) // self.max_bytes, np.int64)
        ends = np.empty_like(starts)
        keys = np.empty(len(starts), np.uint64)
        found = _scan_lines(data, offsets, id_data, id_offsets,
                            np.uint64(self.seed % 2**64),
                            np.uint64(self.threshold if self.size else np.iinfo(np.uint64).max),
                            quality_kernels.char_flags(), self.max_bytes, starts, ends, keys)
        count, total = int(found[0]), int(found[1])
        positions = self.base + self.seen + found[2:]
        self.seen += total
        if not count:
            return
        starts, ends, keys = starts[:count], ends[:count], keys[:count]
        self.data.append(_gather(data, starts, ends))
        self.ends.append(np.cumsum(ends - starts))
        self.keys.append(keys)
        self.positions.append(positions)
        self.held += count
        if self.size and self.held >= 2 * self.size:
            self._prune()

    def merge(self, other: SentenceSample) -> None:
        """Take in the sample of the documents read after this one's (their positions later)."""
        self.data += other.data
        self.ends += other.ends
        self.keys += other.keys
        self.positions += other.positions
        self.held += other.held
        self.seen += other.seen
        if self.size and self.held >= 2 * self.size:
            self._prune()

    def _lines(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(data, line starts, line ends, keys, positions) over every chunk."""
        bases = np.cumsum([0] + [len(d) for d in self.data])
        starts = np.concatenate([np.r_[0, e[:-1]] + base for e, base in
                                 zip(self.ends, bases, strict=False)] or [np.zeros(0, np.int64)])
        ends = np.concatenate([e + base for e, base in zip(self.ends, bases, strict=False)]
                              or [np.zeros(0, np.int64)])
        data = np.concatenate(self.data) if self.data else np.zeros(0, np.uint8)
        return data, starts, ends, np.concatenate(self.keys), np.concatenate(self.positions)

    def _prune(self) -> None:
        data, starts, ends, keys, positions = self._lines()
        if len(keys) > self.size:
            # The size smallest keys (ties broken by read order: keys are 64-bit, ties rare).
            order = np.lexsort((positions, keys))[: self.size]
            order.sort()
            starts, ends, keys, positions = starts[order], ends[order], keys[order], \
                positions[order]
            self.threshold = int(keys.max())
        self.data = [_gather(data, starts, ends)]
        self.ends, self.keys, self.positions = [np.cumsum(ends - starts)], [keys], [positions]
        self.held = len(keys)

    def trim(self) -> None:
        """Down to `size` lines, if it holds more."""
        if self.size and self.held > self.size:
            self._prune()

    def write(self, path: Path) -> int:
        """The sample, one sentence per line in read order, to `path`; returns its size."""
        self.trim()
        data, starts, ends, _, positions = self._lines()
        order = np.argsort(positions, kind="stable")
        with open(path, "wb") as fh:
            for k in order.tolist():
                fh.write(data[starts[k]:ends[k]].tobytes())
                fh.write(b"\n")
        return len(order)


def _gather(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The byte ranges [starts[i], ends[i]) of data, concatenated."""
    out = np.empty(int((ends - starts).sum()), np.uint8)
    _copy_ranges(data, starts, ends, out)
    return out


@numba.njit(cache=True, nogil=True)
def _copy_ranges(data, starts, ends, out):  # pragma: no cover (compiled)
    w = 0
    for i in range(len(starts)):
        n = ends[i] - starts[i]
        out[w: w + n] = data[starts[i]: ends[i]]
        w += n


@numba.njit(cache=True, nogil=True)
def _fmix64(h):  # pragma: no cover (compiled)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


_SENTENCE_ENDS = (".", "!", "?", " ", "\u3002", "\uff01", "\uff1f")  # 。！？ too


def line_pieces(line: str, max_bytes: int = MAX_SENTENCE_BYTES) -> list[str]:
    """The pieces a line is sampled as (the reference `_cut` follows): the line itself if its
    UTF-8 fits in max_bytes; else, piece by piece, the longest prefix of at most max_bytes
    that ends after one of `_SENTENCE_ENDS` and holds more than half of max_bytes, or failing
    that the longest prefix of whole characters that fits."""
    pieces = []
    data = line.encode("utf-8")
    while len(data) > max_bytes:
        cut = 0
        for r in range(max_bytes, max_bytes // 2, -1):
            if (data[r] & 0xC0) != 0x80 and data[:r].decode("utf-8").endswith(_SENTENCE_ENDS):
                cut = r
                break
        if not cut:
            cut = max_bytes
            while (data[cut] & 0xC0) == 0x80:
                cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    return pieces + [data.decode("utf-8")]


@numba.njit(cache=True, nogil=True)
def _cut(data, a, b, max_bytes):  # pragma: no cover (compiled)
    """Where the piece of line data[a:b] that starts at a ends (`line_pieces`)."""
    if b - a <= max_bytes:
        return b
    r = a + max_bytes
    while r > a + max_bytes // 2:
        if (data[r] & 0xC0) != 0x80:  # a character starts at r
            x = data[r - 1]
            if x == 46 or x == 33 or x == 63 or x == 32:  # . ! ? space
                return r
            if r - a >= 3 and ((data[r - 3] == 0xE3 and data[r - 2] == 0x80 and x == 0x82)
                               or (data[r - 3] == 0xEF and data[r - 2] == 0xBC
                                   and (x == 0x81 or x == 0x9F))):  # 。 ！ ？
                return r
        r -= 1
    r = a + max_bytes
    while (data[r] & 0xC0) == 0x80:
        r -= 1
    return r


@numba.njit(cache=True, nogil=True)
def _scan_lines(data, offsets, id_data, id_offsets, seed, threshold, flags, max_bytes, starts,
                ends, keys):  # pragma: no cover (compiled)
    """Every piece (`_cut`) of every line of every text that has a character other than white
    space: its key (a hash of seed, document id, line number and piece number; a line's first
    piece keys as the line did before lines were cut) and, when the key is at most
    `threshold`, its byte range. Returns [candidates, pieces seen, the candidates' positions
    among the pieces seen]."""
    n = 0
    seen = 0
    positions = np.empty(len(starts), np.int64)
    for d in range(len(offsets) - 1):
        h = np.uint64(0xCBF29CE484222325) ^ seed
        for k in range(id_offsets[d], id_offsets[d + 1]):
            h = (h ^ np.uint64(id_data[k])) * np.uint64(0x100000001B3)
        doc_hash = _fmix64(h)
        lo, hi = offsets[d], offsets[d + 1]
        line_no = 0
        a = lo
        while a <= hi:
            b = a
            while b < hi and data[b] != 10:
                b += 1
            p = a
            piece = 0
            while True:
                q = _cut(data, p, b, max_bytes)
                if _has_text(data, p, q, flags):
                    key = _fmix64(doc_hash + np.uint64(line_no) * np.uint64(0x9E3779B97F4A7C15)
                                  + np.uint64(piece) * np.uint64(0xD6E8FEB86659FD93))
                    if key <= threshold:
                        starts[n], ends[n], keys[n] = p, q, key
                        positions[n] = seen
                        n += 1
                    seen += 1
                piece += 1
                if q >= b:
                    break
                p = q
            line_no += 1
            a = b + 1
    out = np.empty(2 + n, np.int64)
    out[0], out[1] = n, seen
    out[2:] = positions[:n]
    return out


@numba.njit(cache=True, nogil=True)
def _has_text(data, a, b, flags):  # pragma: no cover (compiled)
    """Is there a character in data[a:b] that is not white space (str.strip() non-empty)?"""
    k = a
    while k < b:
        x = np.int64(data[k])
        if x < 0x80:
            cp = x
            k += 1
        elif x < 0xE0:
            cp = ((x & 0x1F) << 6) | (np.int64(data[k + 1]) & 0x3F)
            k += 2
        elif x < 0xF0:
            cp = ((x & 0x0F) << 12) | ((np.int64(data[k + 1]) & 0x3F) << 6) | \
                (np.int64(data[k + 2]) & 0x3F)
            k += 3
        else:
            cp = ((x & 0x07) << 18) | ((np.int64(data[k + 1]) & 0x3F) << 12) | \
                ((np.int64(data[k + 2]) & 0x3F) << 6) | (np.int64(data[k + 3]) & 0x3F)
            k += 4
        if (flags[cp] & 8) == 0:  # quality_kernels.F_SPACE
            return True
    return False


class FilePart(NamedTuple):
    """What one file of the dedup output gives the stage."""
    counters: Counter
    sample: SentenceSample
    stats_texts: dict[str, list[str]]  # source -> its first texts in this file


def read_file(path: str, index: int, cfg: TokenizerConfig, threshold: int,
              needed: dict[str, int]) -> FilePart:
    """One file's counts, sample (positions from its index) and, for each source that still
    needs texts for the statistics (`needed`; a source not in it needs all), its first texts."""
    counters: Counter = Counter()
    sample = SentenceSample(cfg.input_sentence_size, cfg.seed, index << POSITION_BITS, threshold)
    texts: dict[str, list[str]] = defaultdict(list)
    wanted = pa.array(cfg.splits)
    for table in iter_batches(path, ["id", "source", "split", "text"]):
        n = table.num_rows
        counters["in"] += n
        for source in pc.unique(table.column("source")).to_pylist():
            need = needed.get(source, cfg.stats_docs_per_source) - len(texts[source])
            if need > 0:
                mine = table.filter(pc.equal(table.column("source"), source))
                texts[source].extend(mine.column("text").slice(0, need).to_pylist())
        training = table.filter(pc.is_in(table.column("split"), wanted))
        counters["out"] += training.num_rows
        counters["dropped:not_training_split"] += n - training.num_rows
        sample.add(training.column("id"), training.column("text"))
        counters["text_bytes"] += text_bytes(table)
    sample.trim()
    return FilePart(counters, sample, dict(texts))


def read_files(paths: list[str], cfg: TokenizerConfig, workers: int, sample: SentenceSample,
               stats_texts: dict[str, list[str]]) -> Iterator[FilePart]:
    """The files' parts in file order, `workers` files read at once; at most 2 x `workers`
    parts wait to be merged, so memory stays bounded whatever the corpus size. Each file is
    given the merged sample's threshold and the statistics' needs as they stand when it starts."""
    with ThreadPoolExecutor(max(workers, 1), thread_name_prefix="tokenizer-read") as pool:
        pending: deque = deque()
        for index, path in enumerate(paths):
            needed = {source: cfg.stats_docs_per_source - len(texts)
                      for source, texts in stats_texts.items()}
            pending.append(pool.submit(read_file, path, index, cfg, sample.threshold, needed))
            if len(pending) >= 2 * max(workers, 1):
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def run(cfg: TokenizerConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    counters = {"in": 0, "out": 0, "dropped:not_training_split": 0}
    samples: dict[str, list[str]] = defaultdict(list)
    sample = SentenceSample(cfg.input_sentence_size, cfg.seed)
    reporter = Reporter(options.progress_dir)
    paths = list(parquet_files(str(inputs["dedup"])))
    if len(paths) >= 1 << (63 - POSITION_BITS):
        raise ValueError(f"tokenizer: {len(paths)} input files; at most "
                         f"{(1 << (63 - POSITION_BITS)) - 1:,} are supported")
    for part in read_files(paths, cfg, options.workers, sample, samples):
        for key, value in part.counters.items():
            counters[key] = counters.get(key, 0) + value
        for source, texts in part.stats_texts.items():
            samples[source].extend(texts[: cfg.stats_docs_per_source - len(samples[source])])
        sample.merge(part.sample)
        reporter.advance(docs=part.counters["in"], nbytes=part.counters["text_bytes"], files=1)
    reporter.flush()
    if not counters["out"]:
        raise ValueError(f"tokenizer: no documents in splits {cfg.splits} to train on")
    out = Path(out)
    model_path = out / "tokenizer.model"
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        sample_path = Path(tmp) / "sentences.txt"
        sampled, seen = sample.write(sample_path), sample.seen
        del sample
        coverage = (spm.choose_coverage(str(sample_path), cfg.vocab_size)
                    if cfg.character_coverage is None else
                    {"character_coverage": cfg.character_coverage, "chosen_by": "recipe"})
        model_path.write_bytes(spm.train_model_from_file(str(sample_path), cfg.model_copy(
            update={"character_coverage": coverage["character_coverage"]})))
    spm.export_transformers(str(model_path), str(out / "hf"), cfg.model_type,
                            cfg.user_defined_symbols, cfg.special_tokens)
    stats = {"model_type": cfg.model_type, "training_sentences": sampled, **coverage,
             "sentences_seen": seen,
             "sources": source_stats(str(model_path), samples)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True), "utf-8")
    counters["sentences"] = sampled
    return counters
