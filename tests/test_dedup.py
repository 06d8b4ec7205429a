"""Dedup on real review text: MinHash equals datasketch, LSH removes near duplicates only for
kept documents, decontamination, evaluation splits untouched, incremental runs."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines import dedup
from pipelines.manifest import RunOptions, materialize
from pipelines.minhash import (
    _POSITION_MULTIPLIERS_64,
    MinHasher,
    detection_probability,
    encode,
    encode_array,
    exact_key,
    exact_keys,
    ngram_hashes64,
    space_table,
    word_hash64,
    word_table,
    words,
)
from pipelines.recipe import DedupConfig
from pipelines.schema import ARROW_SCHEMA, Document


@pytest.fixture(scope="module")
def reviews(corpora) -> list[str]:
    folder = corpora / "imdb_aclImdb" / "aclImdb" / "train" / "pos"
    texts = [p.read_text(encoding="utf-8").replace("<br />", " ")
             for p in sorted(folder.glob("*.txt"))[:400]]
    return [t for t in texts if len(words(t)) > 120][:60]


def jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(t):
        w = words(t)
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def write_docs(folder: Path, docs: list[Document]) -> Path:
    (folder / "docs").mkdir(parents=True)
    table = pa.Table.from_pylist([d.to_row() for d in docs], schema=ARROW_SCHEMA)
    pq.write_table(table, folder / "docs" / "part-00000-of-00001.parquet")
    (folder / "manifest.json").write_text(json.dumps({"key": folder.name}))
    return folder


def run_dedup(tmp_path: Path, docs: list[Document], name: str = "a", **cfg):
    src = write_docs(tmp_path / f"clean-{name}", docs)
    out = tmp_path / f"dedup-{name}"
    out.mkdir()
    config = DedupConfig(**cfg)
    counters = dedup.run(config, {"clean": src}, out, RunOptions())
    (out / "manifest.json").write_text(json.dumps({"config": config.model_dump(mode="json"),
                                                   "version": dedup.VERSION}))
    kept = {r["id"]: r for r in pq.read_table(out / "docs").to_pylist()}
    rejected = {r["id"]: r for r in pq.read_table(out / "rejected").to_pylist()}
    return counters, kept, rejected, out


def doc(i: str, text: str, split: str = "train", source: str = "web") -> Document:
    return Document(id=f"{source}/{i}", source=source, split=split, text=text)


def edit(text: str, every: int, word: str = "banana") -> str:
    tokens = text.split()
    return " ".join(word if k % every == 0 else t for k, t in enumerate(tokens))


def test_batched_signatures_equal_datasketch_minhash(reviews):
    hasher = MinHasher(num_perm=112, seed=42, ngram=5)
    sigs = hasher.signatures(reviews + ["", "too short"])
    for text, sig in zip(reviews + ["", "too short"], sigs, strict=True):
        assert np.array_equal(sig, hasher.datasketch_minhash(text).hashvalues)


def test_s_curve_of_fineweb_parameters():
    p = detection_probability(np.array([0.5, 0.75, 0.9]), bands=14, rows=8)
    # 1 - (1 - s^8)^14: 1 - (255/256)^14 at s = 0.5
    assert p == pytest.approx([1 - (255 / 256) ** 14, 0.77163, 0.99962], abs=5e-5)


def test_near_duplicate_is_removed_for_the_longer_original(reviews, tmp_path):
    original, other = reviews[0], reviews[1]
    near = edit(original, every=80)
    # Close enough that 14 x 8 bands find the pair almost surely (whatever the hash family):
    # at J = 0.76 they miss one pair in five.
    assert detection_probability(jaccard(original, near), bands=14, rows=8) > 0.99
    docs = [doc("orig", original), doc("near", near[: len(near) - 20]), doc("other", other)]
    counters, kept, rejected, out = run_dedup(tmp_path, docs, threshold=0.6)
    assert set(kept) == {"web/orig", "web/other"}
    assert rejected["web/near"]["reason"] == "duplicate_minhash"
    assert json.loads(rejected["web/near"]["meta"])["duplicate_of"] == "web/orig"
    assert (counters["in"], counters["out"], counters["dropped:duplicate_minhash"]) == (3, 2, 1)
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["clusters"] == 1 and clusters["size_histogram"] == {"2": 1}
    assert sorted(p.name for p in out.iterdir()) == [  # the scratch files are gone
        "clusters.json", "docs", "manifest.json", "rejected", "signatures"]
    assert clusters["largest"][0] == {"size": 2, "kept": "web/orig", "sample_removed": ["web/near"]}


def test_source_priority_beats_length(reviews, tmp_path):
    original = reviews[2]
    docs = [doc("long", original + " extra words here", source="web"),
            doc("short", original, source="wiki")]
    _, kept, rejected, _ = run_dedup(tmp_path, docs, source_priority=["wiki"], threshold=0.6)
    assert set(kept) == {"wiki/short"}
    assert json.loads(rejected["web/long"]["meta"])["duplicate_of"] == "wiki/short"


def test_a_chain_of_links_never_removes_content_without_a_kept_neighbour(reviews, tmp_path):
    pool = " ".join(reviews[3:12]).split()
    x, y, z, w, v = (pool[k * 80: (k + 1) * 80] for k in range(5))
    a, b, c = (" ".join(seg) for seg in (x + y + z, y + z + w, z + w + v))
    assert jaccard(a, b) > 0.45 and jaccard(b, c) > 0.45 and jaccard(a, c) < 0.2
    docs = [doc("a", a, source="s1"), doc("b", b, source="s2"), doc("c", c, source="s3")]
    _, kept, rejected, _ = run_dedup(tmp_path, docs, bands=50, rows=2, threshold=0.4,
                                     source_priority=["s1", "s2", "s3"])  # rank: a, b, c
    assert set(rejected) == {"s2/b"}
    assert json.loads(rejected["s2/b"]["meta"])["duplicate_of"] == "s1/a"
    assert set(kept) == {"s1/a", "s3/c"}  # C's only similar survivor would be B: C stays


def test_unverified_lsh_links_to_the_bucket_best(reviews, tmp_path):
    original = reviews[4]
    docs = [doc("orig", original), doc("copy", edit(original, every=60)[:-40])]
    counters, kept, _, _ = run_dedup(tmp_path, docs, verify=False)
    assert set(kept) == {"web/orig"} and "lsh_candidates_rejected_by_verification" not in counters


def test_decontamination_drops_training_text_that_quotes_a_test_document(reviews, tmp_path):
    test_text = reviews[5]
    quote = " ".join(test_text.split()[20:40])
    docs = [doc("t", test_text, split="test", source="imdb"),
            doc("q", reviews[6] + " As one critic wrote: " + quote, source="web"),
            doc("clean", reviews[7], source="web")]
    counters, kept, rejected, _ = run_dedup(tmp_path, docs)
    assert rejected["web/q"]["reason"] == "decontaminated"
    assert set(kept) == {"imdb/t", "web/clean"}
    assert counters["dropped:decontaminated"] == 1
    shows_matching_ngram(rejected["web/q"], test_text)


def shows_matching_ngram(row: dict, evaluation_text: str, n: int = 13) -> None:
    """The rejected row names the first n-gram it shares with the evaluation text: n words, in
    order, in both texts."""
    gram = json.loads(row["meta"])["matched_ngram"].split(" ")
    assert len(gram) == n
    for text in (row["text"], evaluation_text):
        tokens = words(text)
        assert any(tokens[i: i + n] == gram for i in range(len(tokens) - n + 1))
    # The first shared one: no earlier n-gram of the document is in the evaluation text.
    tokens, theirs = words(row["text"]), words(evaluation_text)
    grams = {tuple(theirs[i: i + n]) for i in range(len(theirs) - n + 1)}
    first = next(i for i in range(len(tokens)) if tuple(tokens[i: i + n]) in grams)
    assert tokens[first: first + n] == gram


def test_evaluation_splits_pass_through_untouched(reviews, tmp_path):
    docs = [doc("t1", reviews[8], split="test"), doc("t2", reviews[8], split="test"),
            doc("tr1", reviews[9]), doc("tr2", reviews[9])]
    counters, kept, rejected, _ = run_dedup(tmp_path, docs)
    assert set(kept) == {"web/t1", "web/t2", "web/tr1"}
    assert rejected["web/tr2"]["reason"] == "duplicate_exact"


def test_incremental_build_dedups_against_the_earlier_signatures(reviews, tmp_path):
    first = [doc("old1", reviews[10]), doc("old2", reviews[11])]
    _, kept1, _, out1 = run_dedup(tmp_path, first, name="first", threshold=0.6)
    assert set(kept1) == {"web/old1", "web/old2"}
    second = [doc("new-near", edit(reviews[10], every=50) + " and more words to be longer"),
              doc("new-unique", reviews[12])]
    counters, kept2, rejected2, out2 = run_dedup(tmp_path, second, name="second", threshold=0.6,
                                                 against=str(out1))
    assert set(kept2) == {"web/new-unique"}  # the longer new text still loses to the old one
    assert json.loads(rejected2["web/new-near"]["meta"])["duplicate_of"] == "web/old1"
    assert counters["in"] == 2
    ids = pq.read_table(out2 / "signatures").column("id").to_pylist()
    assert ids == ["web/new-unique"]  # the new index holds only what this build kept


def test_incremental_refuses_signatures_made_with_other_parameters(reviews, tmp_path):
    _, _, _, out1 = run_dedup(tmp_path, [doc("x", reviews[13])], name="first")
    with pytest.raises(ValueError, match="used bands=14, this recipe 20"):
        run_dedup(tmp_path, [doc("y", reviews[14])], name="second", bands=20,
                  against=str(out1))


def test_incremental_refuses_signatures_of_another_dedup_version(reviews, tmp_path):
    _, _, _, out1 = run_dedup(tmp_path, [doc("x", reviews[13])], name="first")
    manifest = json.loads((out1 / "manifest.json").read_text())
    (out1 / "manifest.json").write_text(json.dumps({**manifest, "version": 2}))
    with pytest.raises(ValueError, match=f"dedup version 2, this is {dedup.VERSION}: its word "
                       "hashes differ"):
        run_dedup(tmp_path, [doc("y", reviews[14])], name="second", against=str(out1))
    # Version 5 made the same signatures as this one (6 changed decontamination only).
    (out1 / "manifest.json").write_text(json.dumps({**manifest, "version": 5}))
    run_dedup(tmp_path, [doc("y", reviews[14])], name="third", against=str(out1))


def test_compiled_words_and_ngrams_equal_the_python_reference(reviews):
    texts = reviews[:10] + ["", "İstanbul ǅemal ﬁne Straße x_y 42 ½ ٣ 東京タワー", "a\x00b c\n\td",
                            "emoji 😀 between words🙂here", "  ", "one"]
    grams, offsets = ngram_hashes64(texts, 3)
    for k, text in enumerate(texts):
        hashes = [word_hash64(w) for w in words(text)]
        expected = [sum(hashes[i + j] * int(_POSITION_MULTIPLIERS_64[j]) for j in range(3))
                    % 2**64 for i in range(len(hashes) - 2)]
        assert grams[offsets[k]: offsets[k + 1]].tolist() == expected, text[:30]
    hasher = MinHasher(num_perm=64, seed=7, ngram=5)
    for text, sig in zip(texts, hasher.signatures(texts), strict=True):
        assert np.array_equal(sig, hasher.datasketch_minhash(text).hashvalues), text[:30]


def test_character_tables_match_python():
    every = [chr(c) for c in range(0x110000)]
    assert word_table().tolist() == [c.isalnum() or c == "_" for c in every]
    assert space_table().tolist() == [c.isspace() for c in every]


def _same_encoding(texts: list[str], lower: bool) -> None:
    want_chars, want_offsets = encode(texts, lower)
    for array in (pa.array(texts, pa.string()), pa.array(["x", *texts], pa.string())[1:],
                  pa.chunked_array([pa.array(texts[:2], pa.string()),
                                    pa.array(texts[2:], pa.string())]),
                  pa.array(texts, pa.large_string())):
        chars, offsets = encode_array(array, lower)
        assert np.array_equal(offsets, want_offsets)
        assert np.array_equal(chars, want_chars[: want_offsets[-1]])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.one_of(
    st.characters(blacklist_categories=("Cs",)),  # Arrow's strings are UTF-8: no surrogates
    st.sampled_from("ΣσςİIıAZaz \n")), max_size=30), max_size=8), st.booleans())
def test_compiled_encoding_equals_str_lower(texts, lower):
    # One compiled pass from Arrow's UTF-8; a text with a capital sigma through str.lower().
    _same_encoding(texts, lower)


def test_compiled_encoding_of_real_text_equals_str_lower(reviews, chinese_pages):
    texts = reviews[:20] + chinese_pages + ["ΟΔΥΣΣΕΥΣ ΚΑΙ ΣΙΣΥΦΟΣ", "İSTANBUL İzmir", "",
                                            "Ǆemal ﬁne STRASSE 😀 東京タワー ΣΑΣ"]
    for lower in (True, False):
        _same_encoding(texts, lower)


def test_compiled_exact_keys_equal_the_python_reference(reviews):
    texts = reviews[:10] + ["", "   ", "A  b\u3000c\n\nD ", "a b c d", "a\x00b", "İ\u2028x"]
    for lowercase in (True, False):
        keys = exact_keys(texts, lowercase)
        assert keys == [exact_key(t, lowercase) for t in texts]
    assert exact_key("A  b\u3000c\n\nD ") == exact_key("a b c d")  # normalised alike
    assert exact_key("A  b c d", lowercase=False) != exact_key("a b c d", lowercase=False)
    assert len(set(exact_keys(reviews))) == len(set(reviews))


def test_dedup_is_a_stage_with_a_manifest(reviews, tmp_path):
    src = write_docs(tmp_path / "clean", [doc("a", reviews[15])])
    from pipelines.manifest import StageOutput

    upstream = StageOutput("clean", "k", src, {"counters": {}}, cached=True)
    out = materialize(dedup, DedupConfig(), {"clean": upstream}, tmp_path / "root")
    assert out.counters["out"] == 1
    assert "signatures/part-00000-of-00001.parquet" in out.manifest["files"]  # the input's name


@pytest.fixture(scope="module")
def chinese_pages(corpora) -> list[str]:
    path = corpora / "chinese_web_ccnet" / "cleared1.jsonl"
    pages = [json.loads(line)["raw_content"] for line in path.read_text("utf-8").splitlines()]
    return [p for p in pages if 800 < len(p) < 6000][:12]


def test_chinese_and_japanese_shingles_are_their_words(chinese_pages):
    # A Chinese clause is one \w+ run; MinHash shingles use the splitter's words instead
    # (lower-cased; Latin words inside stay \w+ runs), in the compiled path and the reference.
    assert words("我们在北京使用Python。数学是研究数量的学科") == [
        "我们", "在", "北京", "使用", "python", "数学", "是", "研究", "数量", "的", "学科"]
    assert words("東京都に行く。テストです") == ["東京", "都", "に", "行く", "テスト", "です"]
    texts = chinese_pages[:4] + ["東京都に行く。テストです。" * 20,
                                 "ภาษาไทยเป็นภาษาที่สวยงาม " * 20,
                                 "한국어 문장을 단어로 나눕니다. " * 20,
                                 "Mixed English text 中文 " * 10]
    hasher = MinHasher(num_perm=64, seed=7, ngram=5)
    for text, sig in zip(texts, hasher.signatures(texts), strict=True):
        assert np.array_equal(sig, hasher.datasketch_minhash(text).hashvalues), text[:30]
    grams, offsets = ngram_hashes64(texts, 3)
    for k, text in enumerate(texts):
        hashes = [word_hash64(w) for w in words(text)]
        assert offsets[k + 1] - offsets[k] == max(len(hashes) - 2, 0)
    assert all(len(words(t)) > 200 for t in chinese_pages[:4])


def _edit_words(text: str, every: int, word: str = "香蕉") -> str:
    from pipelines import languages

    starts, ends = languages.word_spans(text, "zh")
    out, at = [], 0
    for k, (a, b) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        out += [text[at:a], word if k % every == 0 else text[a:b]]
        at = b
    return "".join(out) + text[at:]


def test_chinese_near_duplicate_is_removed_and_decontamination_sees_chinese_words(
        chinese_pages, tmp_path):
    original, other, quoted = chinese_pages[0], chinese_pages[1], chinese_pages[2]
    near = _edit_words(original, every=60)
    assert jaccard(original, near) > 0.8
    docs = [doc("orig", original), doc("near", near[:-10]), doc("other", other),
            doc("test", quoted[:400], split="test"),
            doc("quotes", other[:300] + quoted[100:250] + original[-200:])]
    counters, kept, rejected, _ = run_dedup(tmp_path, docs)
    assert rejected["web/near"]["reason"] == "duplicate_minhash"
    assert json.loads(rejected["web/near"]["meta"])["duplicate_of"] == "web/orig"
    assert rejected["web/quotes"]["reason"] == "decontaminated"
    shows_matching_ngram(rejected["web/quotes"], quoted[:400])
    assert set(kept) == {"web/orig", "web/other", "web/test"}
    assert counters["in"] == 5 and counters["out"] == 3


def link_groups_reference(groups: dedup.Groups, sigs: dict, cfg: DedupConfig) -> tuple[list, int]:
    """The vectorised form `dedup.link_groups` replaced: every (better, worse) pair of every
    bucket at once (s^2/2 pairs per bucket of s), then the first max_links_per_doc passing ones
    per worse member. Returns the links and the members with no passing pair."""
    sizes = groups.sizes
    starts = (np.cumsum(sizes) - sizes).astype(np.int64)
    position = dedup._positions(sizes)
    first = np.repeat(starts, sizes)
    per = position
    worse = np.repeat(first + position, per)
    better = np.repeat(first, per) + np.arange(len(worse)) - np.repeat(np.cumsum(per) - per, per)
    doc = groups.rows
    movable = groups.of.generation[doc[worse]] != 0
    better, worse = better[movable], worse[movable]
    table = np.stack([sigs[k] for k in dedup.key_bytes(groups.of.exact)])
    passed = (table[doc[better]] == table[doc[worse]]).mean(axis=1) >= cfg.threshold
    segment = dedup._runs(worse)
    seg_id = np.cumsum(segment) - 1
    rejected = int((np.bincount(seg_id, weights=passed) == 0).sum()) if len(worse) else 0
    passes = np.cumsum(passed)
    before = (passes - passed)[segment]
    keep = passed & (passes - before[seg_id] <= cfg.max_links_per_doc)
    ids = groups.of.ids
    links = sorted({(ids[w], int(groups.of.file[w]), groups.of.rank(b), ids[b])
                    for b, w in zip(doc[better[keep]], doc[worse[keep]], strict=True)
                    if ids[b] != ids[w]})
    return links, rejected


def random_groups(rng: np.random.Generator, docs: int, buckets: int, perms: int):
    """Buckets over documents whose signatures come in families of near copies (each copy
    differs from its family's signature in a random share of permutations)."""
    family = rng.integers(0, max(docs // 6, 1), docs)
    base = rng.integers(0, 2**32, (family.max() + 1, perms), dtype=np.uint32)
    sigs = base[family].copy()
    noise = rng.random((docs, perms)) < rng.uniform(0.0, 0.4, (docs, 1))
    sigs[noise] = rng.integers(0, 2**32, int(noise.sum()), dtype=np.uint32)
    of = dedup.Docs([f"d{i:05d}" if i % 17 else "d00000" for i in range(docs)],
                    (rng.random(docs) < 0.85).astype(np.int8), rng.integers(0, 2, docs, np.int32),
                    -rng.integers(100, 200, docs), np.arange(2 * docs, dtype=np.uint64).reshape(
                        docs, 2), rng.integers(0, 4, docs, np.int32))
    rows, sizes = [], []
    for _ in range(buckets):  # members of a family (and strangers), best-ranked first
        f = rng.integers(0, family.max() + 1)
        members = np.flatnonzero(family == f)
        members = np.union1d(members, rng.choice(docs, rng.integers(0, 3)))
        if len(members) >= 2:
            members = members[np.argsort(of.positions()[members], kind="stable")]
            rows.append(members)
            sizes.append(len(members))
    groups = dedup.Groups(np.concatenate(rows).astype(np.int32), np.array(sizes, np.int64), of)
    return groups, dict(zip(dedup.key_bytes(of.exact), sigs, strict=True))


@given(st.lists(st.text(max_size=6), min_size=1, max_size=40), st.data())
def test_documents_with_arrow_ids_take_concat_and_rank_as_with_a_list(ids, data):
    """The shuffles carry ids as an Arrow array; tests and an earlier build's may hand a list:
    both give the same documents, ranks and rank order (code point order, as str compares)."""
    n = len(ids)
    rng = np.random.default_rng(n)
    columns = (rng.integers(0, 2, n).astype(np.int8), rng.integers(0, 2, n).astype(np.int32),
               -rng.integers(1, 3, n), np.arange(2 * n, dtype=np.uint64).reshape(n, 2),
               np.zeros(n, np.int32))
    as_list, as_arrow = dedup.Docs(ids, *columns), dedup.Docs(pa.array(ids, pa.string()), *columns)
    idx = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=3 * n)), dtype=np.int64)
    for docs in (as_list, as_arrow):
        taken = dedup.Docs.concat([docs.take(idx), docs])
        assert taken.id_list() == [ids[i] for i in idx] + ids
        assert [taken.rank(i) for i in range(len(taken.ids))] == [
            taken.rank(i, taken.id_list()) for i in range(len(taken.ids))]
        assert taken.positions().tolist() == as_list.take(
            np.r_[idx, np.arange(n)].astype(np.int64)).positions().tolist()
    ranks = [as_list.rank(i) for i in range(n)]
    assert np.argsort(as_arrow.positions()).tolist() == sorted(range(n), key=ranks.__getitem__)


