"""Cleaning rules: normalisation and document filters, each a pure function.

Contract: `normalize(text, fix_mojibake) -> text`; every rule is `(doc, cfg) -> reason | None`,
where the reason is the exact string counted as `dropped:<reason>` and written to the rejected
output. `apply_quality(text, names, settings)` runs the web-text rule sets of `quality.py` in
the recipe's order. The clean stage (clean.py) is the only caller that sees Beam.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

from pipelines import quality
from pipelines.schema import Document

# C0 control characters except tab and newline, plus zero-width/bidi formatting marks; C1 control
# characters are seen to after the mojibake repair, which needs them ("â\x80\x99" is UTF-8's ’
# read as Latin-1): `_without_c1`.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b\u200e\u200f\u202a-\u202e\ufeff]")
_C1 = re.compile(r"[\x80-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# What `_spacing` strips from a line's ends: str.strip()'s whitespace (str.isspace) but U+0085,
# a C1 control that `finish` turns into the "…" it stands for (tests/test_quality.py holds it
# to str.isspace).
_STRIP = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006" \
    "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


# UTF-8 read as Latin-1 or Windows-1252: a lead byte (Â..ô) followed by what a continuation
# byte (0x80-0xBF) becomes in either code page. Text without such a pair is never handed to ftfy,
# which costs a millisecond per 3 KB even when there is nothing to fix.
_MOJIBAKE_LEAD = "[\u00c2-\u00f4]"
_MOJIBAKE_CONT = ("[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
                  "\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039"
                  "\u203a\u20ac\u2122]")
_MOJIBAKE_HINT = re.compile(_MOJIBAKE_LEAD + _MOJIBAKE_CONT)


@functools.lru_cache(maxsize=1)
def _ftfy_config():
    from ftfy import TextFixerConfig

    # Only the encoding repairs: quotes, ligatures, widths and HTML entities stay as written.
    return TextFixerConfig(unescape_html=False, uncurl_quotes=False, fix_latin_ligatures=False,
                           fix_character_width=False, normalization=None, explain=False)


def fix_mojibake(text: str) -> str:
    """Repair text decoded with the wrong code page (ftfy): "doesnâ€™t" -> "doesn’t", on the
    lines that hint at it. ftfy fixes a text line by line itself (`fix_text`'s segments end
    after each "\n"), so a line without a hint is left as it is, as a text without one is (no
    pair spans a line end). `finish` on the 1,185 hinted documents of 40k scale-corpus
    documents: 0.234 s against 0.350 s with their whole texts handed over (best of 5), the
    same results (and on all 5,000 aclImdb reviews). Only ftfy's other repairs on a hinted
    text's other lines are gone (a C1 control or U+2028 there: now as in a text without a
    hint)."""
    first = None if text.isascii() else _MOJIBAKE_HINT.search(text)
    if first is None:
        return text
    import ftfy

    config = _ftfy_config()
    out = []
    done = 0  # text[:done] is in out
    found: re.Match | None = first
    while found is not None:
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.start()) + 1 or len(text)
        out.append(text[done:start])
        out.append(ftfy.fix_text(text[start:end], config))
        done = end
        found = _MOJIBAKE_HINT.search(text, done)
    out.append(text[done:])
    return "".join(out)


def _without_c1(text: str) -> str:
    """C1 controls as the Windows-1252 characters they stand for (ftfy's `fix_c1_controls`).
    Text written in Windows-1252 and read as Latin-1 holds its dashes, quotes and ellipses as
    C1 code points: U+0096 for "–", U+0085 for "…" (139 of the 5,000 aclImdb reviews; they
    were deleted before clean VERSION 21). The five bytes Windows-1252 leaves undefined (0x81,
    0x8D, 0x8F, 0x90, 0x9D) stay controls and are removed."""
    if _C1.search(text) is None:
        return text
    from ftfy.fixes import fix_c1_controls

    return _C1.sub("", fix_c1_controls(text))


def normalize(text: str, mojibake: bool = True) -> str:
    """Control characters removed (C1 ones as the Windows-1252 characters they stand for),
    mojibake repaired (ftfy), NFC, runs of spaces collapsed, lines stripped, \\r\\n -> \\n."""
    return normalize_counted(text, mojibake)[0]


def normalize_counted(text: str, mojibake: bool = True) -> tuple[str, bool]:
    """`normalize`, and whether the mojibake repair changed the text."""
    return finish(prepare(text), mojibake)


def prepare(text: str) -> str:
    """The first half of `normalize`: line ends, control characters, spacing. Compiled for
    batches in `quality_kernels.prepare_batch`."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    # Spacing first as well as last: ftfy judges a string whole, so "\xa0Ü¯" stayed as it was
    # while "Ü¯" (the same after stripping) was repaired on a second pass (hypothesis found it).
    return _spacing(text)


def finish(text: str, mojibake: bool = True) -> tuple[str, bool]:
    """The second half of `normalize`, on a `prepare`d text: mojibake, C1 characters (as
    Windows-1252's), NFC, spacing again. An ASCII text comes back unchanged (nothing here
    applies to it)."""
    if text.isascii():
        return text, False
    prepared = text
    fixed = False
    bare = _without_c1(text)  # the C1 characters seen to, computed once
    if mojibake:
        repaired = fix_mojibake(text)
        if repaired == text:  # most texts: nothing to repair before the C1 step
            repaired = fix_mojibake(bare) if bare != text else text
            repaired_bare = bare if repaired == bare else _without_c1(repaired)
        else:
            if _C1.search(repaired):
                repaired = fix_mojibake(_without_c1(repaired))
            repaired_bare = _without_c1(repaired)
        # Counted only when it changed more than the C1 step below does anyway.
        fixed = repaired != text and repaired_bare != bare
        bare = repaired_bare
    text = unicodedata.normalize("NFC", bare)
    # _spacing is idempotent, so a text the steps above left alone needs no second pass.
    return (text if text == prepared else _spacing(text)), fixed


def _spacing(text: str) -> str:
    # _SPACES holds no line end, so one pass over the whole text is the pass per line.
    lines = [line.strip(_STRIP) for line in _SPACES.sub(" ", text).split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip(_STRIP)


def too_short(doc: Document, min_chars: int) -> str | None:
    return "too_short" if len(doc.text) < min_chars else None


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify_language_py3langid(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) from py3langid itself, on the first 2,000 characters: what
    `identify_language` computes with the same model compiled (pipelines/langid.py)."""
    language, score = _language_identifier().classify(text[:2000])
    return language, round(float(score), 4)


def identify_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) from py3langid's model, on the first 2,000 characters."""
    from pipelines import langid

    languages, scores = langid.identify([text])
    return languages[0], scores[0]


def wrong_language(doc: Document, languages: list[str], min_score: float) -> str | None:
    """Needs meta.language / meta.language_score (set by the clean stage); [] keeps all."""
    if not languages:
        return None
    if doc.meta.get("language") not in languages or doc.meta.get("language_score", 0) < min_score:
        return "language"
    return None


QUALITY_RULES = ("gopher_repetition", "gopher_quality", "c4", "fineweb")


def apply_quality(text: str, names: tuple[str, ...] | list[str], settings: Any,
                  tokenize: Any = None) -> tuple[str, str | None]:
    """Run the named rule sets in order; `settings` has one attribute per rule set (its
    thresholds). C4 removes lines, and the rules after it see the cleaned text. `tokenize`
    splits a text into words (default `quality.words`; `languages.words` per language).
    Returns (text, first drop reason or None)."""
    tokenize = tokenize or quality.words
    tokens: list[str] | None = None
    for name in names:
        if name == "c4":
            text, reason = quality.c4_clean(text, settings.c4)
            tokens = None
        else:
            if tokens is None:
                tokens = tokenize(text)
            if name == "gopher_repetition":
                reason = quality.gopher_repetition(text, tokens, settings.gopher_repetition)
            elif name == "gopher_quality":
                reason = quality.gopher_quality(text, tokens, settings.gopher_quality)
            elif name == "fineweb":
                reason = quality.fineweb(text, tokens, settings.fineweb)
            else:
                raise ValueError(f"unknown quality rule set {name!r}; known: {QUALITY_RULES}")
        if reason is not None:
            return text, reason
    return text, None
