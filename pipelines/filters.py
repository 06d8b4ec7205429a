"""Cleaning rules: normalisation and document filters, each a pure function.

Contract: `normalize(text) -> text`; every rule is `(doc, cfg) -> reason | None`, where the
reason is the exact string counted as `dropped:<reason>` and written to the rejected output.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from pipelines.schema import Document

# C0/C1 control characters except tab and newline, plus zero-width/bidi formatting marks.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u202a-\u202e\ufeff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    """NFC, control characters removed, runs of spaces collapsed, lines stripped, \\r\\n -> \\n."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub("", text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def too_short(doc: Document, min_chars: int) -> str | None:
    return "too_short" if len(doc.text) < min_chars else None


@functools.lru_cache(maxsize=1)
def _language_identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) from py3langid, on the first 2,000 characters."""
    language, score = _language_identifier().classify(text[:2000])
    return language, round(float(score), 4)


def wrong_language(doc: Document, languages: list[str], min_score: float) -> str | None:
    """Needs meta.language / meta.language_score (set by the clean stage); [] keeps all."""
    if not languages:
        return None
    if doc.meta.get("language") not in languages or doc.meta.get("language_score", 0) < min_score:
        return "language"
    return None