@given(st.lists(st.integers(0, 40), max_size=200), st.sampled_from([0, 2**63, 2**64 - 41]))
def test_shared_marks_exactly_the_keys_another_entry_holds(values, base):
    keys = np.array(values, dtype=np.uint64) + np.uint64(base)
    unique, counts = np.unique(keys, return_counts=True)
    held = dict(zip(unique.tolist(), counts.tolist(), strict=True))
    assert dedup._shared(keys).tolist() == [held[k] > 1 for k in keys.tolist()]


@pytest.mark.parametrize("seed", range(6))
def test_verified_links_equal_the_all_pairs_reference(seed):
    rng = np.random.default_rng(seed)
    perms = int(rng.choice([16, 112, 256]))
    groups, sigs = random_groups(rng, 400, 120, perms)
    seen = []
    for threshold, max_links in ((0.8, 4), (0.5, 1), (0.95, 2), (0.3, 1000)):
        cfg = DedupConfig(threshold=threshold, max_links_per_doc=max_links)
        links, rejected = link_groups_reference(groups, sigs, cfg)
        assert dedup.link_groups(groups, sigs, cfg) == links
        size = dedup._link_capacity(groups.sizes, max_links)
        assert size == sum(min(p, max_links) for s in groups.sizes.tolist() for p in range(s))
        starts = (np.cumsum(groups.sizes) - groups.sizes).astype(np.int64)
        n, candidates, rejected_k = dedup._verified_links(
            starts, groups.sizes, groups.rows.astype(np.int64), groups.of.generation != 0,
            np.stack([sigs[k] for k in dedup.key_bytes(groups.of.exact)]),
            dedup._pass_count(threshold, perms), max_links, np.empty(size, np.int64),
            np.empty(size, np.int64))
        assert rejected_k == rejected and candidates >= rejected
        seen.append((len(links), rejected))
    assert min(seen)[0] > 0 and max(r for _, r in seen) > 0  # links made, candidates refused


