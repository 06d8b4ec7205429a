"""Cleaning rules: each with a kept and a dropped example and its exact reason string."""

from pipelines import filters
from pipelines.schema import Document


def doc(text: str, **meta) -> Document:
    return Document(id="t/1", source="t", split="train", text=text, meta=meta)


def test_normalize_nfc_controls_and_whitespace():
    raw = "Cafe\u0301\x00 au  lait\r\n\r\n\r\n\r\nnext\u200b line \t "
    assert filters.normalize(raw) == "Café au lait\n\nnext line"


def test_too_short_keeps_long_enough_and_names_the_reason():
    assert filters.too_short(doc("x" * 32), 32) is None
    assert filters.too_short(doc("x" * 31), 32) == "too_short"


def test_language_is_identified_with_a_score():
    language, score = filters.identify_language(
        "The committee approved the budget for the new school building after a long debate.")
    assert language == "en" and 0.9 < score <= 1.0
    assert filters.identify_language("Der Ausschuss hat den Haushalt für das neue Schulgebäude "
                                     "nach langer Debatte genehmigt.")[0] == "de"


def test_wrong_language_drops_other_languages_and_low_scores():
    english = doc("text", language="en", language_score=0.99)
    assert filters.wrong_language(english, ["en"], 0.65) is None
    assert filters.wrong_language(doc("text", language="de", language_score=0.99), ["en"],
                                  0.65) == "language"
    assert filters.wrong_language(doc("text", language="en", language_score=0.4), ["en"],
                                  0.65) == "language"
    assert filters.wrong_language(doc("text", language="de", language_score=0.99), [], 0.65) is None


def test_normalize_is_idempotent_when_spacing_hides_mojibake():
    # Found by hypothesis: with the no-break space in front ftfy left "Ü¯" alone, and only a
    # second normalisation (after the space was stripped) repaired it.
    once = filters.normalize("\xa0Ü¯")
    assert once == "ܯ" and filters.normalize(once) == once
