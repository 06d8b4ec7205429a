"""SentencePiece unigram encoding, compiled: the same ids as `SentencePieceProcessor.encode`, for
the models Sieve trains (identity normalisation), on Arrow string columns without Python lists.

Contract: `UnigramEncoder.load(model_path)` returns an encoder, or None for a model this does not
cover (BPE, or a normalisation other than identity with the dummy prefix): the caller then uses
SentencePiece itself. `encoder.encode(texts: pa.Array) -> (ids uint32[total], lengths int64[n])`.

It follows SentencePiece 0.2.1's code path for these models, step for step
(`normalizer.cc` Normalize, `unigram_model.cc` EncodeOptimized, `sentencepiece_processor.cc`
PopulateSentencePieceText):
1. normalise: "▁" in front, every ASCII space to "▁" (identity rule, no extra-whitespace
   removal; user-defined symbols pass through unchanged);
2. Viterbi over the UTF-8 bytes: at each character start, every piece (normal, user-defined or
   unused, the last skipped) that is a prefix there, in order of length, updates the best path
   ending where it ends if its path scores strictly more (scores added in double, kept in float,
   as there); user-defined pieces score length x max_score - 0.1; a character no piece covers
   alone is one unknown piece scored min_score - 10;
3. an unknown piece becomes one byte piece per UTF-8 byte (byte fallback), or, without byte
   fallback, a run of unknown pieces one unknown id.
Where no piece holds a "▁" after its first character (the models SentencePiece trains with
`split_by_whitespace`), no path crosses a "▁", so the search runs a word at a time, and a word met
before takes the pieces remembered for it, unless its choices were so close that SentencePiece's
float arithmetic, which depends on the score of the text before the word, could settle them
otherwise (`_safe`): then the word is searched in place, as there. Natural text repeats its words,
so most words are looked up, not searched (bench/tokenize.py).
The prefixes come from a byte trie in flat arrays (children by an open-addressing table), built
from the model's pieces. tests/test_unigram.py holds the ids to SentencePiece's on real text and
generated Unicode.

Why: SentencePiece encoded about 10 MB/s on one core here, 89% of the shard stage and a third of
the whole build (bench/scale.py); the kernel is several times faster (bench/tokenize.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import pyarrow as pa

from pipelines.prefetch import prefetch
from pipelines.quality_kernels import utf8_buffers

SPACE = "\u2581".encode()
FLT_MIN = np.float32(1.17549435e-38)  # C++'s FLT_MIN: where SentencePiece's max_score starts
UNK_PENALTY = np.float32(10.0)  # unigram_model.h kUnkPenalty
MEMO_BYTES = 64  # words up to this long (UTF-8, with their "▁") are remembered
# The memo: a table of MEMO_SLOTS, at most half of them used, the words' bytes and their
# pieces in two arenas; when one is full it starts afresh. About 100 MB. On the 100k scale
# corpus's deduplicated text (232 MB, 526,634 distinct words up to MEMO_BYTES) the encoder ran
# 1.38x, 1.68x, 1.93x and 1.86x as fast as one search per text with 2^18 to 2^21 slots, when
# each field of a slot was an array of its own (the larger tables started afresh less often but
# missed the CPU cache more). With a slot in one record, 2^21 slots encoded that text in 2.96 s
# against 3.41 s with 2^20 (4.19 s before the records, in chunks of 2,048 texts as the shard
# stage encodes); a larger corpus holds more distinct words.
MEMO_SLOTS = 1 << 21
MEMO_KEY_BYTES = 10 << 20
MEMO_PIECES = 3 << 20
# A slot is one 32-byte record, so a look-up reads one cache line, not one per field (eight
# arrays of one field each made the remembered path wait on memory: 66 MB/s with every word
# remembered, on the 100k text above; 92 MB/s now).
# - `tag`: the generation (high 32 bits; a slot is taken when it is the current one) and the
#   hash's low 32 bits;
# - `where`: the word's offset in the key arena << 38 | its pieces' offset << 14 | its bytes
#   << 7 | its number of pieces;
# - the search's largest value, and `_safe_limit` of its margin (`_safe` without a frexp and
#   an ldexp per word, which took 11% of the remembered path).
# A piece is one int64: id << 16 | start << 8 | end (offsets in the word).
MEMO_SLOT = np.dtype([("tag", np.int64), ("where", np.int64), ("limit", np.float64),
                      ("largest", np.float64)], align=True)
assert MEMO_KEY_BYTES < 1 << 25 and MEMO_PIECES < 1 << 24 and MEMO_BYTES < 128
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
# A text's word hashes are computed before its search, and the memo slot of the word this many
# words ahead is prefetched: the slot table is larger than the CPU caches, and a look-up waited
# on memory (perf: 41% of the kernel's samples on the slot's load). On 84,135 deduplicated
# documents of the 1M scale corpus (229 MB, memo empty at the start) 4.82 s -> 3.66 s; 8 words
# ahead, or prefetching the key and pieces too, did no better.
PREFETCH_WORDS = 4


@dataclass(frozen=True)
class UnigramEncoder:
    base: np.ndarray  # int32: a double-array trie over the pieces' bytes: the child of slot s
    check: np.ndarray  # by byte b is slot base[s] + b when check[base[s] + b] == s
    value: np.ndarray  # int32 per slot: the piece id ending there, -1 none
    score: np.ndarray  # float32 per id
    kind: np.ndarray  # int8 per id: the SentencePiece piece type
    byte_ids: np.ndarray  # int64[256]: the id of piece <0xXX> (-1 without byte fallback)
    unk_id: int
    unk_score: float  # float32
    max_score: float  # float32
    byte_fallback: bool
    segmented: bool  # no piece holds a "▁" after its first character: words search alone
    memo: dict = field(default_factory=dict, compare=False, repr=False)  # _encode's, per process

    @classmethod
    def load(cls, model_path: str) -> UnigramEncoder | None:
        from sentencepiece import sentencepiece_model_pb2

        proto = sentencepiece_model_pb2.ModelProto()
        with open(model_path, "rb") as fh:
            proto.ParseFromString(fh.read())
        spec, norm = proto.trainer_spec, proto.normalizer_spec
        if (spec.model_type != 1 or norm.name != "identity" or norm.precompiled_charsmap
                or not norm.add_dummy_prefix or norm.remove_extra_whitespaces
                or not norm.escape_whitespaces or spec.treat_whitespace_as_suffix):
            return None
        kinds = np.array([p.type for p in proto.pieces], dtype=np.int8)
        scores = np.array([p.score for p in proto.pieces], dtype=np.float32)
        normal = scores[kinds == NORMAL]
        min_score = np.float32(min(np.float32(3.4028235e38), normal.min()))
        max_score = np.float32(max(FLT_MIN, normal.max()))
        byte_ids = np.full(256, -1, dtype=np.int64)
        unk_id = -1
        trie_pieces = []
        for i, p in enumerate(proto.pieces):
            if p.type in (NORMAL, USER_DEFINED, UNUSED):
                trie_pieces.append((p.piece.encode("utf-8"), i))
            elif p.type == UNKNOWN:
                unk_id = i
            elif p.type == BYTE:
                byte_ids[int(p.piece[3:5], 16)] = i
        base, check, value = _double_array(trie_pieces)
        return cls(base=base, check=check, value=value, score=scores,
                   kind=kinds, byte_ids=byte_ids, unk_id=unk_id,
                   unk_score=float(np.float32(min_score - UNK_PENALTY)),
                   max_score=float(max_score), byte_fallback=bool(spec.byte_fallback),
                   segmented=not any(SPACE in piece[1:] for piece, _ in trie_pieces))

    def _memo(self) -> dict:
        if not self.memo:
            # Records start on a 64-byte boundary: two per cache line, none across two.
            raw = np.zeros(MEMO_SLOTS * MEMO_SLOT.itemsize + 64, np.uint8)
            skip = -raw.ctypes.data % 64
            slots = raw[skip:skip + MEMO_SLOTS * MEMO_SLOT.itemsize].view(MEMO_SLOT)
            slots["tag"] = -1  # generation -1: empty
            self.memo.update(slots=slots, keys=np.zeros(MEMO_KEY_BYTES, np.uint8),
                             pieces=np.zeros(MEMO_PIECES, np.int64),
                             state=np.zeros(5, np.int64))
        return self.memo

    def encode(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        data, offsets = utf8_buffers(texts)
        n = len(offsets) - 1
        # Normalised, a text grows by 2 bytes per ASCII space and 3 in front; byte fallback
        # makes at most one id per byte: ids <= 3 x bytes + 3 per text.
        longest = int(np.max(np.diff(offsets))) if n else 0
        capacity = 3 * int(offsets[-1] - offsets[0]) + 3 * n + 1
        ids = np.empty(capacity, dtype=np.uint32)
        lengths = np.zeros(n, dtype=np.int64)
        m = self._memo()
        used = _encode(data, offsets, 3 * longest + 4, self.base, self.check, self.value,
                       self.score, self.kind, self.byte_ids,
                       self.unk_id, np.float32(self.unk_score), np.float32(self.max_score),
                       self.byte_fallback, ids, lengths, self.segmented, m["slots"],
                       m["keys"], m["pieces"], m["state"]) if n else 0
        return ids[:used].copy(), lengths


def _double_array(pieces: list[tuple[bytes, int]]) -> tuple[np.ndarray, ...]:
    """(base, check, value) of a double-array trie (Aoe 1989, as Darts builds SentencePiece's)
    holding the pieces: one array look-up per byte walked."""
    children: dict[int, dict[int, int]] = {0: {}}
    ends = {}
    for piece, pid in pieces:
        node = 0
        for byte in piece:
            nxt = children[node].get(byte)
            if nxt is None:
                nxt = len(children)
                children[nxt] = {}
                children[node][byte] = nxt
            node = nxt
        ends[node] = pid
    n = len(children)
    first = np.zeros(n + 1, np.int64)
    first[1:] = np.cumsum([len(children[i]) for i in range(n)])
    child_bytes = np.array([b for i in range(n) for b in sorted(children[i])], np.int64)
    child_nodes = np.array([children[i][b] for i in range(n) for b in sorted(children[i])],
                           np.int64)
    node_value = np.full(n, -1, np.int64)
    for node, pid in ends.items():
        node_value[node] = pid
    size = 4 * n + 1024
    base = np.zeros(size, np.int32)
    check = np.full(size, -1, np.int32)
    value = np.full(size, -1, np.int32)
    if not _place(first, child_bytes, child_nodes, node_value, base, check, value):
        raise ValueError("double-array trie: out of room")
    last = int(np.flatnonzero(check >= 0).max()) + 257
    return base[:last].copy(), check[:last].copy(), value[:last].copy()


@numba.njit(cache=True)
def _next_free(nxt, i):  # pragma: no cover (compiled)
    """The first free slot at or after i: `nxt` points past taken slots (path halving)."""
    while nxt[i] != i:
        nxt[i] = nxt[nxt[i]]
        i = nxt[i]
    return i


@numba.njit(cache=True)
def _place(first, child_bytes, child_nodes, node_value, base, check,
           value):  # pragma: no cover (compiled)
    """Give every node the lowest base where all its children's slots are free, breadth first;
    False when the arrays are too short. Only bases that put the first child on a free slot are
    tried, found by jumping over taken slots (`_next_free`): trying every base scanned the
    filled part of the array once per node, 5 s for a 32k vocabulary."""
    n = len(first) - 1
    nxt = np.arange(len(check) + 1)  # nxt[i] == i: slot i is free (len(check): the end)
    slot_of = np.full(n, -1, np.int64)
    slot_of[0] = 0
    check[0] = 0  # the root's slot is taken (by itself)
    nxt[0] = 1
    value[0] = node_value[0]
    queue = np.empty(n, np.int64)
    queue[0] = 0
    head, tail = 0, 1
    while head < tail:
        node = queue[head]
        head += 1
        lo, hi = first[node], first[node + 1]
        if lo == hi:
            continue
        c0 = child_bytes[lo]
        q = _next_free(nxt, max(_next_free(nxt, 1), 1 + c0))  # b = q - c0 >= 1
        while True:
            b = q - c0
            if b + 256 >= len(check):
                return False
            ok = True
            for k in range(lo + 1, hi):
                if check[b + child_bytes[k]] >= 0:
                    ok = False
                    break
            if ok:
                break
            q = _next_free(nxt, q + 1)
        s = slot_of[node]
        base[s] = b
        for k in range(lo, hi):
            t = b + child_bytes[k]
            check[t] = s
            nxt[t] = t + 1
            child = child_nodes[k]
            slot_of[child] = t
            value[t] = node_value[child]
            queue[tail] = child
            tail += 1
    return True


@numba.njit(cache=True, nogil=True, inline="always")
def _edge_score(pid, length, kind, score, max_score):  # pragma: no cover (compiled)
    """A piece's score as SentencePiece adds it (double): user-defined pieces
    length x max_score - 0.1 (a float product, then a double), the others their own."""
    if kind[pid] == USER_DEFINED:
        return np.float64(np.float32(np.float32(length) * max_score)) - 0.1
    return np.float64(score[pid])


@numba.njit(cache=True, nogil=True)
def _search(norm, lo, hi, prefix, exact, base, check, value, score, kind, unk_id, unk_score,
            max_score, best, rbest, rsecond, start, piece):  # pragma: no cover (compiled)
    """The Viterbi search over norm[lo:hi]; the caller makes sure no piece crosses hi.

    Not `exact`: SentencePiece's, from best[lo] = prefix, in its arithmetic (candidates in
    double, kept in float): fills best/start/piece for the nodes of (lo, hi]; returns (0, 0).
    `exact`: from 0 in double, keeping at each node the best candidate (rbest) and the best of
    the others (rsecond); returns (the least margin between them on the best path, the largest
    |value| of a node). A margin of 0 is a tie, which SentencePiece settles by order."""
    size_da = len(check)
    for k in range(lo, hi + 1):
        start[k] = -1
        piece[k] = -1
    if exact:
        rbest[lo:hi + 1] = 0.0
        rsecond[lo:hi + 1] = -np.inf
    else:
        best[lo:hi + 1] = 0.0
        best[lo] = prefix
    s = lo
    while s < hi:
        till = np.float64(best[s]) if not exact else rbest[s]
        lead = norm[s] >> 4
        mblen = 1 if lead < 12 else (2 if lead < 14 else (3 if lead == 14 else 4))
        mblen = min(mblen, hi - s)
        single = False
        node = 0
        k = s
        while k < hi:
            child = np.int64(base[node]) + np.int64(norm[k])
            if child >= size_da or check[child] != node:
                break
            node = child
            k += 1
            pid = value[node]
            if pid >= 0:
                if kind[pid] == UNUSED:
                    continue
                length = k - s
                candidate = _edge_score(pid, length, kind, score, max_score) + till
                if not exact:
                    if start[k] == -1 or candidate > np.float64(best[k]):
                        best[k] = np.float32(candidate)
                        start[k] = s
                        piece[k] = pid
                elif start[k] == -1 or candidate > rbest[k]:
                    rsecond[k] = rbest[k] if start[k] != -1 else -np.inf
                    rbest[k] = candidate
                    start[k] = s
                    piece[k] = pid
                elif candidate > rsecond[k]:
                    rsecond[k] = candidate
                if length == mblen:
                    single = True
        if not single:
            t = s + mblen
            if not exact:
                candidate32 = np.float32(unk_score + best[s])
                if start[t] == -1 or candidate32 > best[t]:
                    best[t] = candidate32
                    start[t] = s
                    piece[t] = unk_id
            else:  # as a piece's candidate above (written out: a helper made encoding with
                # the memo 10% slower on the 100k scale text, measured)
                candidate = np.float64(unk_score) + till
                if start[t] == -1 or candidate > rbest[t]:
                    rsecond[t] = rbest[t] if start[t] != -1 else -np.inf
                    rbest[t] = candidate
                    start[t] = s
                    piece[t] = unk_id
                elif candidate > rsecond[t]:
                    rsecond[t] = candidate
        s += mblen
    if not exact:
        return 0.0, 0.0
    margin = np.inf
    e = hi
    while e > lo:
        margin = min(margin, rbest[e] - rsecond[e])
        e = start[e]
    largest = 0.0
    for k in range(lo, hi + 1):
        if start[k] >= 0 or k == lo:
            largest = max(largest, abs(rbest[k]))
    return margin, largest


@numba.njit(cache=True, nogil=True, inline="always")
def _safe(margin, largest, prefix, n_bytes):  # pragma: no cover (compiled)
    """Whether a segment's exact-arithmetic choices are SentencePiece's from `prefix`: each of
    its float roundings moves a path's value by at most half a float ulp of the largest
    magnitude, at most one per byte, on either side of each comparison."""
    m, e = math.frexp(abs(prefix) + largest + 64.0)
    ulp = math.ldexp(1.0, e - 24)
    return margin > 2.0 * (n_bytes + 2) * ulp


@numba.njit(cache=True, nogil=True)
def _safe_limit(margin, n_bytes):  # pragma: no cover (compiled)
    """2**E for the largest E with margin > 2 (n_bytes + 2) 2**(E - 24), so that
    `_safe(margin, largest, prefix, n_bytes)` is `abs(prefix) + largest + 64.0 < limit`: that
    sum's frexp exponent e has 2**(e - 1) <= sum < 2**e, and _safe holds for e <= E alone
    (the sum is at least 64, so its ulp never underflows). 0 for a tie (never safe)."""
    if not margin > 0.0:
        return 0.0
    if math.isinf(margin):
        return math.inf
    k = 2.0 * (n_bytes + 2)
    _, e = math.frexp(margin)
    exponent = e + 24  # k * 2**e >= 4 * 2**e > margin: not safe; step down
    while not margin > k * math.ldexp(1.0, exponent - 24):
        exponent -= 1
    return math.ldexp(1.0, exponent)


@numba.njit(cache=True, nogil=True, inline="always")
def _backtrack(start, s0, s1, back):  # pragma: no cover (compiled)
    """The best path's node ends from s1 back to s0 into back[:m]; returns m."""
    m = 0
    e = s1
    while e > s0:
        back[m] = e
        m += 1
        e = start[e]
    return m


