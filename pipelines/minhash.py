"""MinHash signatures, vectorised over batches of documents, identical to datasketch's.

Contract: `MinHasher(num_perm, seed, ngram).signatures(texts) -> uint32[docs, num_perm]`.
A document's shingles are its word n-grams (`words()`: lower-cased `\\w+` runs, so punctuation
and spacing do not matter); each shingle's 32-bit hash is a fixed mix of xxh32 hashes of its words
(`shingle_hash`). The permutations and the min-reduction are datasketch's `affine32` scheme
(MurmurHash3 finaliser, then `a * h + b mod 2^32`, permutations drawn from `seed`), applied with
numpy to every shingle of a batch at once; `datasketch_minhash(text)` builds the same signature
with datasketch itself, and the tests check that the two agree.
Documents with fewer than `ngram` words have one shingle: all their words.
Reference: Broder, 1997; datasketch.MinHash (scheme "affine32").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import xxhash
from datasketch import MinHash

_WORD = re.compile(r"\w+")
# Odd multipliers, one per position in the n-gram, so that word order matters.
_POSITION_MULTIPLIERS = np.array(
    [0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C | 1, 0xFD7046C5,
     0xB55A4F09, 0x7FEB352D, 0x846CA68B, 0x2C1B3C6D, 0x297A2D39, 0xE6546B64], dtype=np.uint32)
MAX_NGRAM = len(_POSITION_MULTIPLIERS)
_MAX_SHINGLES_PER_PASS = 1 << 18  # 262,144 x 128 permutations x 4 bytes = 128 MiB at most
# 64-bit odd multipliers for n-gram membership tests (decontamination), where 32 bits collide:
# a document with thousands of n-grams against an evaluation set of a million would match by
# chance about half the time.
_POSITION_MULTIPLIERS_64 = (np.arange(1, MAX_NGRAM + 1, dtype=np.uint64)
                            * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngram_hashes64(tokens: Sequence[str], ngram: int) -> np.ndarray:
    """uint64 hash of every word n-gram; none when there are fewer than `ngram` words."""
    if len(tokens) < ngram:
        return np.zeros(0, dtype=np.uint64)
    hashes = np.fromiter((xxhash.xxh3_64_intdigest(t.encode("utf-8")) for t in tokens),
                         dtype=np.uint64, count=len(tokens))
    count = len(hashes) - ngram + 1
    mixed = np.zeros(count, dtype=np.uint64)
    for k in range(ngram):
        mixed += hashes[k: k + count] * _POSITION_MULTIPLIERS_64[k]  # wraps mod 2^64
    return mixed


class WordHashes(dict):
    """word -> xxh32 of its UTF-8, computed on first use (a lookup costs less than building a
    set of each document's words to find the new ones)."""

    def __missing__(self, token: str) -> int:
        value = self[token] = xxhash.xxh32_intdigest(token.encode("utf-8"))
        return value


def _word_hashes(tokens: Sequence[str], cache: WordHashes) -> np.ndarray:
    return np.fromiter(map(cache.__getitem__, tokens), dtype=np.uint32, count=len(tokens))


def shingle_hashes(tokens: Sequence[str], ngram: int, cache: WordHashes | None = None,
                   ) -> np.ndarray:
    """uint32 hash of every word n-gram (one hash of all words when there are fewer)."""
    if ngram > MAX_NGRAM:
        raise ValueError(f"ngram {ngram} > {MAX_NGRAM}")
    hashes = _word_hashes(tokens, WordHashes() if cache is None else cache)
    n = min(ngram, len(hashes))
    if n == 0:
        return np.zeros(0, dtype=np.uint32)
    count = len(hashes) - n + 1
    mixed = np.zeros(count, dtype=np.uint32)
    for k in range(n):
        mixed += hashes[k: k + count] * _POSITION_MULTIPLIERS[k]  # wraps mod 2^32 by design
    return mixed


def shingle_hash(shingle: bytes) -> int:
    """The same hash for one shingle given as bytes ("w1 w2 ... wn"): datasketch's hashfunc."""
    tokens = shingle.decode("utf-8").split(" ")
    return int(shingle_hashes(tokens, len(tokens))[0])


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    def __init__(self, num_perm: int, seed: int, ngram: int) -> None:
        self.num_perm, self.seed, self.ngram = num_perm, seed, ngram
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self.a = np.asarray(a, dtype=np.uint32)
        self.b = np.asarray(b, dtype=np.uint32)
        self._cache = WordHashes()

    def signatures(self, texts: Sequence[str]) -> np.ndarray:
        """uint32[len(texts), num_perm]; an empty document gets the all-max signature."""
        if len(self._cache) > 2_000_000:  # bound memory on endless vocabularies
            self._cache.clear()
        per_doc = [shingle_hashes(words(t), self.ngram, self._cache) for t in texts]
        counts = np.fromiter((len(x) for x in per_doc), dtype=np.int64, count=len(per_doc))
        sigs = np.full((len(texts), self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        nonempty = np.flatnonzero(counts)
        if len(nonempty) == 0:
            return sigs
        if counts.sum() > _MAX_SHINGLES_PER_PASS:  # a huge document: one at a time, in chunks
            for i in nonempty:
                sigs[i] = self._min_hash(per_doc[i])
            return sigs
        hv = _fmix32(np.concatenate([per_doc[i] for i in nonempty]))
        permuted = hv[:, None] * self.a[None, :]
        permuted += self.b[None, :]
        starts = np.concatenate([[0], np.cumsum(counts[nonempty])[:-1]])
        sigs[nonempty] = np.minimum.reduceat(permuted, starts, axis=0)
        return sigs

    def _min_hash(self, shingles: np.ndarray) -> np.ndarray:
        """One document's signature, `_MAX_SHINGLES_PER_PASS` shingles at a time (bounded memory:
        a 50 MB document would otherwise need a 3.6 GB permutation matrix)."""
        sig = np.full(self.num_perm, np.iinfo(np.uint32).max, dtype=np.uint32)
        for first in range(0, len(shingles), _MAX_SHINGLES_PER_PASS):
            hv = _fmix32(shingles[first: first + _MAX_SHINGLES_PER_PASS])
            permuted = hv[:, None] * self.a[None, :]
            permuted += self.b[None, :]
            np.minimum(sig, permuted.min(axis=0), out=sig)
        return sig

    def datasketch_minhash(self, text: str) -> MinHash:
        """The reference: datasketch's own MinHash over the same shingles and hash family."""
        tokens = words(text)
        n = min(self.ngram, len(tokens))
        shingles = [" ".join(tokens[i: i + n]).encode("utf-8")
                    for i in range(len(tokens) - n + 1)] if n else []
        m = MinHash(num_perm=self.num_perm, seed=self.seed, hashfunc=shingle_hash,
                    scheme="affine32")
        m.update_batch(shingles)
        return m


def detection_probability(similarity: float | np.ndarray, bands: int, rows: int):
    """P(a pair with Jaccard `similarity` shares at least one band): the LSH S-curve."""
    return 1.0 - (1.0 - np.power(similarity, rows)) ** bands
