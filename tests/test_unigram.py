"""The compiled unigram encoder (tokenizer/unigram.py) gives SentencePiece's ids exactly, for the
models Sieve trains, on real text and on generated Unicode; other models are left to
SentencePiece."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import filters
from pipelines.recipe import TokenizerConfig
from tokenizer import spm
from tokenizer.unigram import USER_DEFINED, UnigramEncoder, with_eos


@pytest.fixture(scope="module")
def texts(corpora) -> list[str]:
    out = [p.read_text(encoding="utf-8").replace("<br />", "\n") for p in sorted(
        (corpora / "imdb_aclImdb" / "aclImdb" / "test" / "pos").glob("*.txt"))[:600]]
    with open(corpora / "chinese_web_ccnet" / "cleared1.jsonl", encoding="utf-8") as fh:
        out += [json.loads(line)["raw_content"] for line in fh][:40]
    truth = json.loads((corpora / "html_extraction_scrapinghub" / "ground-truth.json")
                       .read_text(encoding="utf-8"))
    out += [v["articleBody"] for _, v in sorted(truth.items())][:60]
    out += ["", " ", "  two  spaces ", "tab\there", "1234567 digits 3.14", "😀 emoji", "<mask>",
            "a b c <tag> a b", "\n\nnewlines\n", "ünïcödé", "x" * 3000]
    return [filters.normalize(t) if i < 700 else t for i, t in enumerate(out)]


def model(tmp_path_factory, texts, **cfg) -> str:
    lines = [line for t in texts[:600] for line in t.split("\n") if line.strip()]
    config = TokenizerConfig(vocab_size=cfg.pop("vocab_size", 1500), **cfg)
    path = tmp_path_factory.mktemp("spm") / "m.model"
    path.write_bytes(spm.train_model(lines, config))
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory, texts) -> dict[str, str]:
    return {
        "default": model(tmp_path_factory, texts, special_tokens=["<mask>"]),
        "no byte fallback": model(tmp_path_factory, texts, byte_fallback=False,
                                  character_coverage=0.98),
        "user symbols": model(tmp_path_factory, texts, user_defined_symbols=["<tag>", "a b"]),
    }


def ids_of(encoder: UnigramEncoder, texts: list[str]) -> list[list[int]]:
    flat, lengths = encoder.encode(pa.array(texts, pa.string()))
    offsets = np.r_[0, np.cumsum(lengths)]
    return [flat[offsets[i]:offsets[i + 1]].tolist() for i in range(len(texts))]


@pytest.mark.parametrize("name", ["default", "no byte fallback", "user symbols"])
def test_ids_equal_sentencepiece_on_real_text(models, texts, name):
    encoder = UnigramEncoder.load(models[name])
    assert encoder is not None
    assert ids_of(encoder, texts) == spm.load(models[name]).encode(texts)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=60), min_size=1, max_size=5))
def test_ids_equal_sentencepiece_on_generated_text(models, texts):
    for name in models:
        encoder = UnigramEncoder.load(models[name])
        assert ids_of(encoder, texts) == spm.load(models[name]).encode(texts), name


def test_models_it_does_not_cover_are_left_to_sentencepiece(tmp_path_factory, texts):
    assert UnigramEncoder.load(model(tmp_path_factory, texts, model_type="bpe")) is None
    assert UnigramEncoder.load(model(tmp_path_factory, texts,
                                     normalization_rule_name="nmt_nfkc")) is None


def test_documents_are_followed_by_eos():
    ids = np.array([5, 6, 7, 8, 9], np.uint32)
    out = with_eos(ids, np.array([0, 3]), np.array([2, 2]), 2)
    assert out.tolist() == [5, 6, 2, 8, 9, 2]


def test_double_array_gives_each_node_the_lowest_free_base(models):
    # The compiled placement jumps over taken slots; a direct reading of the rule (every base
    # from the lowest tried, breadth first) must give the same arrays.
    import sentencepiece

    from tokenizer.unigram import _double_array

    sp = sentencepiece.SentencePieceProcessor(model_file=models["default"])
    pieces = [(sp.id_to_piece(i).encode(), i) for i in range(sp.get_piece_size())]
    base, check, value = _double_array(pieces)
    children: dict[int, dict[int, int]] = {0: {}}
    ends = {}
    for piece, pid in pieces:
        node = 0
        for byte in piece:
            node = children[node].setdefault(byte, len(children))
            children.setdefault(node, {})
        ends[node] = pid
    ref_base, ref_check = {}, {0: 0}
    slot = {0: 0}
    queue = [0]
    for node in queue:
        kids = sorted(children[node])
        if not kids:
            continue
        b = 1
        while any(b + c in ref_check for c in kids):
            b += 1
        ref_base[slot[node]] = b
        for c in kids:
            ref_check[b + c] = slot[node]
            slot[children[node][c]] = b + c
            queue.append(children[node][c])
    assert {s: int(base[s]) for s in ref_base} == ref_base
    assert {int(t): int(check[t]) for t in np.flatnonzero(check >= 0)} == ref_check
    assert all(value[slot[n]] == pid for n, pid in ends.items())


def test_words_are_searched_once_and_looked_up_after(models, texts):
    # The trained models have no piece with a "▁" inside: each word is searched alone, and a
    # word seen before takes its remembered pieces; the same ids as searching every word.
    spm_ids = spm.load(models["default"]).encode(texts)
    encoder = UnigramEncoder.load(models["default"])
    assert encoder.segmented
    assert ids_of(encoder, texts) == spm_ids
    held = int(encoder.memo["state"][3])
    assert held > 1000  # the distinct words of the texts (up to MEMO_BYTES long)
    assert ids_of(encoder, texts) == spm_ids  # now nearly every word is looked up
    assert int(encoder.memo["state"][3]) == held
    searching = UnigramEncoder.load(models["default"])
    searching._memo()["state"][4] = 1  # never take a remembered word
    assert ids_of(searching, texts) == spm_ids


def test_a_piece_with_a_space_inside_is_searched_over_the_whole_text(models, tmp_path):
    # A piece holding "▁" after its start can cross a word bound: then one search per text.
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(models["default"]).read_bytes())
    piece = proto.pieces.add()
    piece.piece, piece.score, piece.type = "a\u2581b", 0.0, USER_DEFINED
    path = tmp_path / "spaced.model"
    path.write_bytes(proto.SerializeToString())
    encoder = UnigramEncoder.load(str(path))
    assert not encoder.segmented
    texts = ["a b c a b", "the a bird a b", "xa by"]
    ids = ids_of(encoder, texts)
    assert ids == spm.load(str(path)).encode(texts)
    assert len(proto.pieces) - 1 in ids[0]  # the piece is used


def test_near_ties_are_settled_as_sentencepiece_settles_them(models, tmp_path):
    # SentencePiece keeps each node's best score in float, so whether "▁th" + "e" beats "▁the"
    # when the two differ by 1e-4 depends on the score of the text before the word (its float
    # rounding). A remembered word whose choices are that close is searched again in place.
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(Path(models["default"]).read_bytes())
    index = {p.piece: i for i, p in enumerate(proto.pieces)}
    word, left, right = next((w, w[:k], w[k:]) for w in index if w.startswith("\u2581")
                             and len(w) >= 4 for k in range(2, len(w))
                             if w[:k] in index and w[k:] in index)
    proto.pieces[index[word]].score = -4.0
    proto.pieces[index[left]].score = -1.9998
    proto.pieces[index[right]].score = -2.0001
    path = tmp_path / "ties.model"
    path.write_bytes(proto.SerializeToString())
    text = [" ".join([word[1:]] * 3000)]
    expected = spm.load(str(path)).encode(text)
    assert ids_of(UnigramEncoder.load(str(path)), text) == expected
    careless = UnigramEncoder.load(str(path))
    careless._memo()["state"][4] = 2  # take remembered pieces however close their choices
    assert ids_of(careless, text) != expected  # so the check above is what keeps them equal


def _boundary_margins():
    """Margins at and around each threshold 2 (n + 2) 2**(e - 24) that `_safe` compares with."""
    return st.builds(lambda n, e, nudge: (float(np.float64(2.0 * (n + 2)) * 2.0 ** (e - 24)
                                                 * (1.0 + nudge)), n),
                     st.integers(1, 64), st.integers(5, 30),
                     st.sampled_from([0.0, 2.0**-52, -(2.0**-53), 1e-9, -1e-9, 0.5, -0.4]))


@settings(max_examples=500, deadline=None)
@given(st.one_of(_boundary_margins(),
                 st.tuples(st.one_of(st.floats(0, 1e6), st.sampled_from([0.0, -1.0, np.inf])),
                           st.integers(1, 64))),
       st.floats(0, 1e5), st.floats(-1e6, 1e6, width=32))
def test_safe_limit_decides_as_safe(margin_n, largest, prefix):
    """The memo keeps `_safe_limit(margin)` instead of the margin: comparing the sum with it
    decides as `_safe` does, at the thresholds' edges too."""
    from tokenizer.unigram import _safe, _safe_limit

    margin, n = margin_n
    # prefixes whose sum lands next to a power of two, where frexp's exponent changes
    for p in (np.float32(prefix), np.float32(2.0 ** 12 - largest - 64.0),
              np.float32(2.0 ** 17 - largest - 64.0)):
        p = np.float32(abs(p))
        total = float(p) + largest + 64.0  # in double, as the kernel adds a float32 prefix
        assert _safe(margin, largest, p, n) == (total < _safe_limit(margin, n)), (margin, n, p)