@numba.njit(cache=True, nogil=True)
def _encode(data, offsets, scratch_size, base, check, value, score, kind, byte_ids, unk_id,
            unk_score, max_score, byte_fallback, ids, lengths, segmented, slots, keys, pieces,
            state):  # pragma: no cover (compiled)
    """`state`: int64[5]: the memo's generation (a slot is taken when its stamp equals it),
    key bytes used, pieces used, words held, and a test switch (1: never take a remembered
    word; 2: take it even where `_safe` says no).
    With `segmented`, the text is searched a word at a time (from each "▁" to the next: no
    piece holds a "▁" after its start, so no path crosses one), and a word seen before (up to
    MEMO_BYTES long) takes its remembered pieces when their choices cannot differ from
    SentencePiece's from the current score (`_safe`): the same ids as one search over the
    whole text."""
    norm = np.empty(scratch_size, np.uint8)
    best = np.empty(scratch_size + 1, np.float32)
    rbest = np.empty(scratch_size + 1, np.float64)
    rsecond = np.empty(scratch_size + 1, np.float64)
    start = np.empty(scratch_size + 1, np.int64)
    piece = np.empty(scratch_size + 1, np.int64)
    bounds = np.empty(scratch_size + 1, np.int64)
    path_pid = np.empty(scratch_size + 1, np.int64)
    path_b0 = np.empty(scratch_size + 1, np.int64)
    path_e = np.empty(scratch_size + 1, np.int64)
    back = np.empty(scratch_size + 1, np.int64)
    word_hash = np.empty(scratch_size + 1, np.uint64)
    cmask = len(slots) - 1
    w = 0
    for d in range(len(offsets) - 1):
        lo, hi = offsets[d], offsets[d + 1]
        if hi == lo:
            continue  # an empty text has no pieces (not even the dummy prefix)
        # 1. normalise; the word bounds: every "▁" (a space's, or one in the text)
        norm[0], norm[1], norm[2] = 0xE2, 0x96, 0x81
        size = 3
        n_bounds = 1
        bounds[0] = 0
        for k in range(lo, hi):
            x = data[k]
            if segmented and (x == 32 or (x == 0xE2 and k + 2 < hi and data[k + 1] == 0x96
                                          and data[k + 2] == 0x81)):
                bounds[n_bounds] = size
                n_bounds += 1
            if x == 32:
                norm[size] = 0xE2
                norm[size + 1] = 0x96
                norm[size + 2] = 0x81
                size += 3
            else:
                norm[size] = x
                size += 1
        bounds[n_bounds] = size
        # 2. Viterbi, a word at a time; the path in text order. The words' memo hashes first,
        # so that the slots of the words ahead are on their way (PREFETCH_WORDS).
        n_path = 0
        prefix = np.float32(0.0)
        if segmented:
            for b in range(n_bounds):
                h = np.uint64(0xCBF29CE484222325)
                if bounds[b + 1] - bounds[b] <= MEMO_BYTES:
                    for k in range(bounds[b], bounds[b + 1]):
                        h = (h ^ np.uint64(norm[k])) * np.uint64(0x100000001B3)
                    h ^= h >> np.uint64(33)
                word_hash[b] = h
                if b < PREFETCH_WORDS:
                    prefetch(slots, np.int64(h & np.uint64(cmask)))
        for b in range(n_bounds):
            s0, s1 = bounds[b], bounds[b + 1]
            n_bytes = s1 - s0
            slot = -1
            found = False
            h = np.uint64(0)
            if segmented and b + PREFETCH_WORDS < n_bounds:
                prefetch(slots, np.int64(word_hash[b + PREFETCH_WORDS] & np.uint64(cmask)))
            if segmented and n_bytes <= MEMO_BYTES:
                h = word_hash[b]
                slot = np.int64(h & np.uint64(cmask))
                tag = (state[0] << 32) | np.int64(h & np.uint64(0xFFFFFFFF))
                while (slots[slot].tag >> 32) == state[0]:
                    where = slots[slot].where
                    if slots[slot].tag == tag and ((where >> 7) & 0x7F) == n_bytes:
                        same = True
                        at = where >> 38
                        for k in range(n_bytes):
                            if keys[at + k] != norm[s0 + k]:
                                same = False
                                break
                        if same:
                            found = True
                            break
                    slot = (slot + 1) & cmask
                if not found:  # search it once in exact arithmetic and remember it
                    margin, largest = _search(norm, s0, s1, prefix, True, base, check, value,
                                              score, kind, unk_id, unk_score, max_score, best,
                                              rbest, rsecond, start, piece)
                    m = _backtrack(start, s0, s1, back)
                    if (state[1] + n_bytes > len(keys) or state[2] + m > len(pieces)
                            or 2 * (state[3] + 1) > len(slots)):
                        state[0] += 1  # full: start afresh (a new generation empties it)
                        state[1] = 0
                        state[2] = 0
                        state[3] = 0
                        slot = np.int64(h & np.uint64(cmask))
                    slots[slot].tag = (state[0] << 32) | np.int64(h & np.uint64(0xFFFFFFFF))
                    slots[slot].where = (state[1] << 38) | (state[2] << 14) | (n_bytes << 7) | m
                    slots[slot].limit = _safe_limit(margin, n_bytes)
                    slots[slot].largest = largest
                    keys[state[1]:state[1] + n_bytes] = norm[s0:s1]
                    state[1] += n_bytes
                    for j in range(m):
                        e = back[m - 1 - j]
                        pieces[state[2] + j] = (np.int64(piece[e]) << 16) | (
                            (start[e] - s0) << 8) | (e - s0)
                    state[2] += m
                    state[3] += 1
                    found = True
            if found and state[4] != 1 and (state[4] == 2 or abs(prefix) + slots[slot].largest
                                            + 64.0 < slots[slot].limit):
                where = slots[slot].where
                at = (where >> 14) & 0xFFFFFF
                for j in range(where & 0x7F):
                    packed = pieces[at + j]
                    pid = packed >> 16
                    b0 = (packed >> 8) & 0xFF
                    e = packed & 0xFF
                    path_pid[n_path] = pid
                    path_b0[n_path] = s0 + b0
                    path_e[n_path] = s0 + e
                    n_path += 1
                    # the path's running score, in the search's arithmetic
                    if pid == unk_id:
                        prefix = np.float32(unk_score + prefix)
                    else:
                        prefix = np.float32(_edge_score(pid, e - b0, kind, score, max_score)
                                            + np.float64(prefix))
                continue
            _search(norm, s0, s1, prefix, False, base, check, value, score, kind, unk_id,
                    unk_score, max_score, best, rbest, rsecond, start, piece)
            m = _backtrack(start, s0, s1, back)
            for j in range(m):
                e = back[m - 1 - j]
                path_pid[n_path] = piece[e]
                path_b0[n_path] = start[e]
                path_e[n_path] = e
                n_path += 1
            prefix = best[s1]
        # 3. ids, left to right; unknown pieces as bytes (or merged runs without fallback)
        first = w
        prev_unk = False
        for j in range(n_path):
            pid = path_pid[j]
            if pid == unk_id:
                if byte_fallback:
                    for k in range(path_b0[j], path_e[j]):
                        ids[w] = byte_ids[norm[k]]
                        w += 1
                elif not prev_unk:
                    ids[w] = pid
                    w += 1
                prev_unk = True
            else:
                ids[w] = pid
                w += 1
                prev_unk = False
        lengths[d] = w - first
    return w


def with_eos(ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray, eos: int) -> np.ndarray:
    """The selected documents' ids (ids[starts[i]:starts[i]+lengths[i]]), each followed by
    `eos`, in one uint32 array."""
    out = np.empty(int(lengths.sum()) + len(lengths), dtype=np.uint32)
    _with_eos(ids, starts, lengths, np.uint32(eos), out)
    return out


@numba.njit(cache=True, nogil=True)
def _with_eos(ids, starts, lengths, eos, out):  # pragma: no cover (compiled)
    w = 0
    for i in range(len(starts)):
        n = lengths[i]
        out[w: w + n] = ids[starts[i]: starts[i] + n]
        out[w + n] = eos
        w += n + 1
