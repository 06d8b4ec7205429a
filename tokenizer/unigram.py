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
The prefixes come from a byte trie in flat arrays (children by an open-addressing table), built
from the model's pieces. tests/test_unigram.py holds the ids to SentencePiece's on real text and
generated Unicode.

Why: SentencePiece encoded about 10 MB/s on one core here, 89% of the shard stage and a third of
the whole build (bench/scale.py); the kernel is several times faster (bench/tokenize.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import pyarrow as pa

from pipelines.quality_kernels import utf8_buffers

SPACE = "\u2581".encode()
FLT_MIN = np.float32(1.17549435e-38)  # C++'s FLT_MIN: where SentencePiece's max_score starts
UNK_PENALTY = np.float32(10.0)  # unigram_model.h kUnkPenalty
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6


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
                   max_score=float(max_score), byte_fallback=bool(spec.byte_fallback))

    def encode(self, texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        data, offsets = utf8_buffers(texts)
        n = len(offsets) - 1
        # Normalised, a text grows by 2 bytes per ASCII space and 3 in front; byte fallback
        # makes at most one id per byte: ids <= 3 x bytes + 3 per text.
        longest = int(np.max(np.diff(offsets))) if n else 0
        capacity = 3 * int(offsets[-1] - offsets[0]) + 3 * n + 1
        ids = np.empty(capacity, dtype=np.uint32)
        lengths = np.zeros(n, dtype=np.int64)
        used = _encode(data, offsets, 3 * longest + 4, self.base, self.check, self.value,
                       self.score, self.kind, self.byte_ids,
                       self.unk_id, np.float32(self.unk_score), np.float32(self.max_score),
                       self.byte_fallback, ids, lengths) if n else 0
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


@numba.njit(cache=True, nogil=True)
def _encode(data, offsets, scratch_size, base, check, value, score, kind, byte_ids, unk_id,
            unk_score, max_score, byte_fallback, ids, lengths):  # pragma: no cover (compiled)
    size_da = len(check)
    norm = np.empty(scratch_size, np.uint8)
    best = np.empty(scratch_size + 1, np.float32)
    start = np.empty(scratch_size + 1, np.int64)
    piece = np.empty(scratch_size + 1, np.int64)
    path = np.empty(scratch_size + 1, np.int64)
    w = 0
    for d in range(len(offsets) - 1):
        lo, hi = offsets[d], offsets[d + 1]
        if hi == lo:
            continue  # an empty text has no pieces (not even the dummy prefix)
        # 1. normalise
        norm[0], norm[1], norm[2] = 0xE2, 0x96, 0x81
        size = 3
        for k in range(lo, hi):
            if data[k] == 32:
                norm[size] = 0xE2
                norm[size + 1] = 0x96
                norm[size + 2] = 0x81
                size += 3
            else:
                norm[size] = data[k]
                size += 1
        # 2. Viterbi
        for k in range(size + 1):
            best[k] = 0.0
            start[k] = -1
            piece[k] = -1
        s = 0
        while s < size:
            till = best[s]
            lead = norm[s] >> 4
            mblen = 1 if lead < 12 else (2 if lead < 14 else (3 if lead == 14 else 4))
            mblen = min(mblen, size - s)
            single = False
            node = 0
            k = s
            while k < size:
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
                    if kind[pid] == USER_DEFINED:
                        # length * max_score_ - 0.1: a float product, then a double
                        sc = np.float64(np.float32(np.float32(length) * max_score)) - 0.1
                    else:
                        sc = np.float64(score[pid])
                    candidate = sc + np.float64(till)
                    if start[k] == -1 or candidate > np.float64(best[k]):
                        best[k] = np.float32(candidate)
                        start[k] = s
                        piece[k] = pid
                    if length == mblen:
                        single = True
            if not single:
                t = s + mblen
                candidate32 = np.float32(unk_score + till)
                if start[t] == -1 or candidate32 > best[t]:
                    best[t] = candidate32
                    start[t] = s
                    piece[t] = unk_id
            s += mblen
        # backtrack
        n = 0
        e = size
        while e > 0:
            path[n] = e
            n += 1
            e = start[e]
        # 3. ids, left to right; unknown pieces as bytes (or merged runs without fallback)
        first = w
        prev_unk = False
        for m in range(n - 1, -1, -1):
            e = path[m]
            b0 = start[e]
            pid = piece[e]
            if pid == unk_id:
                if byte_fallback:
                    for k in range(b0, e):
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