def test_a_bucket_of_many_near_copies_links_each_to_a_few_better_ones():
    """A template page in 4,000 variants: one LSH bucket. Every pair would be 8 million pairs
    (and four 64 MB arrays of them); each member stops at its first max_links passes."""
    docs, perms = 4000, 112
    rng = np.random.default_rng(0)
    sigs = np.repeat(rng.integers(0, 2**32, (1, perms), dtype=np.uint32), docs, axis=0)
    sigs[:, :5] = rng.integers(0, 2**32, (docs, 5), dtype=np.uint32)  # J about 0.95
    of = dedup.Docs([f"t{i:05d}" for i in range(docs)], np.ones(docs, np.int8),
                    np.zeros(docs, np.int32), -np.full(docs, 500), np.arange(
                        2 * docs, dtype=np.uint64).reshape(docs, 2), np.zeros(docs, np.int32))
    groups = dedup.Groups(np.arange(docs, dtype=np.int32), np.array([docs]), of)
    cfg = DedupConfig(max_links_per_doc=4)
    links = dedup.link_groups(groups, dict(zip(dedup.key_bytes(of.exact), sigs, strict=True)),
                              cfg)
    assert len(links) == 1 + 2 + 3 + 4 * (docs - 4)
    assert {b for *_, b in links} == {"t00000", "t00001", "t00002", "t00003"}


