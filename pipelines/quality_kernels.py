"""The clean stage's hot path compiled (numba): spacing normalisation, word splitting, and the
Gopher repetition, Gopher quality, C4 and FineWeb statistics, over a batch of documents at once.

Contract:
- `spacing_batch(texts) -> texts`: `filters.prepare(text)` (line ends, control characters,
  spacing) for every text.
- `words(text) -> list[str]`: `quality.words(text)`, token for token.
- `RuleKernel(settings, rule_lists).judge(texts, lists) -> Judgement`: for each text, the rule
  sets of `rule_lists[lists[i]]` in order, exactly as `filters.apply_quality` runs them: the first
  reason (or None), the text after C4's line removal, the value of the statistic that failed and
  the threshold it failed against, and which PII patterns could match in the kept text.

Each kernel decides exactly as the pure-Python reference of its rule in `quality.py` /
`filters.py`, which stay the definition: tests/test_quality_kernels.py compares them on real
text and on generated Unicode edge cases (hypothesis). Equal strings are found by 64-bit hashes
confirmed by comparing the code points, so equality is exact, not probabilistic. Character
classes come from tables built from Python's own definitions (`str.isalnum`, `str.isdecimal`,
`str.isspace`, `unicodedata.category`, `str.lower`, and `re`'s case folding), so `\\w`, `\\d`,
`\\s` and `(?i)` mean what they mean in `re`.

Why: the Python rules ran at 721 documents/s on the 2.7 KB documents of the scale corpus
(bench/scale.py); the kernels read each text once as UTF-32 code points, the way the MinHash
kernel does (pipelines/minhash.py).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from pipelines import quality

# ---- character tables -----------------------------------------------------------------------

F_WORD, F_DIGIT, F_ALPHA, F_SPACE, F_PSC, F_PUNCT, F_BREAK, F_TERMINAL = (
    1, 2, 4, 8, 16, 32, 64, 128)
F_CONTROL, F_COLLAPSE = 256, 512  # filters._CONTROL (removed), filters._SPACES (collapsed)
# filters.finish: F_FINISH where its C1 removal or NFC may change a text holding the character;
# F_MOJI_LEAD followed by F_MOJI_CONT is filters._MOJIBAKE_HINT (the texts ftfy sees).
F_FINISH, F_MOJI_LEAD, F_MOJI_CONT = 1024, 2048, 4096
F_CLOSING = 8192  # quality.CLOSING_MARKS
NO_LOWER = 0xFFFFFFFF  # str.lower() of the character is more than one character
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


@functools.cache
def char_flags() -> np.ndarray:
    """uint16[0x110000]: per code point, the F_* classes it belongs to."""
    from pipelines import filters

    chars = np.arange(0x110000, dtype=np.uint32).view("U1")
    flags = np.zeros(0x110000, dtype=np.uint16)
    flags[np.strings.isalnum(chars) | (chars == "_")] |= F_WORD  # re's \w
    flags[np.strings.isdecimal(chars)] |= F_DIGIT  # re's \d
    flags[np.strings.isalpha(chars)] |= F_ALPHA
    flags[np.strings.isspace(chars)] |= F_SPACE  # re's \s, str.split(), str.strip()
    major = np.array([unicodedata.category(chr(c))[0] for c in range(0x110000)])
    flags[np.isin(major, ["P", "S", "C"])] |= F_PSC
    flags[major == "P"] |= F_PUNCT
    for ch in _LINE_BREAKS:
        flags[ord(ch)] |= F_BREAK
    for ch in quality.TERMINAL_PUNCTUATION:
        flags[ord(ch)] |= F_TERMINAL
    for ch in quality.CLOSING_MARKS:
        flags[ord(ch)] |= F_CLOSING
    # The classes of filters.py's two patterns, read from the patterns themselves.
    for pattern, flag in ((filters._CONTROL, F_CONTROL), (filters._SPACES, F_COLLAPSE)):
        for c in range(0x3100):  # both patterns are ranges below U+3100 (checked in the tests)
            if pattern.fullmatch(chr(c)):
                flags[c] |= flag
    flags[0xFEFF] |= F_CONTROL if filters._CONTROL.fullmatch("\ufeff") else 0
    for pattern, flag in ((filters._MOJIBAKE_LEAD, F_MOJI_LEAD),
                          (filters._MOJIBAKE_CONT, F_MOJI_CONT), (filters._C1.pattern, F_FINISH)):
        compiled = re.compile(pattern)
        for c in range(0x2200):  # the classes end below U+2200 (checked in the tests)
            if compiled.fullmatch(chr(c)):
                flags[c] |= flag
    flags[_nfc_may_change(np.flatnonzero(major != "C"))] |= F_FINISH
    return flags


def _nfc_may_change(assigned: np.ndarray) -> list[int]:
    """The code points whose NFC quick check is not Yes, and the non-starters: NFC leaves a text
    without any of them as it is (UAX #15's quick check). NFC_QC=No: a character that NFC
    changes on its own; Maybe: the second character of a canonical pair (and Hangul's vowel and
    trailing jamo, composed by algorithm); a non-starter may be reordered."""
    second = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    letters = [chr(cp) for cp in assigned.tolist()]  # controls, format, private, unassigned:
    # no decomposition, no combining class (tests/test_quality_kernels.py checks every one)
    for ch in letters:
        decomposition = unicodedata.decomposition(ch)
        if decomposition and not decomposition.startswith("<"):
            parts = decomposition.split()
            if len(parts) == 2:
                second.add(int(parts[1], 16))
    return [ord(ch) for ch in letters if ord(ch) in second or unicodedata.combining(ch)
            or not unicodedata.is_normalized("NFC", ch)]


@functools.cache
def lower_table() -> np.ndarray:
    """uint32[0x110000]: str.lower() of each code point, NO_LOWER where it is longer than one
    character (U+0130), which then equals no ASCII letter, as in the reference."""
    chars = np.arange(0x110000, dtype=np.uint32).view("U1").astype("U2")
    lowered = np.strings.lower(chars)
    table = lowered.astype("U1").view(np.uint32).copy()
    table[np.strings.str_len(lowered) != 1] = NO_LOWER
    table[0] = 0  # numpy reads a lone NUL as the empty string
    return table


@functools.cache
def ignorecase_table() -> np.ndarray:
    """uint8[0x110000]: the ASCII letter (lower case) a code point matches in a `(?i)` pattern
    of `re`, 0 for none (K, the Kelvin sign, matches k; dotless ı and İ match i; ſ matches s)."""
    import _sre

    table = np.zeros(0x110000, dtype=np.uint8)
    letters = [ord(x) for x in "abcdefghijklmnopqrstuvwxyz"]
    lower = np.fromiter((_sre.unicode_tolower(c) for c in range(0x110000)), np.int64, 0x110000)
    candidates = set(np.flatnonzero(np.isin(lower, letters)).tolist()) | {0x131, 0x17F}
    for c in sorted(candidates):
        for x in letters:
            if re.fullmatch(f"(?i:{chr(x)})", chr(c)):
                table[c] = x
                break
    return table


def encode(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Texts as one uint32 array of code points and int64[len + 1] offsets."""
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)), out=offsets[1:])
    joined = "".join(texts).encode("utf-32-le", errors="surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32), offsets


def decode(chars: np.ndarray, start: int, end: int) -> str:
    return chars[start:end].tobytes().decode("utf-32-le", errors="surrogatepass")


# Every word list the kernels compare against, packed into one uint32 matrix: a row per word,
# its length in column 0 and its code points after. One array argument: arrays passed or unpacked
# one by one cost a reference count each per call (200 ns a token when they were a tuple).
_LIST_NAMES = ("bare", "abbrev", "contr", "contr_end", "suffix", "unit", "policy", "phrase",
               "citation")
_CONTRACTIONS = [(w, ("nt",)) for w in ("ca", "wo", "do", "did", "does", "is", "are", "was",
                                         "were", "have", "has", "had", "could", "should",
                                         "would", "ai")]
_CONTRACTIONS += [("can", ("not",)), ("i", ("m", "ve")), ("you", ("re",)), ("they", ("re",))]
_CONTRACTIONS += [(w, ("s",)) for w in ("he", "she", "what", "that", "there")]
_CONTRACTIONS += [("you", ("ll", "ve")), ("gon", ("na",)), ("got", ("ta",))]
_LIST_WORDS = {
    "bare": sorted(quality._BARE_WORDS),  # the contractions quality.words never takes whole
    "abbrev": quality._ABBREVIATIONS.split("|"),
    "contr": [w for w, _ in _CONTRACTIONS],  # _BARE_CONTRACTIONS, in its order
    "contr_end": [e for _, ends in _CONTRACTIONS for e in ends],
    "suffix": ["s", "m", "d", "ll", "re", "ve"],  # 's 'm 'd 'll 're 've
    "unit": ["m", "km", "mm", "cm", "kg", "mg", "g", "lb", "oz", "ft", "mph", "kB", "kb", "KB",
             "Kb", "MB", "Mb", "GB", "Gb", "TB", "Tb", "mb", "gb", "T", "G", "M", "K"],
    "policy": list(quality._POLICY),
    "phrase": ["lorem ipsum", "javascript"],
    "citation": ["citation needed]"],
}


def _pack_words() -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    rows = [w for name in _LIST_NAMES for w in _LIST_WORDS[name]]
    table = np.zeros((len(rows), 1 + max(map(len, rows))), dtype=np.uint32)
    for i, w in enumerate(rows):
        table[i, 0] = len(w)
        table[i, 1: 1 + len(w)] = [ord(ch) for ch in w]
    ranges, start = {}, 0
    for name in _LIST_NAMES:
        ranges[name] = (start, start + len(_LIST_WORDS[name]))
        start += len(_LIST_WORDS[name])
    return table, ranges


WORDS, _RANGES = _pack_words()
BARE_LO, BARE_HI = _RANGES["bare"]
ABBREV_LO, ABBREV_HI = _RANGES["abbrev"]
CONTR_LO, CONTR_HI = _RANGES["contr"]
CONTR_END_LO = _RANGES["contr_end"][0]
SUFFIX_LO, SUFFIX_HI = _RANGES["suffix"]
UNIT_LO, UNIT_HI = _RANGES["unit"]
POLICY_LO, POLICY_HI = _RANGES["policy"]
LOREM = _RANGES["phrase"][0]
JAVASCRIPT = LOREM + 1
CITATION = _RANGES["citation"][0]
_CONTR_FIRST_END = np.cumsum([0] + [len(e) for _, e in _CONTRACTIONS])


def _first_chars(words_: Sequence[str], fold: bool) -> list[bool]:
    """Per ASCII character: does one of the words start with it (lower-cased when `fold`)."""
    firsts = {w[0].lower() if fold else w[0] for w in words_}
    return [chr(i) in firsts for i in range(128)]


AUX_CONTR_FIRST, AUX_ABBREV_FIRST, AUX_UNIT_FIRST, AUX_CONTR_ENDS = 0, 1, 2, 3
AUX_PHRASE_ROWS, AUX_BARE_LENGTHS, AUX_BY_LETTER = 4, 5, 6
AUX_PHRASE_PAIRS = AUX_BY_LETTER + 128


def _aux_table() -> np.ndarray:
    """int64[262, 128], passed to the kernels (global arrays and tuples are rebuilt on every
    call of a compiled function: 50 ns a token): rows AUX_CONTR_FIRST, AUX_ABBREV_FIRST and
    AUX_UNIT_FIRST say which ASCII characters start a contraction (lower-cased), an abbreviation
    or a unit; row AUX_CONTR_ENDS holds, per contraction k, where its endings start (k) and end
    (k + 1) among the contr_end rows; row AUX_BY_LETTER + x lists the contractions starting
    with letter x, in their order, -1 after; AUX_PHRASE_ROWS holds C4's phrases' rows in WORDS,
    and row AUX_PHRASE_PAIRS + x, column y a bit mask of those starting with x, y (ASCII,
    lower-cased)."""
    aux = np.full((AUX_PHRASE_PAIRS + 128, 128), -1, dtype=np.int64)
    aux[AUX_CONTR_FIRST] = _first_chars(_LIST_WORDS["contr"], True)
    aux[AUX_ABBREV_FIRST] = _first_chars(_LIST_WORDS["abbrev"], False)
    aux[AUX_UNIT_FIRST] = _first_chars(_LIST_WORDS["unit"], False)
    aux[AUX_CONTR_ENDS, : len(_CONTR_FIRST_END)] = _CONTR_FIRST_END
    for k, word in enumerate(_LIST_WORDS["contr"]):
        row = aux[AUX_BY_LETTER + ord(word[0])]
        row[np.argmax(row < 0)] = k
    # C4's phrases: lorem ipsum, javascript, then the policy phrases; per first two letters a
    # bit mask of the phrases starting with them, and each phrase's row in WORDS.
    phrases = [_RANGES["phrase"][0], _RANGES["phrase"][0] + 1, *range(*_RANGES["policy"])]
    # Per first letter, a bit mask of the lengths of the bare contractions starting with it:
    # most words are told apart from them without comparing a character.
    aux[AUX_BARE_LENGTHS] = 0
    for word in _LIST_WORDS["bare"]:
        aux[AUX_BARE_LENGTHS, ord(word[0])] |= 1 << len(word)
    aux[AUX_PHRASE_PAIRS:] = 0
    for i, row_ in enumerate(phrases):
        aux[AUX_PHRASE_PAIRS + int(WORDS[row_, 1]), int(WORDS[row_, 2])] |= 1 << i
        aux[AUX_PHRASE_ROWS, i] = row_
    return aux


N_PHRASES = 2 + len(_LIST_WORDS["policy"])
AUX = _aux_table()
HAS_AT, HAS_DOT, HAS_COLON, HAS_QUOTE = 1, 2, 4, 8  # what a chunk contains


def _word_list(words_: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Recipe words (stop words) as a padded uint32 matrix and their lengths (-1: no word)."""
    width = max((len(w) for w in words_), default=1)
    table = np.zeros((max(len(words_), 1), width), dtype=np.uint32)
    lengths = np.full(max(len(words_), 1), -1, dtype=np.int64)
    for i, w in enumerate(words_):
        table[i, : len(w)] = [ord(ch) for ch in w]
        lengths[i] = len(w)
    return table, lengths


# ---- small compiled helpers -----------------------------------------------------------------
# Positions are absolute indices into the code point array `c`; a "chunk" is [a, b).

@numba.njit(cache=True, _nrt=False, inline="always")
def _w(c, p, a, b, flags):  # pragma: no cover (compiled)
    return a <= p < b and (flags[c[p]] & F_WORD) != 0


@numba.njit(cache=True, _nrt=False, inline="always")
def _boundary(c, p, a, b, flags):  # pragma: no cover (compiled)
    return _w(c, p - 1, a, b, flags) != _w(c, p, a, b, flags)


@numba.njit(cache=True, _nrt=False, inline="always")
def _letter(c, p, a, b, flags):  # pragma: no cover  [^\W\d_]
    if p < a or p >= b:
        return False
    ch = c[p]
    return (flags[ch] & F_WORD) != 0 and (flags[ch] & F_DIGIT) == 0 and ch != 95


@numba.njit(cache=True, _nrt=False, inline="always")
def _alnum(c, p, a, b, flags):  # pragma: no cover  [^\W_]
    return a <= p < b and (flags[c[p]] & F_WORD) != 0 and c[p] != 95


@numba.njit(cache=True, _nrt=False, inline="always")
def _digit(c, p, a, b, flags):  # pragma: no cover  \d
    return a <= p < b and (flags[c[p]] & F_DIGIT) != 0


@numba.njit(cache=True, _nrt=False, inline="always")
def _word_end(c, p, b, flags):  # pragma: no cover (compiled)
    while p < b and (flags[c[p]] & F_WORD) != 0:
        p += 1
    return p


@numba.njit(cache=True, _nrt=False, inline="always")
def _starts(c, p, b, words, k):  # pragma: no cover  c[p:] starts with word row k
    n = words[k, 0]
    if p + n > b:
        return False
    for j in range(n):
        if c[p + j] != words[k, 1 + j]:
            return False
    return True


@numba.njit(cache=True, _nrt=False, inline="always")
def _starts_ci(c, p, b, words, k, ci):  # pragma: no cover  the same in (?i)
    n = words[k, 0]
    if p + n > b:
        return False
    for j in range(n):
        if ci[c[p + j]] != words[k, 1 + j]:
            return False
    return True


@numba.njit(cache=True, _nrt=False, inline="always")
def _is_bare(c, a, b, lower, words, aux):  # pragma: no cover  str.lower() is a bare word
    x = lower[c[a]]
    if x >= 128 or b - a >= 63 or not (aux[AUX_BARE_LENGTHS, x] >> (b - a)) & 1:
        return False
    return _is_lower_word(c, a, b, lower, words, BARE_LO, BARE_HI)


@numba.njit(cache=True, _nrt=False, inline="always")
def _is_lower_word(c, a, b, lower, words, lo, hi):  # pragma: no cover  str.lower() in rows
    for k in range(lo, hi):
        if words[k, 0] != b - a:
            continue
        same = True
        for j in range(b - a):
            if lower[c[a + j]] != words[k, 1 + j]:
                same = False
                break
        if same:
            return True
    return False


@numba.njit(cache=True, _nrt=False, inline="always")
def _in_words(c, a, b, words, lo, hi):  # pragma: no cover  c[a:b] is one of rows [lo, hi)
    for k in range(lo, hi):
        if words[k, 0] == b - a and _starts(c, a, b, words, k):
            return True
    return False


@numba.njit(cache=True, _nrt=False, inline="always")
def _behind_ok(c, p, a, flags):  # pragma: no cover  (?<![\w.])
    return p == a or not ((flags[c[p - 1]] & F_WORD) != 0 or c[p - 1] == 46)


@numba.njit(cache=True, _nrt=False, inline="always")
def _suffix_at(c, p, a, b, flags, ci, words):  # pragma: no cover  (?i:s|m|d|ll|re|ve)\b
    for k in range(SUFFIX_LO, SUFFIX_HI):
        if _starts_ci(c, p, b, words, k, ci) and _boundary(c, p + words[k, 0], a, b, flags):
            return p + words[k, 0]
    return -1


# ---- words: quality.words, alternative by alternative ----------------------------------------

@numba.njit(cache=True, _nrt=False)
def _match(c, p, a, b, flags, ci, words, aux, has):  # pragma: no cover (compiled)
    """End of the match of quality._WORD at p inside the chunk [a, b) (the first alternative
    that matches, as `re` picks it). `has`: the chunk's HAS_* bits; an alternative that needs a
    character the chunk lacks is not tried."""
    ch = c[p]
    if (flags[ch] & F_WORD) == 0 and not (ch == 46 or ch == 43 or ch == 45 or ch == 64
                                          or ch == 39 or ch == 0x2019 or ch == 47 or ch == 58
                                          or ch == 59 or ch == 61 or ch == 41):
        return p + 1  # it starts no alternative but \S (_STARTERS)
    # \b(?i:bare contractions): do|nt, can|not, i|m, you|re, ...
    if aux[AUX_CONTR_FIRST, ci[ch]] == 1 and _boundary(c, p, a, b, flags):
        for x in range(8):
            k = aux[AUX_BY_LETTER + ci[ch], x]
            if k < 0:
                break
            if _starts_ci(c, p, b, words, CONTR_LO + k, ci):
                q = p + words[CONTR_LO + k, 0]
                for e in range(CONTR_END_LO + aux[AUX_CONTR_ENDS, k],
                               CONTR_END_LO + aux[AUX_CONTR_ENDS, k + 1]):
                    if _starts_ci(c, q, b, words, e, ci) and _boundary(c, q + words[e, 0], a,
                                                                       b, flags):
                        return q
    # \b[iI](?=d\b)
    if (ch == 105 or ch == 73) and p + 1 < b and c[p + 1] == 100 and _boundary(
            c, p, a, b, flags) and _boundary(c, p + 2, a, b, flags):
        return p + 1
    # [^\W\d_]+(?=\s|$)
    q = p
    while q < b and _letter(c, q, a, b, flags):
        q += 1
    if q == b and q > p:
        return b
    # (?:https?://|www\.)[^\s<>"]+?(?=[.,;:!?)\]'"]*(?:\s|$))
    q = -1
    if (has & HAS_COLON) and p + 7 <= b and c[p] == 104 and c[p + 1] == 116 and \
            c[p + 2] == 116 and c[p + 3] == 112:
        r = p + 4
        if r < b and c[r] == 115:
            r += 1
        if r + 3 <= b and c[r] == 58 and c[r + 1] == 47 and c[r + 2] == 47:
            q = r + 3
    if q < 0 and (has & HAS_DOT) and p + 4 <= b and c[p] == 119 and c[p + 1] == 119 and \
            c[p + 2] == 119 and \
            c[p + 3] == 46:
        q = p + 4
    if q >= 0 and q < b:
        t0 = b
        while t0 > q:
            x = c[t0 - 1]
            if (x == 46 or x == 44 or x == 59 or x == 58 or x == 33 or x == 63 or x == 41
                    or x == 93 or x == 39 or x == 34):
                t0 -= 1
            else:
                break
        e = max(q + 1, t0)
        ok = True
        for k in range(q, e):
            x = c[k]
            if x == 60 or x == 62 or x == 34:
                ok = False
                break
        if ok:
            return e
    # [\w.+-]+@[\w-]+(?:\.[\w-]+)+
    r = p if (has & HAS_AT) else b
    while r < b and ((flags[c[r]] & F_WORD) != 0 or c[r] == 46 or c[r] == 43 or c[r] == 45):
        r += 1
    if r > p and r < b and c[r] == 64:
        s = r + 1
        t = s
        while t < b and ((flags[c[t]] & F_WORD) != 0 or c[t] == 45):
            t += 1
        if t > s:
            groups = 0
            pos = t
            while pos < b and c[pos] == 46:
                u = pos + 1
                v = u
                while v < b and ((flags[c[v]] & F_WORD) != 0 or c[v] == 45):
                    v += 1
                if v > u:
                    groups += 1
                    pos = v
                else:
                    break
            if groups >= 1:
                return pos
    # @\w+
    if ch == 64 and _w(c, p + 1, a, b, flags):
        return _word_end(c, p + 1, b, flags)
    # (?:[^\W\d_]\.){2,}
    q = p
    pairs = 0
    while (has & HAS_DOT) and q + 1 < b and c[q + 1] == 46 and _letter(c, q, a, b, flags):
        q += 2
        pairs += 1
    if pairs >= 2:
        return q
    # (?<![\w.])[A-Za-z]\.(?!\w)
    if _behind_ok(c, p, a, flags) and ((65 <= ch <= 90) or (97 <= ch <= 122)) and \
            p + 1 < b and c[p + 1] == 46 and not _w(c, p + 2, a, b, flags):
        return p + 2
    # (?:Mr|Mrs|...)\.(?!\w)
    abbreviation = (has & HAS_DOT) and ch < 128 and aux[AUX_ABBREV_FIRST, ch] == 1
    for k in range(ABBREV_LO, ABBREV_HI if abbreviation else ABBREV_LO):
        if _starts(c, p, b, words, k):
            q = p + words[k, 0]
            if q < b and c[q] == 46 and not _w(c, q + 1, a, b, flags):
                return q + 1
    # (?<![\w.])8\)
    if ch == 56 and _behind_ok(c, p, a, flags) and p + 1 < b and c[p + 1] == 41:
        return p + 2
    # \band/or\b
    if p + 6 <= b and _boundary(c, p, a, b, flags) and c[p] == 97 and c[p + 1] == 110 and \
            c[p + 2] == 100 and c[p + 3] == 47 and c[p + 4] == 111 and c[p + 5] == 114 and \
            _boundary(c, p + 6, a, b, flags):
        return p + 6
    # (?<![\w.])[-+]?\d+(?=unit\b)  and  (?<![\w.])[-+]?\d\w*(?:[.,:/–−]\d\w*)*
    if _behind_ok(c, p, a, flags):
        q = p + 1 if (ch == 45 or ch == 43) else p
        if _digit(c, q, a, b, flags):
            j = q
            while j < b and (flags[c[j]] & F_DIGIT) != 0:
                j += 1
            units = j < b and c[j] < 128 and aux[AUX_UNIT_FIRST, c[j]] == 1
            for k in range(UNIT_LO, UNIT_HI if units else UNIT_LO):
                if _starts(c, j, b, words, k) and _boundary(c, j + words[k, 0], a, b, flags):
                    return j
            r = _word_end(c, q + 1, b, flags)
            while r < b:
                x = c[r]
                if (x == 46 or x == 44 or x == 58 or x == 47 or x == 0x2013 or x == 0x2212) \
                        and _digit(c, r + 1, a, b, flags):
                    r = _word_end(c, r + 1, b, flags)
                else:
                    break
            return r
    # (?i:[^\W_]\w*?(?=n['’]t\b))
    if (has & HAS_QUOTE) and _alnum(c, p, a, b, flags):
        r = _word_end(c, p, b, flags)
        e = r - 1
        if e >= p + 1 and ci[c[e]] == 110 and r < b and (c[r] == 39 or c[r] == 0x2019) and \
                r + 1 < b and ci[c[r + 1]] == 116 and _boundary(c, r + 2, a, b, flags):
            return e
    # (?i:n['’]t)\b
    if (has & HAS_QUOTE) and ci[ch] == 110 and p + 2 < b and \
            (c[p + 1] == 39 or c[p + 1] == 0x2019) and \
            ci[c[p + 2]] == 116 and _boundary(c, p + 3, a, b, flags):
        return p + 3
    # ['’](?i:s|m|d|ll|re|ve)\b
    if ch == 39 or ch == 0x2019:
        e = _suffix_at(c, p + 1, a, b, flags, ci, words)
        if e >= 0:
            return e
    # words: (?:(?<!\S)-)?[^\W_]\w*(?:(?:SEP)[^\W_]\w*)*(?:\+|-(?!\S))?
    q = p
    if p == a and ch == 45 and _alnum(c, p + 1, a, b, flags):
        q = p + 1
    if _alnum(c, q, a, b, flags):
        r = _word_end(c, q, b, flags)
        while r < b:
            x = c[r]
            s = -1
            if x == 39 or x == 0x2019:
                if _suffix_at(c, r + 1, a, b, flags, ci, words) < 0:
                    s = r + 1
            elif x == 38:
                s = r + 1
            elif x == 46:
                if not (r + 1 < b and 65 <= c[r + 1] <= 90):
                    s = r + 1
            elif x == 45:
                if _digit(c, r + 1, a, b, flags):
                    s = r + 1
            elif x == 40 or x == 124 or x == 36 or x == 42 or x == 63 or x == 43:
                t = r
                while t < b and (c[t] == 40 or c[t] == 124 or c[t] == 36 or c[t] == 42
                                 or c[t] == 63 or c[t] == 43):
                    t += 1
                if _w(c, t, a, b, flags):
                    s = t
            elif x == 44:
                if _digit(c, r + 1, a, b, flags):
                    s = r + 1
            if s < 0 or not _alnum(c, s, a, b, flags):
                break
            r = _word_end(c, s, b, flags)
        if r < b and (c[r] == 43 or (c[r] == 45 and r + 1 == b)):
            r += 1
        return r
    # \.{2,}  -{2,}
    if (ch == 46 or ch == 45) and p + 1 < b and c[p + 1] == ch:
        q = p
        while q < b and c[q] == ch:
            q += 1
        return q
    # (?<!\S)/+[\w.]*
    if ch == 47 and p == a:
        q = p
        while q < b and c[q] == 47:
            q += 1
        while q < b and ((flags[c[q]] & F_WORD) != 0 or c[q] == 46):
            q += 1
        return q
    # [:;=][-']?[()DPp/](?!\w)
    if ch == 58 or ch == 59 or ch == 61:
        q = p + 1
        if q < b and (c[q] == 45 or c[q] == 39):
            q += 1
        if q < b:
            x = c[q]
            if (x == 40 or x == 41 or x == 68 or x == 80 or x == 112 or x == 47) and \
                    not _w(c, q + 1, a, b, flags):
                return q + 1
    # \):
    if ch == 41 and p + 1 < b and c[p + 1] == 58:
        return p + 2
    return p + 1  # \S


@numba.njit(cache=True, _nrt=False)
def _tokenize(c, lo, hi, flags, lower, ci, words, aux, starts, ends, n):  # pragma: no cover
    """Append the tokens of c[lo:hi] (quality.words) to starts/ends from index n; new n."""
    i = lo
    while i < hi:
        while i < hi and (flags[c[i]] & F_SPACE) != 0:
            i += 1
        if i >= hi:
            break
        # chunk [i, j), and whether all of it but the last character is alphabetic, in one
        # pass (a second one over the chunk was 7% of the tokenizer's time)
        j = i
        every = F_ALPHA  # the bit if all of c[i:j] has it
        before = F_ALPHA  # the same for c[i:j - 1]
        while j < hi:
            f = flags[c[j]]
            if (f & F_SPACE) != 0:
                break
            before = every
            every &= f
            j += 1
        alpha = before != 0
        last = c[j - 1]
        if alpha and (flags[last] & F_ALPHA) != 0:
            if not _is_bare(c, i, j, lower, words, aux):
                starts[n] = i
                ends[n] = j
                n += 1
                i = j
                continue
        elif (alpha and j - i > 2 and (last == 44 or last == 46 or last == 59 or last == 58
                                       or last == 33 or last == 63)
              and not _is_bare(c, i, j - 1, lower, words, aux)
              and not (last == 46 and _in_words(c, i, j - 1, words, ABBREV_LO, ABBREV_HI))):
            starts[n] = i
            ends[n] = j - 1
            starts[n + 1] = j - 1
            ends[n + 1] = j
            n += 2
            i = j
            continue
        has = 0
        for k in range(i, j):
            x = c[k]
            if x == 64:
                has |= HAS_AT
            elif x == 46:
                has |= HAS_DOT
            elif x == 58:
                has |= HAS_COLON
            elif x == 39 or x == 0x2019:
                has |= HAS_QUOTE
        p = i
        while p < j:
            e = _match(c, p, i, j, flags, ci, words, aux, has)
            starts[n] = p
            ends[n] = e
            n += 1
            p = e
        i = j
    return n


def words(text: str) -> list[str]:
    """quality.words(text), by the kernel."""
    chars, _ = encode([text])
    starts = np.empty(len(chars) + 1, dtype=np.int64)
    ends = np.empty(len(chars) + 1, dtype=np.int64)
    n = _tokenize(chars, 0, len(chars), char_flags(), lower_table(), ignorecase_table(), WORDS,
                  AUX, starts, ends, 0)
    return [text[a:b] for a, b in zip(starts[:n].tolist(), ends[:n].tolist(), strict=True)]


# ---- exact sets of strings and of token sequences -------------------------------------------

@numba.njit(cache=True, _nrt=False, inline="always")
def _hash(data, start, length):  # pragma: no cover (compiled)
    """FNV-1a over the code points, then _fmix. A key of 16 or more is hashed in four
    interleaved lanes: one lane waits on a multiplication per character, four overlap (lines
    and paragraphs, hashed whole by the repetition rules, took twice as long). Only the sets'
    speed depends on it: a slot's key is compared in full."""
    h = np.uint64(0xCBF29CE484222325)
    if length < 16:
        for k in range(start, start + length):
            h = (h ^ np.uint64(data[k])) * np.uint64(0x100000001B3)
        return _fmix(h)
    h1 = np.uint64(0x84222325CBF29CE4)
    h2 = np.uint64(0x9E3779B97F4A7C15)
    h3 = np.uint64(0xC2B2AE3D27D4EB4F)
    k = start
    end = start + length
    while k + 4 <= end:
        h = (h ^ np.uint64(data[k])) * np.uint64(0x100000001B3)
        h1 = (h1 ^ np.uint64(data[k + 1])) * np.uint64(0x100000001B3)
        h2 = (h2 ^ np.uint64(data[k + 2])) * np.uint64(0x100000001B3)
        h3 = (h3 ^ np.uint64(data[k + 3])) * np.uint64(0x100000001B3)
        k += 4
    while k < end:
        h = (h ^ np.uint64(data[k])) * np.uint64(0x100000001B3)
        k += 1
    h1 = _fmix(h1 ^ np.uint64(length))
    h2 = _fmix(h2) * np.uint64(0xFF51AFD7ED558CCD)
    h3 = _fmix(h3) * np.uint64(0xC4CEB9FE1A85EC53)
    return _fmix(h ^ h1 ^ (h2 >> np.uint64(17)) ^ (h2 << np.uint64(47))
                 ^ (h3 >> np.uint64(31)) ^ (h3 << np.uint64(33)))


@numba.njit(cache=True, _nrt=False, inline="always")
def _fmix(h):  # pragma: no cover  the finish of _hash: the low bits (the slot) depend on all
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(29)
    return h


@numba.njit(cache=True, _nrt=False, inline="always")
def _grams(ids, n_tok, state, have, n):  # pragma: no cover (compiled)
    """state[i] <- _hash(ids, i, n) before its _fmix, for every n-gram, extended one token at a
    time from the `have`-grams already there (each size costs one pass, not n): returns n."""
    if have > n:
        have = 0
    while have < n:
        if have == 0:
            for i in range(n_tok):
                state[i] = (np.uint64(0xCBF29CE484222325) ^ np.uint64(ids[i])) * \
                    np.uint64(0x100000001B3)
        else:
            for i in range(n_tok - have):
                state[i] = (state[i] ^ np.uint64(ids[i + have])) * np.uint64(0x100000001B3)
        have += 1
    return have


@numba.njit(cache=True, _nrt=False, inline="always")
def _same(data, s1, s2, length):  # pragma: no cover (compiled)
    for k in range(length):
        if data[s1 + k] != data[s2 + k]:
            return False
    return True


# The exact sets below are open-addressing hash tables in plain arrays: per slot a generation
# stamp (a slot is taken only when its stamp is the current generation, so emptying a set is one
# increment), the key's hash, its start and length in its data array, and int64 values.


@numba.njit(cache=True, _nrt=False, inline="always")
def _lookup(data, start, length, h, tgen, thash, tstart, tlen, gen, mask):  # pragma: no cover
    """Slot of the key data[start:start+length]: (slot, True) if present, else (free slot,
    False)."""
    slot = np.int64(h & np.uint64(mask))
    while True:
        if tgen[slot] != gen:
            return slot, False
        if thash[slot] == h and tlen[slot] == length and _same(data, tstart[slot], start, length):
            return slot, True
        slot = (slot + 1) & mask


@numba.njit(cache=True, _nrt=False, inline="always")
def _fit(mask, count):  # pragma: no cover
    """The mask of a table for `count` keys at most half full, within the arrays' `mask`: a
    document's sets stay in the low slots, in cache, whatever the longest text of the batch."""
    size = 16
    while size < 2 * count:
        size *= 2
    return min(mask, size - 1)


# ---- the rules --------------------------------------------------------------------------------

# Rule sets, and reason codes (index into REASONS).
RULE_CODES = {"gopher_repetition": 0, "gopher_quality": 1, "c4": 2, "fineweb": 3}
REASONS = (
    "gopher_repetition:empty", "gopher_repetition:dup_para_frac",
    "gopher_repetition:dup_para_char_frac", "gopher_repetition:dup_line_frac",
    "gopher_repetition:dup_line_char_frac",
    *[f"gopher_repetition:top_{n}_gram" for n in range(1, 33)],
    *[f"gopher_repetition:dup_{n}_gram" for n in range(1, 33)],
    "gopher_quality:short_doc", "gopher_quality:long_doc", "gopher_quality:below_avg_word_length",
    "gopher_quality:above_avg_word_length", "gopher_quality:too_many_hashes",
    "gopher_quality:too_many_ellipsis", "gopher_quality:too_many_bullets",
    "gopher_quality:too_many_end_ellipsis", "gopher_quality:below_alpha_ratio",
    "gopher_quality:few_stop_words",
    "c4:lorem_ipsum", "c4:curly_bracket", "c4:too_few_sentences", "c4:mostly_removed",
    "fineweb:empty", "fineweb:line_punct_ratio", "fineweb:short_line_ratio",
    "fineweb:char_dup_ratio", "fineweb:list_ratio",
)
_R = {r: i for i, r in enumerate(REASONS)}
R_EMPTY, R_PARA, R_PARA_CHAR, R_LINE, R_LINE_CHAR = (_R["gopher_repetition:empty"],
                                                    _R["gopher_repetition:dup_para_frac"],
                                                    _R["gopher_repetition:dup_para_char_frac"],
                                                    _R["gopher_repetition:dup_line_frac"],
                                                    _R["gopher_repetition:dup_line_char_frac"])
R_TOP0 = _R["gopher_repetition:top_1_gram"] - 1  # + n
R_DUP0 = _R["gopher_repetition:dup_1_gram"] - 1  # + n
R_SHORT, R_LONG, R_AVG_LOW, R_AVG_HIGH, R_HASH, R_ELL, R_BULLET, R_END_ELL, R_ALPHA, R_STOP = (
    _R[f"gopher_quality:{r}"] for r in (
        "short_doc", "long_doc", "below_avg_word_length", "above_avg_word_length",
        "too_many_hashes", "too_many_ellipsis", "too_many_bullets", "too_many_end_ellipsis",
        "below_alpha_ratio", "few_stop_words"))
R_LOREM, R_CURLY, R_SENTENCES, R_C4_KEPT = _R["c4:lorem_ipsum"], _R["c4:curly_bracket"], \
    _R["c4:too_few_sentences"], _R["c4:mostly_removed"]
R_FW_EMPTY, R_FW_PUNCT, R_FW_SHORT, R_FW_DUP, R_FW_LIST = (
    _R[f"fineweb:{r}"] for r in ("empty", "line_punct_ratio", "short_line_ratio",
                                 "char_dup_ratio", "list_ratio"))

# Scalar thresholds, by position in the float64 parameter vector.
(P_DUP_PARA, P_DUP_PARA_CHAR, P_DUP_LINE, P_DUP_LINE_CHAR,
 P_MIN_WORDS, P_MAX_WORDS, P_MIN_AVG, P_MAX_AVG, P_SYMBOL, P_BULLET, P_END_ELL, P_ALPHA,
 P_MIN_STOP,
 P_C4_MIN_WORDS, P_C4_MIN_SENTENCES, P_C4_MAX_WORD, P_C4_PUNCT, P_C4_CITATIONS, P_C4_LOREM,
 P_C4_JS, P_C4_CURLY, P_C4_POLICY, P_C4_APOSTROPHE, P_C4_MIN_KEPT,
 P_FW_PUNCT, P_FW_EXCLUDE_ZERO, P_FW_SHORT, P_FW_SHORT_LEN, P_FW_DUP, P_FW_NEWLINE,
 P_MIN_END_ELL) = range(31)
N_PARAMS = 31


def parameters(settings: Any) -> dict[str, np.ndarray]:
    """The thresholds of `settings` (a CleanConfig, or anything with its four rule sections)
    as the arrays the kernel reads."""
    gr, gq, c4, fw = (settings.gopher_repetition, settings.gopher_quality, settings.c4,
                      settings.fineweb)
    min_words, min_sentences, marks = c4.resolved()
    p = np.zeros(N_PARAMS, dtype=np.float64)
    p[[P_DUP_PARA, P_DUP_PARA_CHAR, P_DUP_LINE, P_DUP_LINE_CHAR]] = (
        gr.dup_para_frac, gr.dup_para_char_frac, gr.dup_line_frac, gr.dup_line_char_frac)
    p[[P_MIN_WORDS, P_MAX_WORDS, P_MIN_AVG, P_MAX_AVG, P_SYMBOL, P_BULLET, P_END_ELL, P_ALPHA,
       P_MIN_STOP]] = (gq.min_doc_words, gq.max_doc_words, gq.min_avg_word_length,
                       gq.max_avg_word_length, gq.max_symbol_word_ratio,
                       gq.max_bullet_lines_ratio, gq.max_ellipsis_lines_ratio,
                       gq.min_alpha_words_ratio, gq.min_stop_words)
    p[[P_C4_MIN_WORDS, P_C4_MIN_SENTENCES, P_C4_MAX_WORD, P_C4_PUNCT, P_C4_CITATIONS,
       P_C4_LOREM, P_C4_JS, P_C4_CURLY, P_C4_POLICY, P_C4_APOSTROPHE, P_C4_MIN_KEPT]] = (
        min_words, min_sentences, c4.max_word_length, c4.filter_no_terminal_punct,
        c4.remove_citations, c4.filter_lorem_ipsum, c4.filter_javascript,
        c4.filter_curly_bracket, c4.filter_policy, "'" in marks, c4.min_kept_char_frac)
    p[[P_FW_PUNCT, P_FW_EXCLUDE_ZERO, P_FW_SHORT, P_FW_SHORT_LEN, P_FW_DUP, P_FW_NEWLINE]] = (
        fw.line_punct_thr, fw.line_punct_exclude_zero, fw.short_line_thr, fw.short_line_length,
        fw.char_duplicates_ratio, fw.new_line_ratio)
    p[P_MIN_END_ELL] = gq.min_ellipsis_lines
    if "'" in marks and marks != (".", "?", "!", '"', "'") or "'" not in marks and marks != (
            ".", "?", "!", '"'):
        raise ValueError(f"C4 terminal marks {marks} are not ones the kernel knows")
    top = np.array(list(gr.top_n_grams) or [(0, 0.0)], dtype=np.float64).reshape(-1, 2)
    dup = np.array(sorted(gr.dup_n_grams) or [(0, 0.0)], dtype=np.float64).reshape(-1, 2)
    for n, _ in list(gr.top_n_grams) + list(gr.dup_n_grams):
        if not 1 <= n <= 32:
            raise ValueError(f"gopher_repetition n-gram size {n} outside 1..32")
    stop_words, stop_lengths = _word_list(list(dict.fromkeys(gq.stop_words)))
    return {"params": p, "top": top, "dup": dup, "stop_words": stop_words,
            "stop_lengths": stop_lengths,
            "n_top": np.int64(len(gr.top_n_grams)), "n_dup": np.int64(len(gr.dup_n_grams))}




@numba.njit(cache=True, _nrt=False, inline="always")
def _contains_lower(c, a, b, lower, words, k):  # pragma: no cover
    """The ASCII phrase of row k occurs in str.lower() of c[a:b]."""
    n = words[k, 0]
    for p in range(a, b - n + 1):
        ok = True
        for j in range(n):
            if lower[c[p + j]] != words[k, 1 + j]:
                ok = False
                break
        if ok:
            return True
    return False


@numba.njit(cache=True, _nrt=False)
def _phrases(c, a, b, lower, words, aux):  # pragma: no cover
    """Which of C4's phrases occur in str.lower() of c[a:b], in one pass: bit 1 lorem ipsum,
    2 javascript, 4 a policy phrase."""
    found = 0
    # By their first two characters: a phrase's first letter alone (t, c, p, u, l, j) starts a
    # quarter of the positions of English text, and this was an eighth of the rules' time.
    for p in range(a, b - 1):
        x = lower[c[p]]
        if x >= 128:
            continue
        y = lower[c[p + 1]]
        if y >= 128:
            continue
        mask = aux[AUX_PHRASE_PAIRS + x, y]
        if mask == 0:
            continue
        for i in range(N_PHRASES):
            bit = 1 if i == 0 else (2 if i == 1 else 4)
            if (mask >> i) & 1 and not (found & bit) and _contains_lower(
                    c, p, min(b, p + words[aux[AUX_PHRASE_ROWS, i], 0]), lower, words,
                    aux[AUX_PHRASE_ROWS, i]):
                found |= bit
    return found


@numba.njit(cache=True, _nrt=False, inline="always")
def _strip(c, a, b, flags):  # pragma: no cover  str.strip() bounds
    while a < b and (flags[c[a]] & F_SPACE) != 0:
        a += 1
    while b > a and (flags[c[b - 1]] & F_SPACE) != 0:
        b -= 1
    return a, b


@numba.njit(cache=True, _nrt=False, inline="always")
def _next_line(c, p, hi, flags):  # pragma: no cover  str.splitlines(): (end of line, next)
    k = p
    while k < hi and (flags[c[k]] & F_BREAK) == 0:
        k += 1
    if k >= hi:
        return k, hi
    if c[k] == 13 and k + 1 < hi and c[k + 1] == 10:
        return k, k + 2
    return k, k + 1


@numba.njit(cache=True, _nrt=False, inline="always")
def _count(c, a, b, x):  # pragma: no cover (compiled)
    n = 0
    for k in range(a, b):
        if c[k] == x:
            n += 1
    return n


@numba.njit(cache=True, _nrt=False, inline="always")
def _dup_pieces(c, starts, ends, m, tgen, thash, tstart, tlen, gen, mask, hashes=None,
                given=False):  # pragma: no cover
    """_duplicates over m pieces c[starts[i]:ends[i]]: (repeats, their characters). `hashes`:
    the pieces' hashes, stored there (or, `given`, read from there: any hash equal pieces
    share will do, a slot's key is compared in full)."""
    dup = 0
    chars = 0
    mask = _fit(mask, m)
    for i in range(m):
        s, e = starts[i], ends[i]
        if given:
            h = hashes[i]
        else:
            h = _hash(c, s, e - s)
            if hashes is not None:
                hashes[i] = h
        slot, found = _lookup(c, s, e - s, h, tgen, thash, tstart, tlen, gen, mask)
        if found:
            dup += 1
            chars += e - s
        else:
            tgen[slot] = gen
            thash[slot] = h
            tstart[slot] = s
            tlen[slot] = e - s
    return dup, chars


@numba.njit(cache=True, _nrt=False)
def _intern(c, tok_s, tok_e, n_tok, ids, tgen, thash, tstart, tlen, tval, gen, mask):
    """ids[i] = a number per distinct token string (exact)."""  # pragma: no cover
    next_id = 0
    mask = _fit(mask, n_tok)
    for i in range(n_tok):
        s, e = tok_s[i], tok_e[i]
        h = _hash(c, s, e - s)
        slot, found = _lookup(c, s, e - s, h, tgen, thash, tstart, tlen, gen, mask)
        if found:
            ids[i] = tval[slot]
        else:
            tgen[slot] = gen
            thash[slot] = h
            tstart[slot] = s
            tlen[slot] = e - s
            tval[slot] = next_id
            ids[i] = next_id
            next_id += 1


@numba.njit(cache=True, _nrt=False)
def _top_ngram_chars(ids, lens, n_tok, n, state, tgen, thash, tstart, tlen, tval, tfirst, gen,
                     mask):  # pragma: no cover
    """quality._top_ngram_chars: the most frequent n-gram (the first seen among equals);
    state: _grams of size n."""
    best_count = 0
    best_first = -1
    mask = _fit(mask, n_tok - n + 1)
    for i in range(n_tok - n + 1):
        h = _fmix(state[i])
        slot, found = _lookup(ids, i, n, h, tgen, thash, tstart, tlen, gen, mask)
        if found:
            tval[slot] += 1
        else:
            tgen[slot] = gen
            thash[slot] = h
            tstart[slot] = i
            tlen[slot] = n
            tval[slot] = 1
            tfirst[slot] = i
            slot_count = 1
            if slot_count > best_count:
                best_count, best_first = 1, i
            continue
        cnt = tval[slot]
        first = tfirst[slot]
        if cnt > best_count or (cnt == best_count and first < best_first):
            best_count, best_first = cnt, first
    chars = n - 1
    for k in range(best_first, best_first + n):
        chars += lens[k]
    return chars * best_count, best_count


@numba.njit(cache=True, _nrt=False)
def _shared_grams(ids, n_tok, n, state, shared, tgen, thash, tstart, tlen, tfirst, gen, mask):
    """shared[i] <- the n-gram at i occurs more than once; returns how many positions hold one
    (state: _grams of size n)."""  # pragma: no cover
    count = 0
    mask = _fit(mask, n_tok - n + 1)
    for i in range(n_tok - n + 1):
        h = _fmix(state[i])
        slot, found = _lookup(ids, i, n, h, tgen, thash, tstart, tlen, gen, mask)
        if found:
            first = tfirst[slot]
            count += 1 + (not shared[first])
            shared[first] = True
            shared[i] = True
        else:
            tgen[slot] = gen
            thash[slot] = h
            tstart[slot] = i
            tlen[slot] = n
            tfirst[slot] = i
            shared[i] = False
    return count


@numba.njit(cache=True, _nrt=False)
def _dup_ngram_chars(ids, lens, n_tok, n, state, shared, n_shared, tgen, thash, tstart, tlen,
                     gen, mask):
    """Characters in repeated n-grams, left to right, jumping over each repeat (datatrove's
    find_all_duplicate; quality._dup_ngram_chars); state: _grams of size n.

    Only positions whose m-gram occurs twice or more (`shared`, m <= n, n_shared of them) are
    looked up and added: any other holds an n-gram that occurs once (its m-gram prefix does),
    which no look-up finds and no later n-gram matches."""  # pragma: no cover
    chars = 0
    i = 0
    mask = _fit(mask, n_shared)
    while i < n_tok - n + 1:
        if not shared[i]:
            i += 1
            continue
        h = _fmix(state[i])
        slot, found = _lookup(ids, i, n, h, tgen, thash, tstart, tlen, gen, mask)
        if found:
            for k in range(i, i + n):
                chars += lens[k]
            i += n
        else:
            tgen[slot] = gen
            thash[slot] = h
            tstart[slot] = i
            tlen[slot] = n
            i += 1
    return chars


@numba.njit(cache=True, _nrt=False, inline="always")
def _sentences(c, tok_s, tok_e, n_tok, flags):  # pragma: no cover  quality.count_sentences
    n = 1
    seen_final = False
    for i in range(n_tok):
        s, e = tok_s[i], tok_e[i]
        if e - s == 1 and (flags[c[s]] & F_TERMINAL) != 0:
            seen_final = True
        elif seen_final:
            punct = True
            for k in range(s, e):
                if (flags[c[k]] & F_PUNCT) == 0:
                    punct = False
                    break
            if not punct:
                n += 1
                seen_final = False
    return n


@numba.njit(cache=True, _nrt=False, inline="always")
def _citation_end(c, k, b, flags, words):  # pragma: no cover  \[\d*]|\[edit]|\[citation needed]
    if c[k] != 91:
        return -1
    q = k + 1
    while q < b and (flags[c[q]] & F_DIGIT) != 0:
        q += 1
    if q < b and c[q] == 93:
        return q + 1
    # "[edit]"
    if k + 6 <= b and c[k + 1] == 101 and c[k + 2] == 100 and c[k + 3] == 105 and \
            c[k + 4] == 116 and c[k + 5] == 93:
        return k + 6
    if _starts(c, k + 1, b, words, CITATION):
        return k + 1 + words[CITATION, 0]
    return -1


# ---- the four rule sets, one document each ----------------------------------------------------

@numba.njit(cache=True, _nrt=False, inline="always")
def _pieces(c, a, b, minimum, ps, pe):  # pragma: no cover
    """re.split(r"\\n{minimum,}", c[a:b]) as (start, end) pairs; returns how many."""
    m = 0
    start = a
    k = a
    while k < b:
        if c[k] == 10:
            r = k
            while r < b and c[r] == 10:
                r += 1
            if r - k >= minimum:
                ps[m] = start
                pe[m] = k
                m += 1
                start = r
            k = r
        else:
            k += 1
    ps[m] = start
    pe[m] = b
    return m + 1


@numba.njit(cache=True, _nrt=False)
def _gopher_repetition(c, lo, hi, ids, lens, n_tok, params, top, n_top, dup, n_dup, flags, ps,
                       pe, tgen, thash, tstart, tlen, tval, tfirst, gen, mask,
                       known, state, shared):  # pragma: no cover (compiled)
    """quality.gopher_repetition: (reason, value, threshold, generation)."""
    length = hi - lo
    if length == 0:
        return R_EMPTY, 0.0, 0.0, gen
    # Lines (split at every run of newlines) first, their hashes kept in `state` (free until
    # the n-grams): in a stripped text the paragraphs (split at runs of two or more) are runs
    # of lines one newline apart, hashed from their lines' hashes, so no character is hashed
    # twice (each was hashed once for its paragraph and once for its line).
    m_lines = _pieces(c, lo, hi, 1, ps, pe)
    gen += 1
    d_lines, ch_lines = _dup_pieces(c, ps, pe, m_lines, tgen, thash, tstart, tlen, gen, mask,
                                    state)
    s0, s1 = _strip(c, lo, hi, flags)
    if s0 == lo and s1 == hi:
        m = 0
        i = 0
        while i < m_lines:
            a = ps[i]
            h = (np.uint64(0xCBF29CE484222325) ^ state[i]) * np.uint64(0x100000001B3)
            while i + 1 < m_lines and ps[i + 1] == pe[i] + 1:
                i += 1
                h = (h ^ state[i]) * np.uint64(0x100000001B3)
            ps[m] = a
            pe[m] = pe[i]
            state[m] = _fmix(h)
            m += 1
            i += 1
        gen += 1
        d, ch = _dup_pieces(c, ps, pe, m, tgen, thash, tstart, tlen, gen, mask, state, True)
    else:
        m = _pieces(c, s0, s1, 2, ps, pe)
        gen += 1
        d, ch = _dup_pieces(c, ps, pe, m, tgen, thash, tstart, tlen, gen, mask)
    if params[P_DUP_PARA] != 0 and d / m > params[P_DUP_PARA]:
        return R_PARA, d / m, params[P_DUP_PARA], gen
    if params[P_DUP_PARA_CHAR] != 0 and ch / length > params[P_DUP_PARA_CHAR]:
        return R_PARA_CHAR, ch / length, params[P_DUP_PARA_CHAR], gen
    if params[P_DUP_LINE] != 0 and d_lines / m_lines > params[P_DUP_LINE]:
        return R_LINE, d_lines / m_lines, params[P_DUP_LINE], gen
    if params[P_DUP_LINE_CHAR] != 0 and ch_lines / length > params[P_DUP_LINE_CHAR]:
        return R_LINE_CHAR, ch_lines / length, params[P_DUP_LINE_CHAR], gen
    # The most frequent n-gram occurs no more often than the most frequent (n-1)-gram (its
    # prefix occurs wherever it does): when that count times the longest n-gram cannot exceed
    # the threshold, the count pass is not needed. `known[n]`: a bound on the top count.
    known[:] = n_tok + 1
    have = 0  # the n-gram size in `state`
    for k in range(n_top):
        n = int(top[k, 0])
        if n_tok >= n:
            bound = min(known[n], known[n - 1])
            if bound <= n_tok:
                widest = 0
                window = 0
                for i in range(n_tok):
                    window += lens[i]
                    if i >= n:
                        window -= lens[i - n]
                    if i >= n - 1:
                        widest = max(widest, window)
                if bound * (widest + n - 1) / length <= top[k, 1]:
                    known[n] = bound
                    continue
            gen += 1
            have = _grams(ids, n_tok, state, have, n)
            ch, top_count = _top_ngram_chars(ids, lens, n_tok, n, state, tgen, thash, tstart,
                                             tlen, tval, tfirst, gen, mask)
            known[n] = top_count
            if ch / length > top[k, 1]:
                return R_TOP0 + n, ch / length, top[k, 1], gen
    if n_dup == 0 or n_tok < dup[0, 0]:
        return -1, 0.0, 0.0, gen
    # The positions whose smallest-size n-gram occurs twice or more: the passes look up only
    # those (the sizes are sorted; an n-gram that repeats has a prefix that does). Each pass
    # looked up every position; in 3,000 documents of the scale corpus 0.5% of the positions
    # hold a 5-gram that repeats, and 2,170 documents have none.
    gen += 1
    have = _grams(ids, n_tok, state, have, int(dup[0, 0]))
    n_shared = _shared_grams(ids, n_tok, int(dup[0, 0]), state, shared, tgen, thash, tstart,
                             tlen, tfirst, gen, mask)
    if n_shared == 0:
        return -1, 0.0, 0.0, gen
    previous = -1
    for k in range(n_dup):
        n = int(dup[k, 0])
        if previous > 0 and n == previous + 1 and ch == 0:
            previous = n  # no repeated (n-1)-gram, so no repeated n-gram (its prefix would be)
            continue
        gen += 1
        have = _grams(ids, n_tok, state, have, n)
        ch = _dup_ngram_chars(ids, lens, n_tok, n, state, shared, n_shared, tgen, thash, tstart,
                              tlen, gen, mask)
        previous = n
        if ch > 0 and ch / length > dup[k, 1]:
            return R_DUP0 + n, ch / length, dup[k, 1], gen
    return -1, 0.0, 0.0, gen


@numba.njit(cache=True, _nrt=False)
def _gopher_quality(c, lo, hi, tok_s, tok_e, n_tok, params, stop_w, stop_l,
                    flags):  # pragma: no cover
    """quality.gopher_quality: (reason, value, threshold)."""
    if n_tok == 0:
        return R_SHORT, 0.0, params[P_MIN_WORDS]
    n_words = 0
    total = 0
    alpha = 0
    numbers = 0  # words with a digit and no letter (quality.alpha_words_ratio)
    for i in range(n_tok):
        s, e = tok_s[i], tok_e[i]
        alnum = True
        symbol = True
        has_alpha = False
        has_digit = False
        for k in range(s, e):
            f = flags[c[k]]
            if (f & F_WORD) == 0 or c[k] == 95:
                alnum = False
            if (f & F_PSC) == 0:
                symbol = False
            if (f & F_DIGIT) != 0:
                has_digit = True
            if (f & F_ALPHA) != 0:
                has_alpha = True
                if not symbol:
                    break  # a word with a letter, whatever the characters after this one
        if alnum or not symbol:
            n_words += 1
            total += e - s
        if has_alpha:
            alpha += 1
        elif has_digit:
            numbers += 1
    if params[P_MIN_WORDS] != 0 and n_words < params[P_MIN_WORDS]:
        return R_SHORT, float(n_words), params[P_MIN_WORDS]
    if params[P_MAX_WORDS] != 0 and n_words > params[P_MAX_WORDS]:
        return R_LONG, float(n_words), params[P_MAX_WORDS]
    mean = total / n_words if n_words else 0.0
    if params[P_MIN_AVG] != 0 and mean < params[P_MIN_AVG]:
        return R_AVG_LOW, mean, params[P_MIN_AVG]
    if params[P_MAX_AVG] != 0 and mean > params[P_MAX_AVG]:
        return R_AVG_HIGH, mean, params[P_MAX_AVG]
    if params[P_SYMBOL] != 0:
        # "#", "…" and str.count("...") (a run of r dots holds r // 3), in one pass without a
        # branch per character (it took three passes, one with a branch per character)
        n_hash = 0
        n_ell = 0
        dots3 = 0
        run = 0
        for k in range(lo, hi):
            x = c[k]
            dot = x == 46
            n_hash += x == 35
            n_ell += x == 0x2026
            dots3 += 0 if dot else run // 3
            run = run + 1 if dot else 0
        dots3 += run // 3
        hashes = n_hash / n_tok
        if hashes > params[P_SYMBOL]:
            return R_HASH, hashes, params[P_SYMBOL]
        ellipsis = (dots3 + n_ell) / n_tok
        if ellipsis > params[P_SYMBOL]:
            return R_ELL, ellipsis, params[P_SYMBOL]
    lines = 0
    bullets = 0
    end_ellipsis = 0
    p = lo
    while p < hi:
        k, nxt = _next_line(c, p, hi, flags)
        s, e = _strip(c, p, k, flags)
        if s < e and (c[s] == 0x2022 or c[s] == 45):
            bullets += 1
        if e - s >= 1 and (c[e - 1] == 0x2026 or (e - s >= 3 and c[e - 1] == 46
                                                   and c[e - 2] == 46 and c[e - 3] == 46)):
            end_ellipsis += 1
        lines += 1
        p = nxt
    if lines == 0:
        lines = 1
    if params[P_BULLET] != 0 and bullets / lines > params[P_BULLET]:
        return R_BULLET, bullets / lines, params[P_BULLET]
    if params[P_END_ELL] != 0 and end_ellipsis >= params[P_MIN_END_ELL] \
            and end_ellipsis / lines > params[P_END_ELL]:
        return R_END_ELL, end_ellipsis / lines, params[P_END_ELL]
    ratio = alpha / (n_words - numbers) if n_words > numbers else 0.0
    if params[P_ALPHA] != 0 and ratio < params[P_ALPHA]:
        return R_ALPHA, ratio, params[P_ALPHA]
    if params[P_MIN_STOP] != 0:
        found = 0
        for k in range(len(stop_l)):
            if stop_l[k] < 0:
                continue
            for i in range(n_tok):
                if tok_e[i] - tok_s[i] == stop_l[k]:
                    same = True
                    for j in range(stop_l[k]):
                        if c[tok_s[i] + j] != stop_w[k, j]:
                            same = False
                            break
                    if same:
                        found += 1
                        break
            if found >= params[P_MIN_STOP]:
                break  # enough: the rest cannot change the decision (each took a pass)
        if found < params[P_MIN_STOP]:
            return R_STOP, float(found), params[P_MIN_STOP]
    return -1, 0.0, 0.0


@numba.njit(cache=True, _nrt=False)
def _c4(c, lo, hi, out, o0, params, flags, lower, ci, words, aux, tok_s, tok_e, n_tok,
        line_s, line_e):  # pragma: no cover (compiled)
    """quality.c4_clean: (reason, value, threshold, start and end of the kept text in `out`,
    and its number of tokens, -1 if unknown). `tok_s`/`tok_e`: the input's n_tok tokens (n_tok
    -1: not known), left as they are; line_s/line_e are scratch. A kept line without a citation
    has the tokens of the input inside it (tokens never cross a line end, white space), so the
    kept text's count comes from them, and only lines that lost a citation are split again."""
    min_words, min_sentences = params[P_C4_MIN_WORDS], params[P_C4_MIN_SENTENCES]
    max_word = params[P_C4_MAX_WORD]
    w = o0
    first = True
    sentences = 0
    kept_tokens = 0
    total_chars = 0  # of every stripped line
    kept_chars = 0  # of the kept lines, citations removed
    t = 0  # the first input token not before the current line
    p = lo
    while p < hi:
        k, nxt = _next_line(c, p, hi, flags)
        s, e = _strip(c, p, k, flags)
        p = nxt
        total_chars += e - s
        # The line's words (str.split()) and its longest, without a branch per character: a
        # loop that jumped over each space and each word mispredicted at every word's end
        # (18 -> 12 ms per 3,000 documents).
        # Whether it holds a "[" (a citation may start there) and a "{", in the same pass.
        n_words = 0
        run = 0
        longest = 0
        brackets = 0
        curly = 0
        for i in range(s, e):
            x = c[i]
            inside = (flags[x] & F_SPACE) == 0
            n_words += inside and run == 0
            run = run + 1 if inside else 0
            longest = max(longest, run)
            brackets += x == 91
            curly += x == 123
        if max_word >= 0 and longest > max_word:
            continue
        w0 = w if first else w + 1
        q = w0
        cited = False
        if brackets == 0 or params[P_C4_CITATIONS] == 0:
            for i in range(e - s):  # nothing to remove: a copy
                out[w0 + i] = c[s + i]
            q = w0 + (e - s)
        else:
            i = s
            while i < e:
                end = _citation_end(c, i, e, flags, words)
                if end > 0:
                    i = end
                    cited = True
                    continue
                out[q] = c[i]
                q += 1
                i += 1
        w1 = q
        if params[P_C4_PUNCT] != 0:
            if w1 == w0:
                continue
            last = out[w1 - 1]
            ends = (last == 46 or last == 63 or last == 33 or last == 34
                    or (params[P_C4_APOSTROPHE] != 0 and last == 39))
            if not ends:  # quality.c4_line_ends: a mark before closing quotes and brackets
                j = w1 - 1
                while j >= w0 and (flags[out[j]] & F_CLOSING) != 0:
                    j -= 1
                ends = j >= w0 and (out[j] == 46 or out[j] == 63 or out[j] == 33)
            if not ends or (w1 - w0 >= 3 and out[w1 - 1] == 46 and out[w1 - 2] == 46
                            and out[w1 - 3] == 46):
                continue
        if n_words < min_words:
            continue
        phrases = _phrases(out, w0, w1, lower, words, aux)
        if params[P_C4_LOREM] != 0 and phrases & 1:
            return R_LOREM, 1.0, 0.0, 0, 0, -1
        if params[P_C4_JS] != 0 and phrases & 2:
            continue
        # the line's "{" are all in the kept text: a citation holds none
        if params[P_C4_CURLY] != 0 and curly > 0:
            return R_CURLY, 1.0, 0.0, 0, 0, -1
        if params[P_C4_POLICY] != 0 and phrases & 4:
            continue
        n_line = -1
        if sentences < min_sentences:
            n_line = _tokenize(out, w0, w1, flags, lower, ci, words, aux, line_s, line_e, 0)
            sentences += _sentences(out, line_s, line_e, n_line, flags)
        if n_tok >= 0:
            if cited:  # its chunks changed: split it
                if n_line < 0:
                    n_line = _tokenize(out, w0, w1, flags, lower, ci, words, aux, line_s,
                                       line_e, 0)
                kept_tokens += n_line
            else:
                while t < n_tok and tok_s[t] < s:
                    t += 1
                while t < n_tok and tok_s[t] < e:
                    kept_tokens += 1
                    t += 1
        if not first:
            out[w] = 10
        w = w1
        first = False
        kept_chars += w1 - w0
    if sentences < min_sentences:
        return R_SENTENCES, float(sentences), min_sentences, 0, 0, -1
    if kept_chars < params[P_C4_MIN_KEPT] * total_chars:
        return R_C4_KEPT, kept_chars / max(total_chars, 1), params[P_C4_MIN_KEPT], 0, 0, -1
    a, b = _strip(out, o0, w, flags)
    return -1, 0.0, 0.0, a, b, kept_tokens if n_tok >= 0 else -1


@numba.njit(cache=True, _nrt=False, inline="always")
def _strip_kept_nel(c, a, b, flags):  # pragma: no cover  str.strip(filters._STRIP) bounds
    while a < b and (flags[c[a]] & F_SPACE) != 0 and c[a] != 0x85:
        a += 1
    while b > a and (flags[c[b - 1]] & F_SPACE) != 0 and c[b - 1] != 0x85:
        b -= 1
    return a, b


@numba.njit(cache=True, _nrt=False, inline="always")
def _sentence_ends_inside(c, a, b, flags):  # pragma: no cover  quality.sentence_ends_inside
    n = 0
    i = a
    while i < b:
        x = c[i]
        i += 1
        if (flags[x] & F_TERMINAL) != 0 and i < b and (flags[c[i]] & F_TERMINAL) == 0:
            while i < b and (flags[c[i]] & F_CLOSING) != 0:
                i += 1
            if i < b and ((flags[c[i]] & F_SPACE) != 0 or x > 127):
                n += 1
    return n


@numba.njit(cache=True, _nrt=False)
def _fineweb(c, lo, hi, n_tok, params, flags, ps, pe, tgen, thash, tstart, tlen, gen,
             mask):  # pragma: no cover
    """quality.fineweb: (reason, value, threshold, generation)."""
    m = 0
    newlines = 0
    start = lo
    for k in range(lo, hi + 1):
        if k == hi or c[k] == 10:
            if k < hi:
                newlines += 1
            s, e = _strip(c, start, k, flags)
            if s < e:
                ps[m] = start
                pe[m] = k
                m += 1
            start = k + 1
    if m == 0:
        return R_FW_EMPTY, 0.0, 0.0, gen
    terminal = 0  # quality.line_punct_ratio: units (a run of bullets is one) that end
    units = 0
    short = 0
    last = False
    in_list = False
    for i in range(m):
        s, e = _strip(c, ps[i], pe[i], flags)
        j = pe[i] - 1
        while j > ps[i] and (flags[c[j]] & F_CLOSING) != 0:  # quality.ends_in_terminal
            j -= 1
        done = (flags[c[j]] & F_TERMINAL) != 0
        if done and c[j] == 46 and j > ps[i] and c[j - 1] == 46:  # quality.ends_in_ellipsis
            done = False
        if not done:
            done = _sentence_ends_inside(c, s, e, flags) >= 2
        bullet = c[s] == 0x2022 or c[s] == 45
        if bullet and in_list:
            terminal += int(done) - int(last)
        else:
            units += 1
            terminal += int(done)
        last = done
        in_list = bullet
        if pe[i] - ps[i] <= params[P_FW_SHORT_LEN]:
            short += 1
    ratio = terminal / units
    if ratio < params[P_FW_PUNCT] and not (ratio == 0 and params[P_FW_EXCLUDE_ZERO] != 0):
        return R_FW_PUNCT, ratio, params[P_FW_PUNCT], gen
    if short / m > params[P_FW_SHORT]:
        return R_FW_SHORT, short / m, params[P_FW_SHORT], gen
    gen += 1
    _, chars = _dup_pieces(c, ps, pe, m, tgen, thash, tstart, tlen, gen, mask)
    dup_ratio = chars / max(1, (hi - lo) - newlines)
    if dup_ratio > params[P_FW_DUP]:
        return R_FW_DUP, dup_ratio, params[P_FW_DUP], gen
    list_ratio = (m - 1) / max(1, n_tok)  # line breaks between non-empty lines
    if list_ratio > params[P_FW_NEWLINE]:
        return R_FW_LIST, list_ratio, params[P_FW_NEWLINE], gen
    return -1, 0.0, 0.0, gen


def _pii_triggers() -> np.ndarray:
    table = np.zeros(128, np.bool_)
    for ch in "0123456789@:":
        table[ord(ch)] = True
    return table


_PII_TRIGGERS = _pii_triggers()  # the ASCII characters a PII hint starts from


@numba.njit(cache=True, _nrt=False, inline="always")
def _is_hex(x):  # pragma: no cover (compiled)
    return (48 <= x <= 57) or (65 <= x <= 70) or (97 <= x <= 102)


@numba.njit(cache=True, _nrt=False, inline="always")
def _email_local(x):  # pragma: no cover  [A-Za-z0-9._%+-]
    return (48 <= x <= 57) or (65 <= x <= 90) or (97 <= x <= 122) or x == 46 or x == 95 \
        or x == 37 or x == 43 or x == 45


@numba.njit(cache=True, _nrt=False, inline="always")
def _email_domain(x):  # pragma: no cover  [A-Za-z0-9-]
    return (48 <= x <= 57) or (65 <= x <= 90) or (97 <= x <= 122) or x == 45


@numba.njit(cache=True, _nrt=False, inline="always")
def _international(c, a, hi, flags):  # pragma: no cover  \+(?:\d[ .-]?){7,14}\d needs 8 digits
    digits = 0
    k = a
    while k < hi and (flags[c[k]] & F_DIGIT) != 0:
        digits += 1
        if digits >= 8:
            return True
        k += 1
        if k < hi and (c[k] == 32 or c[k] == 46 or c[k] == 45):
            k += 1
    return False


@numba.njit(cache=True, _nrt=False)
def _pii_hints(c, lo, hi, flags):  # pragma: no cover
    """Bits of which PII patterns could match (1 e-mail, 2 IPv4, 4 IPv6, 8 phone): each a
    necessary condition of its regular expression in quality.py, so a text without the bit has
    no match and the expression need not run:
    - e-mail: an "@" after a character of the local part ([A-Za-z0-9._%+-]) and before one of
      the domain ([A-Za-z0-9-]);
    - IPv4: a run of digits and dots with three dots between digits;
    - IPv6: "::" before a hex digit, or a run of hex digits and colons with seven colons: the
      expression also matches times such as "10:30:45", but only an address that Python's
      ipaddress accepts is redacted, and such a match has one or the other (a "::" the
      expression takes in is followed by a hex digit);
    - phone: exactly three digits, one of " .-", exactly four digits and no word character
      after them (both North American forms end so: their groups are bounded by "(", ")", a
      space or a separator), or a "+" before eight digits with at most one of " .-" between
      two (the international form).
    It skips to the next digit, "@" or ":" and reads the context around it: a loop that
    updated the state of all four patterns at every character took 6 times as long (measured
    on the scale corpus); tests/test_quality_kernels.py holds that loop as the reference the
    bits must equal."""
    hints = 0
    dots = 0  # digit "." digit steps in the current run of digits and dots
    prev_end = lo  # the end of the previous run of digits
    k = lo
    while k < hi:
        x = c[k]
        if x < 128:
            if not _PII_TRIGGERS[x]:
                k += 1
                continue
        elif (flags[x] & F_DIGIT) == 0:
            k += 1
            continue
        if x == 64:  # "@"
            if k > lo and k + 1 < hi and _email_local(c[k - 1]) and _email_domain(c[k + 1]):
                hints |= 1
            k += 1
            continue
        if x == 58:  # ":": right after another, or the seventh of a run of hex and colons
            if k > lo and c[k - 1] == 58 and k + 1 < hi and _is_hex(c[k + 1]):
                hints |= 4
            else:  # (a "::" not before a hex digit may still be the seventh colon)
                colons = 1
                j = k - 1
                while j >= lo and colons < 7 and (_is_hex(c[j]) or c[j] == 58):
                    colons += c[j] == 58
                    j -= 1
                if colons >= 7:
                    hints |= 4
            k += 1
            continue
        a = k  # a run of digits c[a:b]
        while k < hi and (flags[c[k]] & F_DIGIT) != 0:
            k += 1
        b = k
        if a > lo and c[a - 1] == 43 and _international(c, a, hi, flags):  # "+"
            hints |= 8
        if b - a == 4 and a - 4 >= lo and (c[a - 1] == 32 or c[a - 1] == 46 or c[a - 1] == 45) \
                and (flags[c[a - 2]] & F_DIGIT) != 0 and (flags[c[a - 3]] & F_DIGIT) != 0 \
                and (flags[c[a - 4]] & F_DIGIT) != 0 \
                and (a - 5 < lo or (flags[c[a - 5]] & F_DIGIT) == 0) \
                and (b >= hi or (flags[c[b]] & F_WORD) == 0):
            hints |= 8
        j = a - 1
        while j >= prev_end and c[j] == 46:
            j -= 1
        if j >= prev_end:
            dots = 0  # something other than dots since the previous digits
        elif a - prev_end == 1 and a - 2 >= lo:
            dots += 1  # digit "." digit
            if dots >= 3:
                hints |= 2
        prev_end = b
    return hints


@numba.njit(cache=True, _nrt=False)
def _pii_hints_of(c, starts, ends, flags, out):  # pragma: no cover
    for d in range(len(starts)):
        out[d] = _pii_hints(c, starts[d], ends[d], flags)


def pii_hints(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """`_pii_hints` of each segment chars[starts[i]:ends[i]] (for texts the rule kernel did
    not judge)."""
    out = np.zeros(len(starts), dtype=np.int64)
    if len(starts):
        _pii_hints_of(chars, np.asarray(starts, np.int64), np.asarray(ends, np.int64),
                      char_flags(), out)
    return out


@numba.njit(cache=True)
def _removed_lines(c, starts, ends, o, o_starts, o_ends, flags):  # pragma: no cover
    """clean.removed_lines' one pass, per document c[starts:ends] (before C4) against
    o[o_starts:o_ends] (after): (count per document, whether every line after C4 was found
    whole (else the caller aligns with difflib, as there), each removed line's `at`, and the
    removed lines' code points, one "\n" after each)."""
    n_docs = len(starts)
    counts = np.zeros(n_docs, np.int64)
    whole = np.zeros(n_docs, np.bool_)
    at = np.empty(64, np.int64)
    buf = np.empty(1024, np.uint32)
    n = 0
    w = 0
    for d in range(n_docs):
        lo, hi, a, b = starts[d], ends[d], o_starts[d], o_ends[d]
        q = a  # the next line after C4 not yet found: o[q:r]
        r = q
        while r < b and o[r] != 10:
            r += 1
        done = False  # every line after C4 found
        p = lo
        first = n
        while p < hi:
            k, nxt = _next_line(c, p, hi, flags)
            s, e = _strip(c, p, k, flags)
            p = nxt
            if not done and r - q == e - s:
                same = True
                for i in range(e - s):
                    if c[s + i] != o[q + i]:
                        same = False
                        break
                if same:
                    if r >= b:
                        done = True
                    else:
                        q = r + 1
                        r = q
                        while r < b and o[r] != 10:
                            r += 1
                    continue
            if e > s:
                if n == len(at):
                    at = np.concatenate((at, np.empty(n, np.int64)))
                while w + (e - s) + 1 > len(buf):
                    buf = np.concatenate((buf, np.empty(len(buf), np.uint32)))
                at[n] = (b - a) if done else q - a
                n += 1
                buf[w:w + e - s] = c[s:e]
                w += e - s
                buf[w] = 10
                w += 1
        counts[d] = n - first
        whole[d] = done
    return counts, whole, at[:n].copy(), buf[:w].copy()


def removed_lines(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, out: np.ndarray,
                  out_starts: np.ndarray, out_ends: np.ndarray
                  ) -> list[list[list] | None]:
    """clean.removed_lines of each text chars[starts[i]:ends[i]] against its text after C4,
    out[out_starts[i]:out_ends[i]], without decoding either: None where a line after C4 is not
    one of the input's whole (a line C4 rewrote), which needs clean.removed_lines' alignment."""
    if not len(starts):
        return []
    counts, whole, at, buf = _removed_lines(
        chars, np.asarray(starts, np.int64), np.asarray(ends, np.int64), out,
        np.asarray(out_starts, np.int64), np.asarray(out_ends, np.int64), char_flags())
    lines = decode(buf, 0, len(buf)).split("\n")
    at_ = at.tolist()
    result: list[list[list] | None] = []
    k = 0
    for m, ok in zip(counts.tolist(), whole.tolist(), strict=True):
        result.append([[at_[i], lines[i]] for i in range(k, k + m)] if ok else None)
        k += m
    return result


@numba.njit(cache=True)
def _judge(chars, starts, ends, doc_list, rule_lists, params, top, n_top, dup, n_dup, stop_w,
           stop_l,
           flags, lower, ci, words, aux, out, out_lo, out_hi, reasons, values,
           thresholds, hints, lines_removed, given_lo, given_hi, given_s,
           given_e):  # pragma: no cover
    n_docs = len(starts)
    longest = 1
    for d in range(n_docs):
        longest = max(longest, ends[d] - starts[d] + 2)
    tok_s = np.empty(longest, np.int64)
    tok_e = np.empty(longest, np.int64)
    line_s = np.empty(longest, np.int64)  # C4's scratch, so the document's tokens stay
    line_e = np.empty(longest, np.int64)
    lens = np.empty(longest, np.int64)
    ids = np.empty(longest, np.uint32)
    ps = np.empty(longest, np.int64)
    pe = np.empty(longest, np.int64)
    size = 1
    while size < 2 * longest:
        size *= 2
    mask = size - 1
    tgen = np.zeros(size, np.int64)
    thash = np.empty(size, np.uint64)
    tstart = np.empty(size, np.int64)
    tlen = np.empty(size, np.int64)
    tval = np.empty(size, np.int64)
    tfirst = np.empty(size, np.int64)
    known = np.empty(34, np.int64)  # bounds on the top n-gram counts (_gopher_repetition)
    state = np.empty(longest, np.uint64)  # its n-gram hashes (_grams)
    shared = np.empty(longest, np.bool_)  # its repeated n-grams' positions (_shared_grams)
    gen = 0
    for d in range(n_docs):
        if doc_list[d] < 0:
            continue  # judged already (no rules, or dropped before them)
        lo, hi = starts[d], ends[d]
        cur = chars
        clo, chi = lo, hi
        in_out = False
        n_tok = -1
        positions = False
        interned = False
        reason = -1
        value = 0.0
        threshold = 0.0
        rules = rule_lists[doc_list[d]]
        for r in rules:
            if r < 0:
                break
            if r == 2:
                reason, value, threshold, a, b, kept = _c4(
                    cur, clo, chi, out, lo, params, flags, lower, ci, words, aux, tok_s, tok_e,
                    n_tok if positions else -1, line_s, line_e)
                if reason >= 0:
                    break
                cur = out
                clo, chi = a, b
                in_out = True
                # The positions are the input's; the count is the kept text's (FineWeb needs
                # only the count), when C4 could tell it.
                positions = False
                n_tok = kept
                interned = False
                continue
            if n_tok < 0 or (r != 3 and not positions):
                if given_lo[d] >= 0 and not in_out:  # a splitter's words, relative to lo
                    n_tok = given_hi[d] - given_lo[d]
                    for i in range(n_tok):
                        tok_s[i] = lo + given_s[given_lo[d] + i]
                        tok_e[i] = lo + given_e[given_lo[d] + i]
                else:
                    n_tok = _tokenize(cur, clo, chi, flags, lower, ci, words, aux, tok_s,
                                      tok_e, 0)
                for i in range(n_tok):
                    lens[i] = tok_e[i] - tok_s[i]
                positions = True
            if r == 0:
                if not interned:
                    gen += 1
                    _intern(cur, tok_s, tok_e, n_tok, ids, tgen, thash, tstart, tlen, tval, gen,
                            mask)
                    interned = True
                reason, value, threshold, gen = _gopher_repetition(
                    cur, clo, chi, ids, lens, n_tok, params, top, n_top, dup, n_dup, flags, ps,
                    pe, tgen, thash, tstart, tlen, tval, tfirst, gen, mask, known, state,
                    shared)
            elif r == 1:
                reason, value, threshold = _gopher_quality(cur, clo, chi, tok_s, tok_e, n_tok,
                                                           params, stop_w, stop_l, flags)
            else:
                reason, value, threshold, gen = _fineweb(cur, clo, chi, n_tok, params, flags,
                                                         ps, pe, tgen, thash, tstart, tlen, gen,
                                                         mask)
            if reason >= 0:
                break
        reasons[d] = reason
        values[d] = value
        thresholds[d] = threshold
        if reason < 0:
            if in_out:
                out_lo[d], out_hi[d] = clo, chi
                # while both texts are in the cache (a pass over the batch after it cost 2%
                # of the clean stage)
                lines_removed[d] = _count(chars, lo, hi, 10) - _count(out, clo, chi, 10)
            hints[d] = _pii_hints(cur, clo, chi, flags)


@dataclass
class Judgement:
    reasons: list[str | None]  # None: kept (or not judged)
    out: np.ndarray  # code points: the text after C4's line removal, where it ran and kept
    out_starts: np.ndarray  # int64: where a document's text after C4 is in `out` (-1: as input)
    out_ends: np.ndarray
    values: np.ndarray  # float64: the value of the statistic that failed
    thresholds: np.ndarray  # float64: what it was compared with
    pii_hints: np.ndarray  # int: 1 e-mail, 2 IPv4, 4 IPv6, 8 phone may occur in the kept text
    lines_removed: np.ndarray  # int64: line breaks C4 took out of a kept text (0 elsewhere)


class RuleKernel:
    """The quality rule sets of a CleanConfig (its thresholds), compiled. `judge` takes texts as
    code point segments, the rule orders in use (one per source) and, per text, the index of its
    order (-1: not judged)."""

    def __init__(self, settings: Any) -> None:
        self.p = parameters(settings)
        self.flags, self.lower, self.ci = char_flags(), lower_table(), ignorecase_table()

    @staticmethod
    def rule_matrix(rule_lists: Sequence[Sequence[str]]) -> np.ndarray:
        width = max([len(r) for r in rule_lists] + [1])
        matrix = np.full((max(len(rule_lists), 1), width), -1, dtype=np.int64)
        for i, rules in enumerate(rule_lists):
            for j, name in enumerate(rules):
                if name not in RULE_CODES:
                    raise ValueError(f"unknown quality rule set {name!r}; known: "
                                     f"{tuple(RULE_CODES)}")
                matrix[i, j] = RULE_CODES[name]
        return matrix

    def judge_segments(self, chars: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                       rule_lists: Sequence[Sequence[str]], lists: np.ndarray,
                       tokens: Sequence[tuple[np.ndarray, np.ndarray] | None] | None = None
                       ) -> Judgement:
        """`tokens`, where given: per document, its words as (starts, ends) relative to its
        segment (a splitter's, for languages written without spaces), or None for the
        kernel's own `quality.words`; the given words stand for the input text only (a rule
        order with C4 before the others re-splits C4's output with `quality.words`)."""
        n = len(starts)
        given_lo = np.full(n, -1, dtype=np.int64)
        given_hi = np.full(n, -1, dtype=np.int64)
        flat_s: list[np.ndarray] = [np.zeros(1, np.int64)]
        flat_e: list[np.ndarray] = [np.zeros(1, np.int64)]
        size = 1
        for d, spans in enumerate(tokens or ()):
            if spans is None:
                continue
            given_lo[d] = size
            flat_s.append(spans[0])
            flat_e.append(spans[1])
            size += len(spans[0])
            given_hi[d] = size
        given_s = np.concatenate(flat_s).astype(np.int64, copy=False)
        given_e = np.concatenate(flat_e).astype(np.int64, copy=False)
        out = np.empty(max(len(chars), 1), dtype=np.uint32)
        out_lo = np.full(n, -1, dtype=np.int64)
        out_hi = np.full(n, -1, dtype=np.int64)
        reasons = np.full(n, -1, dtype=np.int64)
        values = np.zeros(n, dtype=np.float64)
        thresholds = np.zeros(n, dtype=np.float64)
        hints = np.zeros(n, dtype=np.int64)
        lines_removed = np.zeros(n, dtype=np.int64)
        p = self.p
        if n:
            _judge(chars, np.asarray(starts, np.int64), np.asarray(ends, np.int64),
                   np.asarray(lists, dtype=np.int64), self.rule_matrix(rule_lists),
                   p["params"], p["top"], p["n_top"], p["dup"], p["n_dup"], p["stop_words"],
                   p["stop_lengths"], self.flags, self.lower, self.ci, WORDS, AUX, out,
                   out_lo, out_hi, reasons, values, thresholds, hints, lines_removed,
                   given_lo, given_hi, given_s, given_e)
        return Judgement([REASONS[r] if r >= 0 else None for r in reasons.tolist()], out,
                         out_lo, out_hi, values, thresholds, hints, lines_removed)

    def judge(self, texts: Sequence[str], rules: Sequence[str]) -> tuple[list[str | None],
                                                                          list[str]]:
        """Python strings, one rule order for all: (reasons, texts after C4), as
        `filters.apply_quality` gives them (for a dropped text, the input)."""
        chars, offsets = encode(texts)
        j = self.judge_segments(chars, offsets[:-1], offsets[1:], [rules],
                                np.zeros(len(texts), np.int64))
        out = [decode(j.out, a, b) if a >= 0 else t
               for t, a, b in zip(texts, j.out_starts.tolist(), j.out_ends.tolist(),
                                  strict=True)]
        return j.reasons, out


# ---- text in and out: UTF-8 (Arrow's strings) <-> code points, and normalisation ---------------

@numba.njit(cache=True, _nrt=False)
def _utf8_decode(data, offsets, out, out_offsets):  # pragma: no cover
    """Valid UTF-8 (Arrow's strings are) -> code points, one pass: `out` holds at least one
    per byte; out_offsets[d] is where string d starts, out_offsets[-1] where the last ends."""
    w = 0
    for d in range(len(offsets) - 1):
        out_offsets[d] = w
        k = offsets[d]
        end = offsets[d + 1]
        while k < end:
            b0 = np.uint32(data[k])
            if b0 < 0x80:
                out[w] = b0
                k += 1
            elif b0 < 0xE0:
                out[w] = ((b0 & 0x1F) << 6) | (np.uint32(data[k + 1]) & 0x3F)
                k += 2
            elif b0 < 0xF0:
                out[w] = (((b0 & 0x0F) << 12) | ((np.uint32(data[k + 1]) & 0x3F) << 6)
                          | (np.uint32(data[k + 2]) & 0x3F))
                k += 3
            else:
                out[w] = (((b0 & 0x07) << 18) | ((np.uint32(data[k + 1]) & 0x3F) << 12)
                          | ((np.uint32(data[k + 2]) & 0x3F) << 6)
                          | (np.uint32(data[k + 3]) & 0x3F))
                k += 4
            w += 1
    out_offsets[len(offsets) - 1] = w


def utf8_buffers(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """A pyarrow string array (no nulls) -> its UTF-8 bytes and int64 offsets (no copy of the
    bytes)."""
    import pyarrow as pa

    array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
    if array.null_count:
        raise ValueError("text column has nulls")
    offsets_dtype = np.int64 if pa.types.is_large_string(array.type) else np.int32
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=offsets_dtype)[
        array.offset: array.offset + len(array) + 1].astype(np.int64)
    data = (np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None and data_buf.size
            else np.zeros(1, np.uint8))
    return data, offsets


def decode_utf8(array: Any) -> tuple[np.ndarray, np.ndarray]:
    """A pyarrow string array (no nulls) -> code points and int64 offsets, no Python strings."""
    data, offsets = utf8_buffers(array)
    # One pass into room for a code point per byte (as many as there are code points in
    # ASCII text): a count pass first cost as much as the decoding.
    out = np.empty(max(int(offsets[-1] - offsets[0]), 1), dtype=np.uint32)
    out_offsets = np.empty(len(offsets), dtype=np.int64)
    _utf8_decode(data, offsets, out, out_offsets)
    return out[: max(int(out_offsets[-1]), 1)], out_offsets


@numba.njit(cache=True, _nrt=False)
def _utf8_encode(c, starts, ends, out, out_offsets):  # pragma: no cover
    """Segments -> UTF-8, one pass: `out` holds at least 4 bytes per code point;
    out_offsets[d] is where segment d starts, out_offsets[-1] where the last ends."""
    w = 0
    for d in range(len(starts)):
        out_offsets[d] = w
        for k in range(starts[d], ends[d]):
            x = c[k]
            if x < 0x80:
                out[w] = x
                w += 1
            elif x < 0x800:
                out[w] = 0xC0 | (x >> 6)
                out[w + 1] = 0x80 | (x & 0x3F)
                w += 2
            elif x < 0x10000:
                out[w] = 0xE0 | (x >> 12)
                out[w + 1] = 0x80 | ((x >> 6) & 0x3F)
                out[w + 2] = 0x80 | (x & 0x3F)
                w += 3
            else:
                out[w] = 0xF0 | (x >> 18)
                out[w + 1] = 0x80 | ((x >> 12) & 0x3F)
                out[w + 2] = 0x80 | ((x >> 6) & 0x3F)
                out[w + 3] = 0x80 | (x & 0x3F)
                w += 4
    out_offsets[len(starts)] = w


def utf8_bytes(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Segments chars[starts[i]:ends[i]] -> their UTF-8 as (data, offsets: int64, one more than
    the segments), as str.encode("utf-8", "surrogatepass") gives it. One pass into room for 4
    bytes per code point (pages never written are never touched): a size pass first cost as
    much as the encoding."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    room = 4 * int(np.maximum(ends - starts, 0).sum()) if len(starts) else 0
    data = np.empty(max(room, 1), dtype=np.uint8)
    offsets = np.empty(len(starts) + 1, dtype=np.int64)
    _utf8_encode(chars, starts, ends, data, offsets)
    return data[: max(int(offsets[-1]), 1)], offsets


def encode_utf8(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> Any:
    """Segments chars[starts[i]:ends[i]] -> a pyarrow string array, no Python strings."""
    import pyarrow as pa

    data, offsets = utf8_bytes(chars, starts, ends)
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.string(), len(starts),
                                     [None, pa.py_buffer(offsets.astype(np.int32)),
                                      pa.py_buffer(data[: offsets[-1]])])
    return pa.Array.from_buffers(pa.large_string(), len(starts),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(data[: offsets[-1]])])


@numba.njit(cache=True, _nrt=False)
def _prepare(c, offsets, flags, out, out_lo, out_hi, finish):  # pragma: no cover
    """filters.prepare of every text: c[offsets[d]:offsets[d+1]] -> out[out_lo[d]:out_hi[d]]
    (at most as long, written at offsets[d]); finish[d]: filters.finish may change the result
    (it holds a mojibake hint, a C1 character or one NFC may change).
    One pass over the text: line ends (\r\n and \r as \n) and control characters dropped
    as each character is read, then per line runs of filters._SPACES to one space and
    str.strip(filters._STRIP); lines joined by newlines, three or more newlines to two; the
    whole stripped.
    (A first pass into a scratch copy for the line ends and controls took a third of it.)"""
    for d in range(len(offsets) - 1):
        lo, hi = offsets[d], offsets[d + 1]
        w = lo
        newlines = 0
        line = w  # where the current line starts in out
        pending = False  # a run of spaces to write as one before the next character
        k = lo
        while True:
            at_end = k >= hi
            if not at_end:
                x = c[k]
                if x == 13:
                    k += 2 if (k + 1 < hi and c[k + 1] == 10) else 1
                    x = 10
                else:
                    k += 1
                    if (flags[x] & F_CONTROL) != 0:
                        continue
                if x != 10:
                    if (flags[x] & F_COLLAPSE) != 0:
                        pending = True
                        continue
                    if pending:
                        out[w] = 32
                        w += 1
                        pending = False
                    out[w] = x
                    w += 1
                    continue
            # the line [line, w) ends: at a line end, or at the end of the text
            if pending:
                out[w] = 32
                w += 1
                pending = False
            a, b = _strip_kept_nel(out, line, w, flags)
            if a > line:
                for q in range(a, b):
                    out[line + q - a] = out[q]
            w = line + (b - a)
            if b > a:
                newlines = 0
            if at_end:
                break
            if newlines < 2:
                out[w] = 10
                w += 1
            newlines += 1
            line = w
        a, b = _strip_kept_nel(out, lo, w, flags)
        out_lo[d], out_hi[d] = a, b
        needs = False
        lead = False
        for q in range(a, b):
            x = out[q]
            if x < 128:
                lead = False
                continue
            f = flags[x]
            if (f & F_FINISH) != 0 or (lead and (f & F_MOJI_CONT) != 0):
                needs = True
                break
            lead = (f & F_MOJI_LEAD) != 0
        finish[d] = needs


def prepare_batch(chars: np.ndarray, offsets: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """filters.prepare of every text of (chars, offsets): (out, starts, ends, finish), where
    finish[d] is False only if filters.finish leaves text d as it is (and False for ASCII)."""
    n = len(offsets) - 1
    out = np.empty(max(len(chars), 1), dtype=np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    ends = np.zeros(n, dtype=np.int64)
    finish = np.zeros(n, dtype=np.bool_)
    if n:
        _prepare(chars, offsets, char_flags(), out, starts, ends, finish)
    return out, starts, ends, finish
