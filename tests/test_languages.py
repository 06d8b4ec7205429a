"""pipelines/languages.py: script detection, word splitters and their fallback, and the
thresholds that resolve per language (FineWeb-2's shipped values, recipe overrides); and the
clean stage judging real Chinese web pages by them."""

from __future__ import annotations

import dataclasses
import json
import statistics

import pyarrow as pa
import pytest

from pipelines import languages, splitter_child
from pipelines.clean import Cleaner
from pipelines.recipe import CleanConfig, RecipeError, load_recipe
from pipelines.schema import ARROW_SCHEMA


def _table(texts: list[str]) -> pa.Table:
    return pa.Table.from_pylist([{"id": str(i), "source": "web", "split": "train", "text": t,
                                  "meta": "{}"} for i, t in enumerate(texts)]).cast(ARROW_SCHEMA)


def test_scripts():
    assert languages.dominant_script("数学是研究数量、结构以及空间等概念的学科。") == "Hani"
    assert languages.dominant_script("日本語の文章を単語に分割します。") == "Jpan"
    assert languages.dominant_script("한국어 문장을 단어로 나눕니다.") == "Hang"
    assert languages.dominant_script("ภาษาไทยเป็นภาษาที่สวยงาม") == "Thai"
    assert languages.dominant_script("Стратегия пожарной безопасности") == "Cyrl"
    assert languages.dominant_script("1234 !!") == "Zyyy"


def test_unspaced_languages_count_only_texts_with_han_kana_or_thai(ccnet, corpora):
    """The screen before the count decides as counting every text: real zh, ja and English
    pages, then mixes and texts where the unspaced script loses or ties."""
    import numpy as np

    ja = (corpora / "html_extraction_zh_ja" / "japanese.txt").read_text(encoding="utf-8")
    truth = json.loads((corpora / "html_extraction_scrapinghub" / "ground-truth.json")
                       .read_text())
    texts = [*ccnet[:30], ja, *[v["articleBody"] for _, v in sorted(truth.items())[:60]],
             "ภาษาไทยเป็นภาษาที่สวยงาม", "한국어 문장 数学", "abc 数学 def", "ab 数学", "カ abc",
             "x" * 5000 + "数学数学", "", "1234 !!", "ｶﾀｶﾅ and 𠀀𠀁 text"]
    cps = [languages.code_points(t) for t in texts]
    lengths = np.fromiter(map(len, cps), np.int64, len(cps))
    ends = np.cumsum(lengths)
    chars = np.concatenate(cps)
    counted = [languages.UNSPACED.get(s) for s in languages.dominant_scripts(
        languages.script_count_matrix(chars, ends - lengths, ends))]
    got = languages.unspaced_languages(chars, ends - lengths, ends)
    assert got == counted
    assert {"zh", "ja", "th", None} <= set(got)
    assert got[-9] == "th" and got[-4] is None  # its Han lies past the counted prefix


def _f1(gold: list[list[str]], predicted: list[list[str]]) -> float:
    """Word-segmentation F1 (SIGHAN's scoring: words as character spans)."""
    def spans(words_):
        out, at = set(), 0
        for w in words_:
            out.add((at, at + len(w)))
            at += len(w)
        return out
    tp = n_gold = n_pred = 0
    for g, p in zip(gold, predicted, strict=True):
        sg, sp = spans(g), spans(p)
        tp, n_gold, n_pred = tp + len(sg & sp), n_gold + len(sg), n_pred + len(sp)
    precision, recall = tp / n_pred, tp / n_gold
    return 2 * precision * recall / (precision + recall)


def test_chinese_words_against_the_pku_gold(corpora):
    lines = [line.split() for line in
             (corpora / "pku_cws_gold" / "pku_test_gold.utf8").read_text("utf-8").splitlines()
             if line.strip()][:500]
    assert languages.splitter_name("zh") == "rjieba"
    predicted = [languages.words("".join(words_), "zh") for words_ in lines]
    assert _f1(lines, predicted) > 0.78  # jieba's default mode scores about 0.82 on the whole set
    chars = [languages.char_words("".join(words_)) for words_ in lines]
    assert _f1(lines, chars) < 0.7  # the fallback is a fallback


