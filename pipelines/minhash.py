"""MinHash signatures and word n-gram hashes, compiled with numba, identical to datasketch's.

Contract:
- `MinHasher(num_perm, seed, ngram).signatures(texts) -> uint32[docs, num_perm]`.
- `ngram_hashes64(texts, n) -> (hashes uint64[total], offsets int64[docs + 1])`: every word
  n-gram of every text (none for a text with fewer than `n` words), for decontamination.

Words are the lower-cased `\\w+` runs of a text (`words()`), so punctuation and spacing do not
matter; in text written without spaces between words (dominant script Han, Japanese or Thai),
the runs of its words by the language's splitter (`pipelines.languages`; `split_unspaced`
re-encodes those texts with their words spaced before the kernels run), so a Chinese clause is
not one word: on bench/dedup_corpus.py's CJK benchmark recall@0.8 went from 0.54 to 0.98.
A word's hash is 64-bit FNV-1a over its code points (`word_hash64`, folded to 32 bits
for shingles). A document's shingles are its word n-grams; a shingle's 32-bit hash is a fixed mix
of its words' hashes (`shingle_hash`). Documents with fewer than `ngram` words have one shingle:
all their words. The permutations and the min-reduction are datasketch's `affine32` scheme
(MurmurHash3 finaliser, then `a * h + b mod 2^32`, permutations drawn from `seed`).

Why compiled: the batch kernel reads each text once (as UTF-32 code points) and keeps only the
running minimum per permutation, where the numpy version it replaced built word lists,
per-shingle arrays and a shingles x permutations matrix: 0.25 s instead of 3.5 s for the 20,000
documents (29 MB) of bench/dedup_corpus.py; bench/minhash.py measures it against datasketch.
`datasketch_minhash(text)` builds the same signature with datasketch itself from the
pure-Python reference hashes, and the tests and the bench check that they agree.
Reference: Broder, 1997; datasketch.MinHash (scheme "affine32").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

import numba
import numpy as np
from datasketch import MinHash

from pipelines import languages

_WORD = re.compile(r"\w+")
# Odd multipliers, one per position in the n-gram, so that word order matters.
_POSITION_MULTIPLIERS = np.array(
    [0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1, 0xD3A2646C | 1, 0xFD7046C5,
     0xB55A4F09, 0x7FEB352D, 0x846CA68B, 0x2C1B3C6D, 0x297A2D39, 0xE6546B64], dtype=np.uint32)
MAX_NGRAM = len(_POSITION_MULTIPLIERS)
# 64-bit odd multipliers for n-gram membership tests (decontamination), where 32 bits collide:
# a document with thousands of n-grams against an evaluation set of a million would match by
# chance about half the time.
_POSITION_MULTIPLIERS_64 = (np.arange(1, MAX_NGRAM + 1, dtype=np.uint64)
                            * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3
_MASK32, _MASK64 = (1 << 32) - 1, (1 << 64) - 1


def words(text: str) -> list[str]:
    """The lower-cased `\\w+` runs of a text; in text written without spaces between words
    (its dominant script Han, Japanese or Thai: `languages.UNSPACED`), the runs of its words
    by the language's splitter, so a Chinese sentence is not one "word"."""
    lowered = text.lower()
    lang = languages.UNSPACED.get(languages.dominant_script(lowered))
    if lang is not None:
        lowered = " ".join(languages.words(lowered, lang))
    return _WORD.findall(lowered)


# ---- pure-Python reference (datasketch's hashfunc, tests) -----------------------------------

def word_hash64(token: str) -> int:
    """64-bit FNV-1a over the code points of one (lower-cased) word."""
    h = _FNV_OFFSET
    for ch in token:
        h = ((h ^ ord(ch)) * _FNV_PRIME) & _MASK64
    return h


def _fold32(h: int) -> int:
    return (h ^ (h >> 32)) & _MASK32