def test_a_template_page_in_thousands_of_near_copies_is_one_cluster_over_the_limit(
        reviews, tmp_path, caplog):
    """Runaway clusters: 2,500 near copies of one page (a product page that differs by a
    number and a name) make one LSH bucket per band. The stage keeps one of them, links every
    copy to a kept neighbour, and reports the cluster over max_cluster_size."""
    page = reviews[5]
    copies = [doc(f"p{i:05d}", f"Item {i} by seller {i * 7919 % 10007}. {page}")
              for i in range(2500)]
    others = [doc(f"r{i}", text) for i, text in enumerate(reviews[6:16])]
    with caplog.at_level("WARNING"):
        counters, kept, rejected, out = run_dedup(tmp_path, copies + others,
                                                  max_cluster_size=1000)
    assert {f"web/r{i}" for i in range(10)} <= set(kept)
    assert len(kept) - 10 <= 3  # the template: (nearly) one survivor
    assert counters["in"] == counters["out"] + len(rejected) == 2510
    assert all(r["reason"] == "duplicate_minhash" for r in rejected.values())
    assert {json.loads(r["meta"])["duplicate_of"] for r in rejected.values()} <= set(kept)
    clusters = json.loads((out / "clusters.json").read_text())
    assert clusters["over_limit"] == 1 and clusters["largest"][0]["size"] >= 2497
    assert "exceed max_cluster_size=1000" in caplog.text