def test_japanese_words_in_chunks(corpora):
    text = (corpora / "html_extraction_zh_ja" / "japanese.txt").read_text("utf-8")
    assert languages.splitter_name("ja") == "sudachipy"
    words_ = languages.words(text, "ja")
    lengths = [len(w) for w in words_ if w.isalnum()]
    assert 1.2 < statistics.mean(lengths) < 3.0  # mode A: short units
    assert "".join(words_) == "".join(text.split())  # every character, in order
    # SudachiPy refuses inputs over 49,149 bytes: a long text goes in chunks of <= 40 KB.
    long_text = (text + "\n") * (120_000 // len(text.encode("utf-8")) + 1)
    pieces = languages.chunks_by_bytes(long_text)
    assert len(pieces) > 2 and "".join(pieces) == long_text
    assert all(len(p.encode("utf-8")) <= languages.JA_CHUNK_BYTES for p in pieces)
    assert len(languages.words(long_text, "ja")) > len(words_) * 2


def test_korean_and_thai_words():
    assert languages.words("한국어 문장을 단어로 나눕니다.", "ko") == [
        "한국어", "문장", "을", "단어", "로", "나눕", "니다", "."]  # surface forms, no overlap
    assert languages.words("ภาษาไทยเป็นภาษาที่สวยงาม", "th") == [
        "ภาษาไทย", "เป็น", "ภาษา", "ที่", "สวยงาม"]


def _korean_articles(corpora) -> list[str]:
    gold = json.loads((corpora / "html_extraction_scrapinghub" / "ground-truth.json").read_text())
    return [v["articleBody"] for v in gold.values()
            if sum("\uac00" <= c <= "\ud7a3" for c in v["articleBody"]) > 100]


def test_korean_splits_in_a_child_process_released_when_the_stage_ends(corpora):
    articles = _korean_articles(corpora)
    assert len(articles) == 2  # the Scrapinghub benchmark's Korean news articles
    languages.release_splitters()
    split = languages._splitter("ko")[1]
    assert isinstance(split, languages.ChildSplitter)
    in_process = splitter_child.kiwi()  # the same splitter, in this process
    for text in articles:
        starts, ends = split(text)
        want_starts, want_ends = in_process(text)
        assert starts.tolist() == list(want_starts) and ends.tolist() == list(want_ends)
        assert len(languages.words(text, "ko")) > 1000
    proc = split.proc
    assert proc is not None and proc.poll() is None
    languages.release_splitters()
    assert proc.poll() == 0  # ended by its stdin closing
    assert languages._splitter("ko")[1] is not split  # the next stage starts a new one
    languages.release_splitters()
    # A child that dies mid-build fails it, naming the language; never a silent fallback.
    split = languages._splitter("ko")[1]
    split("한국어")
    split.proc.kill()
    split.proc.wait()
    with pytest.raises(languages.SplitterProcessError, match="ko word splitter"):
        languages.words("한국어 문장을 단어로 나눕니다.", "ko")
    languages.release_splitters()  # the next stage gets a working child again
    assert languages.words("한국어 문장을 단어로 나눕니다.", "ko")[:3] == ["한국어", "문장", "을"]
    languages.release_splitters()


def test_a_missing_or_failing_splitter_degrades_to_characters(monkeypatch):
    def missing():
        raise ImportError("no module named rjieba")

    def failing(text):
        raise RuntimeError("splitter crashed")

    languages._splitter.cache_clear()
    monkeypatch.setitem(languages.SPLITTERS, "zh", ("rjieba", missing))
    try:
        assert languages.splitter_name("zh") == "chars"
        assert languages.words("我们在北京 use Python.", "zh") == [
            "我", "们", "在", "北", "京", "use", "Python", "."]
    finally:
        languages._splitter.cache_clear()
    monkeypatch.setattr(languages, "_splitter", lambda lang: ("broken", failing))
    assert languages.words("ภาษาไทย", "th") == ["ภ", "า", "ษ", "า", "ไ", "ท", "ย"]
    # Combining marks stay on their character: Thai tone marks, kana voicing marks.
    assert languages.char_words("เป็น") == ["เ", "ป็", "น"]
    assert languages.char_words("か\u3099") == ["か\u3099"]


def test_match_form_keeps_marks():
    assert languages.match_form("ＡＢＣ１２３") == "abc123"
    assert languages.match_form("が") == "が"  # datatrove's MinHash normalisation gives か
    assert languages.match_form("한국") == "한국"  # not jamo


def test_thresholds_resolve_per_language():
    cfg = CleanConfig()
    zh = cfg.rules_for_language("zh")
    shipped = languages.published_rules()
    assert shipped["commit"] and shipped["languages"]["zh"]["config"] == "cmn_Hani"
    assert zh.origin == "fineweb-2:cmn_Hani+sieve" and not zh.c4_enabled
    assert (zh.gopher_quality.min_avg_word_length, zh.gopher_quality.max_avg_word_length) == (1, 5)
    assert zh.gopher_quality.min_alpha_words_ratio == 0.735
    assert "的" in zh.gopher_quality.stop_words and zh.gopher_repetition.dup_line_frac == 0.287
    assert zh.gopher_quality.min_doc_words == cfg.gopher_quality.min_doc_words  # not published
    ja = cfg.rules_for_language("ja")
    assert ja.origin == "fineweb-2:jpn_Jpan+sieve" and ja.gopher_quality.max_avg_word_length == 6
    # Sieve's departures: zh and ja word n-gram thresholds over FineWeb-2's, with their reason;
    # every other value stays FineWeb-2's, and languages without a departure are untouched.
    departed = languages.sieve_departures()
    assert set(departed) == {"zh", "ja"} and all(d["why"] for d in departed.values())
    for lang, rules in (("zh", zh), ("ja", ja)):
        published = shipped["languages"][lang]["gopher_repetition"]
        for key in ("dup_n_grams", "top_n_grams"):
            ours = getattr(rules.gopher_repetition, key)
            assert [n for n, _ in ours] == [n for n, _ in published[key]]
            assert all(v > p for (_, v), (_, p) in zip(ours, published[key], strict=True))
        assert rules.gopher_repetition.dup_line_frac == published["dup_line_frac"]
    assert cfg.rules_for_language("wuu").gopher_repetition == zh.gopher_repetition
    pt = cfg.rules_for_language("pt")
    assert pt.origin == "fineweb-2:por_Latn"
    assert [list(x) for x in pt.gopher_repetition.dup_n_grams] == \
        shipped["languages"]["pt"]["gopher_repetition"]["dup_n_grams"]
    en = cfg.rules_for_language("en")
    assert en.origin == "default" and en.c4_enabled and en.gopher_quality == cfg.gopher_quality
    assert en.filters(("gopher_quality", "c4")) == ("gopher_quality", "c4")
    assert zh.filters(("gopher_quality", "c4")) == ("gopher_quality",)


def test_recipe_overrides_a_language(tmp_path):
    recipe = tmp_path / "zh.toml"
    recipe.write_text("""
name = "zh"
[[ingest.sources]]
kind = "jsonl"
path = "docs.jsonl"
[clean]
keep_languages = ["zh", "en"]
[clean.languages.zh]
c4 = true
language_score = 0.5
[clean.languages.zh.gopher_quality]
min_avg_word_length = 1.2
[clean.languages.en.fineweb]
line_punct_thr = 0.05
""")
    (tmp_path / "docs.jsonl").write_text('{"text": "x"}\n')
    cfg = load_recipe(recipe).clean
    assert cfg.languages == ["zh", "en"]
    zh = cfg.rules_for_language("zh")
    assert zh.origin == "fineweb-2:cmn_Hani+sieve+recipe" and zh.c4_enabled
    assert zh.gopher_quality.min_avg_word_length == 1.2
    assert zh.gopher_quality.max_avg_word_length == 5  # the rest stays FineWeb-2's
    assert zh.language_score == 0.5
    en = cfg.rules_for_language("en")
    assert en.origin == "default+recipe" and en.fineweb.line_punct_thr == 0.05
    recipe.write_text(recipe.read_text().replace("min_avg_word_length", "min_avg_wordlength"))
    with pytest.raises(RecipeError, match="min_avg_wordlength"):
        load_recipe(recipe)


@pytest.fixture(scope="module")
def ccnet(corpora):
    path = corpora / "chinese_web_ccnet" / "cleared1.jsonl"
    return [json.loads(line)["raw_content"] for line in path.read_text("utf-8").splitlines()]


def test_chinese_pages_are_judged_by_chinese_words_and_thresholds(ccnet):
    # Whitespace "words": a median of 20 per page, and English thresholds dropped 95 of 100
    # pages on mean word length alone (../shared/MEASURED.md).
    assert statistics.median(len(languages.words(t, "zh")) for t in ccnet) > 350
    kept, rejected, counts = Cleaner(CleanConfig(), None).judge(_table(ccnet))
    reasons = rejected.column("reason").to_pylist()
    assert not any("avg_word_length" in r for r in reasons)
    assert kept.num_rows >= 60  # spam and SEO pages among them are still dropped
    metas = [json.loads(m) for m in rejected.column("meta").to_pylist()]
    judged = [m for m, r in zip(metas, reasons, strict=True) if m["language"] == "zh"
              and r.split(":")[0] in ("gopher_repetition", "gopher_quality", "fineweb")]
    assert judged and all(m["thresholds"] == "zh:fineweb-2:cmn_Hani+sieve" for m in judged)
    assert all("rule_value" in m and "rule_threshold" in m for m in judged)
    assert counts["lang:zh:in"] >= 90 and counts["lang:zh:out"] <= counts["lang:zh:in"]
    # The reference path (document by document, pure Python) decides the same.
    cleaner = Cleaner(CleanConfig(), None)
    ref_kept, ref_rejected, _ = cleaner.judge_reference(_table(ccnet))
    assert ref_rejected.column("reason").to_pylist() == reasons
    assert ref_kept.column("text").to_pylist() == kept.column("text").to_pylist()


def test_compiled_rules_with_splitter_words_decide_as_the_reference(corpora, ccnet):
    # The compiled kernel takes each splitter's words as spans; the document-by-document Python
    # path splits with `languages.words`. Real zh/ja gold texts and web pages, Korean and Thai
    # sentences, mixed-script and whitespace-heavy text, and a recipe that turns C4 on for
    # Chinese (those documents keep the Python rules: C4 rewrites the text the spans index).
    gold = json.loads((corpora / "html_extraction_zh_ja" / "ground-truth.json")
                      .read_text("utf-8"))
    texts = ccnet[:40] + [g["content"] for g in gold.values()] + [
        "한국어 문장을 단어로 나눕니다. " * 40, "ภาษาไทยเป็นภาษาที่สวยงาม\n" * 60,
        "東京都に  行く。\n\n" * 50 + "テスト test " * 30, "我们在北京 use Python.\n" * 70,
        "\u3000中文\u3000全角空格\u3000\n" * 80]
    for cfg in (CleanConfig(), CleanConfig(languages={"zh": {"c4": True}})):
        kept, rejected, counts = Cleaner(cfg, None).judge(_table(texts))
        ref_kept, ref_rejected, ref_counts = Cleaner(cfg, None).judge_reference(_table(texts))
        assert rejected.column("id").to_pylist() == ref_rejected.column("id").to_pylist()
        assert rejected.column("reason").to_pylist() == ref_rejected.column("reason").to_pylist()
        assert rejected.column("meta").to_pylist() == ref_rejected.column("meta").to_pylist()
        assert kept.column("text").to_pylist() == ref_kept.column("text").to_pylist()
        assert counts == ref_counts
    for t in texts:  # the compiled script counts are the per-character definition's
        expect: dict[str, int] = {}
        for ch in t[:4000]:
            if ch.isalpha():
                expect[languages.script_of(ch)] = expect.get(languages.script_of(ch), 0) + 1
        assert languages.script_counts(t) == expect
    # Spans and words agree, whitespace trimmed, in order, inside the text.
    for t, lang in ((texts[0], "zh"), (texts[-3], "ja"), (texts[-5], "ko"), (texts[-4], "th")):
        starts, ends = languages.word_spans(t, lang)
        assert [t[a:b] for a, b in zip(starts, ends, strict=True)] == languages.words(t, lang)
        assert all(t[a:b] == t[a:b].strip() != "" for a, b in zip(starts, ends, strict=True))
        assert (starts[1:] >= ends[:-1]).all()


def test_character_coverage_follows_the_scripts_and_fits_the_vocabulary(tmp_path, ccnet, corpora):
    from pipelines.recipe import TokenizerConfig
    from tokenizer import spm

    english = tmp_path / "en.txt"
    english.write_text("\n".join(p.read_text("utf-8") for p in sorted(
        (corpora / "imdb_aclImdb" / "aclImdb" / "train" / "pos").glob("*.txt"))[:300]), "utf-8")
    chinese = tmp_path / "zh.txt"
    chinese.write_text("\n".join(ccnet), "utf-8")
    en = spm.choose_coverage(str(english), 8000)
    zh = spm.choose_coverage(str(chinese), 8000)
    assert en["character_coverage"] == 0.9999 and en["cjk_share_of_letters"] < 0.01
    assert zh["character_coverage"] == 0.9995 and zh["cjk_share_of_letters"] > 0.9
    # 0.9995 of the Chinese pages needs thousands of characters: a 3,000-piece vocabulary
    # gets a lower coverage, and SentencePiece trains instead of refusing; at 1,000 pieces
    # even its lowest coverage (0.98) needs more, and the error says what to change.
    small = spm.choose_coverage(str(chinese), 3000)
    assert zh["characters_for_target"] > 1500 and small["character_coverage"] < 0.9995
    model = spm.train_model_from_file(str(chinese), TokenizerConfig(vocab_size=3000))
    assert len(model) > 3000
    with pytest.raises(ValueError, match="vocab_size 1000 is smaller than the .* characters"):
        spm.train_model_from_file(str(chinese), TokenizerConfig(vocab_size=1000))


def test_bad_words_count_on_word_boundaries_only():
    words = languages.bad_word_list("zh")
    assert {"他妈的", "奶", "做爱"} <= words  # LDNOOBW v2's zh list
    assert {"六合彩", "百家乐", "下注"} <= words  # and Sieve's gambling-spam terms
    for text, want in (("我喜欢喝牛奶。", []),  # 奶 inside the word 牛奶
                       ("他妈的，你在干什么？", ["他妈的"]),  # one word: 他妈 inside it is not
                       ("他们做爱了。", ["做爱"])):
        starts, ends = languages.word_spans(text, "zh")
        assert languages.bad_word_hits(text, starts, ends, words) == want, text
    # A spaced language: "ass" inside "class" and "passed" is no word of its own.
    en = languages.bad_word_list("en")
    text = "The class passed a law against porn."
    assert languages.bad_word_hits(text, *languages.word_spans(text, "en"), en) == ["porn"]
    # Texts whose lower case moves offsets (İ) or depends on neighbours (Σ) are read word by
    # word instead of through the screen of where listed words begin: the same hits.
    for text in ("İstanbul: PORN, porn.", "ΣΑΣ porn Porn"):
        assert languages.bad_word_hits(text, *languages.word_spans(text, "en"), en) == \
            ["porn", "porn"]


def test_bad_words_drop_the_adult_page_and_keep_verified_chinese_and_japanese(corpora):
    from pipelines.sources import commoncrawl

    pages = {doc.id: doc.text for doc, reason in commoncrawl.read(
        str(corpora / "commoncrawl_warc" / "warcfile.warc.gz"), "web") if reason is None}
    adult = next(t for i, t in pages.items() if "dda783c9" in i)  # "严选免费成人小说"
    gold = json.loads((corpora / "html_extraction_zh_ja" / "ground-truth.json").read_text())
    verified = [v["content"] for v in gold.values()]
    cfg = CleanConfig(source_kinds={"web": "commoncrawl"})
    kept, rejected, counts = Cleaner(cfg, None).judge(_table([adult, *verified]))
    dropped = {r["id"]: (r["reason"], json.loads(r["meta"])) for r in rejected.to_pylist()}
    reason, meta = dropped["0"]
    assert reason == "bad_words:too_many" and len(meta["bad_words"]) >= 3
    assert meta["rule_value"] >= meta["rule_threshold"] == 0.01
    assert meta["thresholds"] == "zh:bad_words"
    assert not any(r == "bad_words:too_many" for i, (r, _) in dropped.items() if i != "0")
    # Off where the recipe says so: no language, or the rule not among the source's filters.
    for off in ({"bad_words": {"languages": []}},
                {"filters": ["gopher_repetition", "gopher_quality", "fineweb"]}):
        cfg = CleanConfig.model_validate({**off, "source_kinds": {"web": "commoncrawl"}})
        _, rejected, _ = Cleaner(cfg, None).judge(_table([adult]))
        assert rejected.column("reason").to_pylist() != ["bad_words:too_many"]


def test_gambling_spam_terms_leave_ordinary_chinese_alone(corpora):
    """Sieve's gambling-spam terms (pipelines/data/spam_words.json) drop the warcfile's
    lottery-tip page, which passes every Chinese threshold, and no ordinary Chinese text:
    PKU's People's Daily (98 chunks of 20 paragraphs), the zhwiki articles and the Chinese
    web pages of CCNet, none of which the terms were taken from."""
    from pipelines.ingest import read_source_file
    from pipelines.sources import commoncrawl

    zh = CleanConfig().rules_for_language("zh")

    def reason(text: str):
        return zh.bad_words_reason(text, *languages.word_spans(text, "zh"))

    lottery = next(doc.text for doc, why in commoncrawl.read(
        str(corpora / "commoncrawl_warc" / "warcfile.warc.gz"), "spam")
        if why is None and doc.meta.get("domain") == "044545.com")
    frac, found = reason(lottery)
    assert frac >= 0.01 and {"六合彩", "下注", "特码"} <= set(found)
    ldnoobw_only = dataclasses.replace(zh, bad_words=languages._ldnoobw("zh"))
    assert ldnoobw_only.bad_words_reason(lottery, *languages.word_spans(lottery, "zh")) is None
    gold = (corpora / "pku_cws_gold" / "pku_test_gold.utf8").read_text(encoding="utf-8")
    lines = [line.replace(" ", "") for line in gold.splitlines() if line.strip()]
    ordinary = ["\n\n".join(lines[k:k + 20]) for k in range(0, len(lines), 20)]
    ordinary += [row["text"] for row, why in read_source_file(
        "wikipedia", "zhwiki", str(corpora / "wikipedia_xml_zh" / "zhwiki-test-pages.xml"), {})
        if why is None]
    with open(corpora / "chinese_web_ccnet" / "cleared1.jsonl", encoding="utf-8") as fh:
        ordinary += [json.loads(line)["raw_content"] for line in fh]
    assert len(ordinary) > 200 and not any(reason(t) for t in ordinary)


def test_edited_language_data_rebuilds_the_clean_stage(tmp_path, monkeypatch):
    """The clean stage's key covers the shipped per-language data: FineWeb-2's thresholds,
    Sieve's departures and the spam terms live in data files, not in the recipe."""
    from pipelines import clean

    cfg = CleanConfig(source_kinds={"web": "commoncrawl"})
    before = clean.fingerprint(cfg)
    assert before == clean.fingerprint(cfg)
    edited = tmp_path / languages.DEPARTURES_FILE.name
    data = json.loads(languages.DEPARTURES_FILE.read_text(encoding="utf-8"))
    data["languages"]["ja"]["gopher_repetition"]["dup_n_grams"][0][1] = 0.5
    edited.write_text(json.dumps(data), encoding="utf-8")
    monkeypatch.setattr(languages, "DEPARTURES_FILE", edited)
    assert clean.fingerprint(cfg) != before