def shingle_hash(shingle: bytes) -> int:
    """The 32-bit hash of one shingle given as bytes ("w1 w2 ... wn"): datasketch's hashfunc."""
    total = 0
    for k, token in enumerate(shingle.decode("utf-8").split(" ")):
        total = (total + _fold32(word_hash64(token)) * int(_POSITION_MULTIPLIERS[k])) & _MASK32
    return total


_KEY_SEED, _KEY_MULT = 0x243F6A8885A308D3, 0x9E3779B97F4A7C15


def _fmix64_py(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


def exact_key(text: str, lowercase: bool = True) -> bytes:
    """The reference for `exact_keys`: 128 bits of the text with whitespace runs collapsed to
    one space and the ends stripped (and lower-cased): two 64-bit hashes of its code points."""
    norm = " ".join((text.lower() if lowercase else text).split())
    h1, h2 = _FNV_OFFSET, _KEY_SEED
    for ch in norm:
        c = ord(ch)
        h1 = ((h1 ^ c) * _FNV_PRIME) & _MASK64
        h2 = ((h2 + c + 1) * _KEY_MULT) & _MASK64
        h2 ^= h2 >> 29
    return (_fmix64_py(h1 ^ len(norm)).to_bytes(8, "little")
            + _fmix64_py(h2).to_bytes(8, "little"))


# ---- compiled kernels -----------------------------------------------------------------------

@functools.cache
def word_table() -> np.ndarray:
    """bool[0x110000]: which code points `\\w` matches (alphanumeric or underscore)."""
    chars = _every_code_point()
    return np.strings.isalnum(chars) | (chars == "_")


@functools.cache
def space_table() -> np.ndarray:
    """bool[0x110000]: the code points `str.split()` splits on."""
    return np.strings.isspace(_every_code_point())


def _every_code_point() -> np.ndarray:
    # One-character strings straight from their code points: 0.04 s where a Python loop over
    # chr() takes 0.1 s per table (tests check both tables against str.isalnum / str.isspace).
    return np.arange(0x110000, dtype=np.uint32).view("U1")


def encode(texts: Sequence[str], lower: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Texts (lower-cased) as one uint32 array of code points (a NUL after each) and the
    int64[len(texts) + 1] offsets where each starts."""
    lowered = [t.lower() for t in texts] if lower else list(texts)
    offsets = np.zeros(len(lowered) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(t) + 1 for t in lowered), dtype=np.int64, count=len(lowered)),
              out=offsets[1:])
    joined = ("\x00".join(lowered) + "\x00").encode("utf-32-le", errors="surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), offsets


def encode_array(array, lower: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`encode(array.to_pylist(), lower)` for a pyarrow string array, without Python strings:
    its UTF-8 decoded and lower-cased by str.lower()'s table in one compiled pass (U+0130, the
    one code point whose lower case is two, becomes "i" and U+0307 as there). A text with a
    capital sigma goes through str.lower() itself: its lower case depends on the letters
    around it (final sigma)."""
    from pipelines.quality_kernels import lower_table, utf8_buffers

    data, offsets = utf8_buffers(array)
    n = len(offsets) - 1
    sigma = np.zeros(n, np.bool_)
    # One pass into room for a code point per byte and a NUL per text (U+0130's two code
    # points come from its two bytes): a size pass first cost half as much as the decoding.
    out = np.empty(max(int(offsets[-1] - offsets[0]) + n, 1), dtype=np.uint32)
    out_offsets = np.empty(n + 1, dtype=np.int64)
    _decode_lowered(data, offsets, lower_table(), lower, out, out_offsets, sigma)
    for d in np.flatnonzero(sigma).tolist():  # those texts lowered by Python, in place: a
        # sigma's lower case is one code point too
        out[out_offsets[d]: out_offsets[d + 1]] = encode([array[d].as_py()])[0]
    return out[: out_offsets[-1]], out_offsets


def split_unspaced(encoded: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """`encode(texts)` with each text written without spaces between words replaced by its
    words joined by spaces (what `words()` does), so the kernels' `\\w+` runs are words. The
    others' code points are not copied when no text needs it."""
    chars, offsets = encoded
    n = len(offsets) - 1
    langs = languages.unspaced_languages(chars, offsets[:-1], offsets[1:] - 1)
    if not any(langs):
        return encoded
    return _concatenated([chars[offsets[d]:offsets[d + 1]] if langs[d] is None
                          else _joined(chars[offsets[d]:offsets[d + 1] - 1], langs[d])
                          for d in range(n)])


def _concatenated(parts: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Code point arrays as one, with int64[len + 1] offsets."""
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, parts), np.int64, len(parts)), out=offsets[1:])
    return np.concatenate(parts), offsets


def _joined(cps: np.ndarray, lang: str) -> np.ndarray:
    """`" ".join(languages.words(text, lang))` and a NUL, from the text's code points: no
    strings per word (slicing them out and joining cost a sixth of `split_unspaced`)."""
    text = cps.tobytes().decode("utf-32-le", errors="surrogatepass")
    starts, ends = languages.word_spans(text, lang, cps)
    joined = np.empty(int((ends - starts).sum()) + len(starts) + (not len(starts)),
                      dtype=np.uint32)
    _join_spans(cps, starts, ends, joined)
    return joined


@numba.njit(cache=True, nogil=True)
def _join_spans(cps, starts, ends, out):  # pragma: no cover (compiled)
    """out <- the spans cps[starts[i]:ends[i]] joined by spaces, then a NUL."""
    w = 0
    for i in range(len(starts)):
        if i:
            out[w] = 32
            w += 1
        for k in range(starts[i], ends[i]):
            out[w] = cps[k]
            w += 1
    out[w] = 0


@numba.njit(cache=True, nogil=True)
def _decode_lowered(data, offsets, table, lower, out, out_offsets, sigma):  # pragma: no cover
    """Valid UTF-8 (Arrow's strings are) -> code points through str.lower()'s table, a NUL
    after each text: out_offsets[d] is where text d starts, out_offsets[-1] where the last
    ends; sigma[d]: the text holds a capital sigma (U+03A3), which this table cannot lower."""
    w = 0
    for d in range(len(offsets) - 1):
        out_offsets[d] = w
        k = offsets[d]
        end = offsets[d + 1]
        while k < end:
            b0 = np.uint32(data[k])
            if b0 < 0x80:  # ASCII: most of the text, lowered without the table
                out[w] = b0 + 32 if lower and 0x41 <= b0 <= 0x5A else b0
                w += 1
                k += 1
                continue
            if b0 < 0xE0:
                c = ((b0 & 0x1F) << 6) | (np.uint32(data[k + 1]) & 0x3F)
                k += 2
            elif b0 < 0xF0:
                c = (((b0 & 0x0F) << 12) | ((np.uint32(data[k + 1]) & 0x3F) << 6)
                     | (np.uint32(data[k + 2]) & 0x3F))
                k += 3
            else:
                c = (((b0 & 0x07) << 18) | ((np.uint32(data[k + 1]) & 0x3F) << 12)
                     | ((np.uint32(data[k + 2]) & 0x3F) << 6) | (np.uint32(data[k + 3]) & 0x3F))
                k += 4
            if lower:
                if c == 0x130:
                    out[w] = 0x69
                    out[w + 1] = 0x307
                    w += 2
                    continue
                if c == 0x3A3:
                    sigma[d] = True
                c = table[c]
            out[w] = c
            w += 1
        out[w] = 0  # the NUL after each text, as encode() joins them
        w += 1
    out_offsets[len(offsets) - 1] = w


@numba.njit(cache=True, nogil=True)
def _doc_word_hashes(chars, lo, hi, is_word, out):  # pragma: no cover (compiled)
    """The word hashes (`word_hash64`) of chars[lo:hi] into `out` (room for the words and one
    more); returns how many. No branch per character: the previous character's hash is stored
    at every step and kept (n advanced) where a word ended; branching at each word's start and
    end mispredicted there, twice the time (34 -> 16 ms on 10M characters of real text)."""
    n = 0
    inside = False
    h = np.uint64(0)
    for i in range(lo, hi):
        c = chars[i]
        word = is_word[c]
        out[n] = h
        n += inside and not word
        h = ((h if inside else np.uint64(_FNV_OFFSET)) ^ np.uint64(c)) * np.uint64(_FNV_PRIME)
        inside = word
    if inside:
        out[n] = h
        n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _fmix32(h):  # pragma: no cover (compiled)
    h ^= h >> np.uint32(16)
    h = np.uint32(h * np.uint32(0x85EBCA6B))
    h ^= h >> np.uint32(13)
    h = np.uint32(h * np.uint32(0xC2B2AE35))
    return h ^ (h >> np.uint32(16))


@numba.njit(cache=True, nogil=True)
def _signatures(chars, starts, ends, is_word, ngram, mults, a, b, out):  # pragma: no cover
    """out[d] <- the MinHash signature of chars[starts[d]:ends[d]] (out filled with the
    maximum: an empty text keeps it). A document's shingle hashes first, then each
    permutation's minimum over them: a reduction in registers. Updating the whole signature
    row for each shingle loaded and stored it each time: 20% slower (256 permutations, real
    text)."""
    longest = 0
    for d in range(len(starts)):
        longest = max(longest, ends[d] - starts[d])
    hashes = np.empty(longest // 2 + 2, dtype=np.uint64)  # words + 1
    folded = np.empty(longest // 2 + 1, dtype=np.uint32)
    shingles = np.empty(longest // 2 + 1, dtype=np.uint32)
    for d in range(len(starts)):
        count = _doc_word_hashes(chars, starts[d], ends[d], is_word, hashes)
        if count == 0:
            continue
        for i in range(count):
            folded[i] = np.uint32((hashes[i] ^ (hashes[i] >> np.uint64(32))) & np.uint64(_MASK32))
        n = min(ngram, count)
        m = count - n + 1
        for i in range(m):
            s = np.uint32(0)
            for k in range(n):
                s = np.uint32(s + folded[i + k] * mults[k])  # wraps mod 2^32 by design
            shingles[i] = _fmix32(s)
        for p in range(len(a)):
            ap, bp = a[p], b[p]
            low = np.uint32(0xFFFFFFFF)
            for i in range(m):  # a minimum, not a branch: the loop vectorises
                low = min(low, np.uint32(ap * shingles[i] + bp))
            out[d, p] = min(out[d, p], low)


@numba.njit(cache=True, nogil=True)
def _ngrams64(chars, offsets, is_word, n, mults, out, out_offsets):  # pragma: no cover
    longest = 0
    for d in range(len(offsets) - 1):
        longest = max(longest, offsets[d + 1] - offsets[d])
    hashes = np.empty(longest // 2 + 2, dtype=np.uint64)  # words + 1
    total = 0
    for d in range(len(offsets) - 1):
        count = _doc_word_hashes(chars, offsets[d], offsets[d + 1], is_word, hashes)
        for i in range(count - n + 1):
            s = np.uint64(0)
            for k in range(n):
                s += hashes[i + k] * mults[k]  # wraps mod 2^64
            out[total] = s
            total += 1
        out_offsets[d + 1] = total


@numba.njit(cache=True, nogil=True)
def _fmix64(h):  # pragma: no cover (compiled)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


@numba.njit(cache=True, nogil=True)
def _text_keys(chars, offsets, is_space, out):  # pragma: no cover (compiled)
    for d in range(len(offsets) - 1):
        h1, h2 = np.uint64(_FNV_OFFSET), np.uint64(_KEY_SEED)
        length, gap = 0, False
        for i in range(offsets[d], offsets[d + 1] - 1):  # the last is the NUL after the text
            c = chars[i]
            if is_space[c]:
                gap = length > 0
                continue
            if gap:  # a whitespace run between words counts as one space
                h1 = (h1 ^ np.uint64(32)) * np.uint64(_FNV_PRIME)
                h2 = (h2 + np.uint64(33)) * np.uint64(_KEY_MULT)
                h2 ^= h2 >> np.uint64(29)
                length += 1
                gap = False
            h1 = (h1 ^ np.uint64(c)) * np.uint64(_FNV_PRIME)
            h2 = (h2 + np.uint64(c) + np.uint64(1)) * np.uint64(_KEY_MULT)
            h2 ^= h2 >> np.uint64(29)
            length += 1
        out[d, 0] = _fmix64(h1 ^ np.uint64(length))
        out[d, 1] = _fmix64(h2)


def exact_keys(texts: Sequence[str], lowercase: bool = True,
               encoded: tuple[np.ndarray, np.ndarray] | None = None) -> list[bytes]:
    """`exact_key` of every text (16 bytes each), from `encode(texts, lowercase)` when given."""
    return keys_of(encoded if encoded is not None else encode(texts, lowercase))


def keys_of(encoded: tuple[np.ndarray, np.ndarray]) -> list[bytes]:
    """`exact_keys` from `encode(texts, lowercase)` (or `encode_array`) alone."""
    chars, offsets = encoded
    out = np.zeros((len(offsets) - 1, 2), dtype=np.uint64)
    _text_keys(chars, offsets, space_table(), out)
    raw = out.tobytes()
    return [raw[i: i + 16] for i in range(0, len(raw), 16)]


def ngram_hashes64(texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hash of every word n-gram of every text, and int64[len(texts) + 1] offsets."""
    if not 1 <= n <= MAX_NGRAM:
        raise ValueError(f"ngram {n} outside 1..{MAX_NGRAM}")
    chars, offsets = split_unspaced(encode(texts))
    out = np.empty(len(chars) // 2 + len(texts), dtype=np.uint64)  # >= the number of words
    out_offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    _ngrams64(chars, offsets, word_table(), n, _POSITION_MULTIPLIERS_64, out, out_offsets)
    return out[: out_offsets[-1]].copy(), out_offsets


class MinHasher:
    def __init__(self, num_perm: int, seed: int, ngram: int) -> None:
        if not 1 <= ngram <= MAX_NGRAM:
            raise ValueError(f"ngram {ngram} outside 1..{MAX_NGRAM}")
        self.num_perm, self.seed, self.ngram = num_perm, seed, ngram
        a, b = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations
        self.a = np.ascontiguousarray(a, dtype=np.uint32)
        self.b = np.ascontiguousarray(b, dtype=np.uint32)

    def signatures(self, texts: Sequence[str],
                   encoded: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """uint32[len(texts), num_perm]; an empty document gets the all-max signature.
        `encoded`: `encode(texts)`, when the caller has it already."""
        return self.signatures_of(encoded if encoded is not None else encode(texts))

    def signatures_of(self, encoded: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """`signatures` from `encode(texts)` (or `encode_array`) alone. The texts written
        without spaces between words are hashed from their words joined apart (as
        `split_unspaced` gives them); the others straight from `encoded`, not copied (a copy of
        every text cost 6% of the dedup stage)."""
        chars, offsets = encoded
        n = len(offsets) - 1
        sigs = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        if not n:
            return sigs
        langs = languages.unspaced_languages(chars, offsets[:-1], offsets[1:] - 1)
        unspaced = [d for d, lang in enumerate(langs) if lang is not None]
        starts = np.array(offsets[:-1], dtype=np.int64)
        ends = np.array(offsets[1:], dtype=np.int64)
        starts[unspaced] = ends[unspaced]  # empty here: their words are hashed below
        _signatures(chars, starts, ends, word_table(), self.ngram, _POSITION_MULTIPLIERS,
                    self.a, self.b, sigs)
        if unspaced:
            joined, at = _concatenated([_joined(chars[offsets[d]:offsets[d + 1] - 1], langs[d])
                                        for d in unspaced])
            found = np.full((len(unspaced), self.num_perm), np.iinfo(np.uint32).max,
                            dtype=np.uint32)
            _signatures(joined, at[:-1], at[1:], word_table(), self.ngram,
                        _POSITION_MULTIPLIERS, self.a, self.b, found)
            sigs[unspaced] = found
        return sigs

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