def test_a_signature_partition_answers_every_request_from_one_scratch_file(tmp_path):
    """FetchSignatures answers each partition's request with the signatures of the keys it
    asked for, all answers in one scratch file (a file per answer grew with the square of the
    partitions), each read back alone."""
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=(30, 2), dtype=np.uint64)
    sigs = rng.integers(0, 2**32, size=(30, 8), dtype=np.uint32)
    stored = [("sigs", dedup.spill((keys[:12], sigs[:12]), str(tmp_path))),
              ("sigs", dedup.spill((keys[12:], sigs[12:]), str(tmp_path)))]
    asks = {3: [5, 20, 1], 0: [29], 7: [12, 11, 0, 4]}
    requests = [("request", p, keys[rows]) for p, rows in asks.items()]
    before = set(tmp_path.iterdir())
    out = list(dedup.FetchSignatures(str(tmp_path)).process((1, stored + requests)))
    assert len(set(tmp_path.iterdir()) - before) == 1
    assert sorted(p for p, _ in out) == sorted(asks)
    for partition, (kind, where) in out:
        got_keys, got = dedup.unspill_range(*where)
        assert kind == "sigs"
        np.testing.assert_array_equal(got_keys, keys[asks[partition]])
        np.testing.assert_array_equal(got, sigs[asks[partition]])
