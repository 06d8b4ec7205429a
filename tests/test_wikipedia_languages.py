"""Wikipedia in other languages: zhwiki's variant markup, the dump's language, and a truncated
.xz jawiki dump that keeps its complete pages and records one error naming the file."""

from __future__ import annotations

import lzma

from pipelines.ingest import read_source_file
from pipelines.sources import wikipedia


def test_variant_markup_resolves_to_one_variant():
    text = ("-{zh-tw:資訊;zh-cn:信息;}-与-{zh-hans:计算机; zh-hant:電腦;}-，-{R|原文}-，"
            "-{H|zh-cn:软件;zh-tw:軟體;}-完-{保护}-")
    assert wikipedia.resolve_variants(text) == "信息与计算机，原文，完保护"
    assert wikipedia.resolve_variants("-{zh-tw:資訊;zh-cn:信息;}-", "zh-tw") == "資訊"
    # No rule for the variant or its fallbacks: the first given, not the markup.
    assert wikipedia.resolve_variants("-{zh-hk:甲;zh-tw:乙}-") == "甲"
    assert wikipedia.resolve_variants("外-{zh-cn:内-{保护}-;zh-tw:內}-") == "外内保护"


def test_zhwiki_articles_keep_no_variant_markup_and_know_their_language(corpora):
    path = corpora / "wikipedia_xml_zh" / "zhwiki-test-pages.xml"
    raw = path.read_text("utf-8")
    assert raw.count("-{") >= 20 and "NoteTA" in raw  # what the sample holds
    docs = list(wikipedia.read(str(path), "zhwiki"))
    kept = [d for d, reason in docs if reason is None]
    assert len(docs) == 33 and len(kept) == 23
    assert all("-{" not in d.text and "}-" not in d.text for d in kept)
    assert all("NoteTA" not in d.text and "{{" not in d.text for d in kept)
    assert all(d.meta["wiki_language"] == "zh" for d, _ in docs)
    math = next(d for d in kept if d.meta["title"] == "数学")
    assert math.text.startswith("数学是利用符号语言研究")


def test_truncated_xz_dump_keeps_complete_pages_and_one_error(corpora):
    path = str(corpora / "wikipedia_xml_ja" / "jawiki-truncated-100k.xml.xz")
    rows = list(read_source_file("wikipedia", "jawiki", path, {}))
    errors = [(row, reason) for row, reason in rows if reason and reason.startswith("error:")]
    assert len(errors) == 1 and path in errors[0][0]["meta"]
    articles = [row for row, reason in rows if reason is None]
    redirects = [row for row, reason in rows if reason == "redirect"]
    assert len(articles) == 189 and len(redirects) == 27  # SOURCES.md: 189 articles, 27 redirects
    assert all('"wiki_language": "ja"' in row["meta"] for row in articles)


def test_gz_and_xz_dumps_read_like_the_xml(tmp_path, corpora):
    import gzip

    xml = (corpora / "wikipedia_xml_zh" / "zhwiki-test-pages.xml").read_bytes()
    (tmp_path / "d.xml.xz").write_bytes(lzma.compress(xml))
    (tmp_path / "d.xml.gz").write_bytes(gzip.compress(xml))
    plain = [(d.text, r) for d, r in wikipedia.read(str(corpora / "wikipedia_xml_zh" /
                                                        "zhwiki-test-pages.xml"), "z")]
    for name in ("d.xml.xz", "d.xml.gz"):
        assert [(d.text, r) for d, r in wikipedia.read(str(tmp_path / name), "z")] == plain


def test_local_file_links_and_comments_leave_no_markup(corpora):
    # jawiki writes File links as [[ファイル:...|thumb|right|250px|caption]] and keeps a
    # commented-out table (`<!--{|class="wikitable" ...|}-->`) whose `-{` once read as variant
    # markup.
    path = str(corpora / "wikipedia_xml_ja" / "jawiki-truncated-100k.xml.xz")
    articles = {row["id"]: row["text"] for row, reason in
                read_source_file("wikipedia", "jawiki", path, {}) if reason is None}
    assert len(articles) == 189
    leaks = [i for i, t in articles.items()
             if "thumb|" in t or "px|" in t or "<!" in t or "|->" in t]
    assert leaks == []
    assert "こどもの文化（こどものぶんか）は" in articles["jawiki/59"].split("\n")[0]
    wikitext = ("前文。\n<!--*注。\n<!--*名前。-->\n<!--{|class=\"wikitable\"\n|所属:\n|}-->\n"
                "[[画像:X.png|thumb|説明]][[カテゴリ:テスト]][[:Category:Y]][[Plik:Z.jpg|mały]]"
                "本文。<!-- 閉じない")
    assert wikipedia.wikitext_to_text(wikitext) == "前文。\n\nmały本文。"  # an unknown namespace
    # a dump's <siteinfo> names its own namespaces (plwiki: Plik)
    assert wikipedia.wikitext_to_text(
        wikitext, skip_namespaces=wikipedia.NON_ARTICLE_NAMESPACES | {"plik"}) == "前文。\n\n本文。"
    site = wikipedia.etree.fromstring(
        '<siteinfo xmlns="http://www.mediawiki.org/xml/export-0.11/"><namespaces>'
        '<namespace key="6" case="first-letter">Plik</namespace>'
        '<namespace key="14" case="first-letter">Kategoria</namespace>'
        '<namespace key="4" case="first-letter">Wikipedia</namespace></namespaces></siteinfo>')
    assert wikipedia.namespace_names(site) == {"plik", "kategoria"}


def test_headings_of_empty_sections_are_dropped():
    text = wikipedia.wikitext_to_text(
        "Lead.\n== History ==\nSome history.\n=== Early ===\nEarly text.\n=== Late ===\n"
        "{{Main|Late period}}\n== Parts ==\n=== North ===\n* Town\n== References ==\n"
        "<references/>\n== External links ==\n{{Commons}}\n")
    assert text == ("Lead.\n\nHistory\n\nSome history.\n\nEarly\n\nEarly text.\n\nParts\n\n"
                    "North\n\n- Town")


def test_real_articles_keep_no_heading_of_an_empty_section(corpora):
    # jawiki's 脚注/注釈/出典 and enwiki's References/Notes sections hold only <references/>:
    # as headings with nothing under them they were 661 lines of the 183 jawiki articles.
    path = str(corpora / "wikipedia_xml_ja" / "jawiki-truncated-100k.xml.xz")
    articles = [row["text"] for row, reason in read_source_file("wikipedia", "jawiki", path, {})
                if reason is None]
    notes = ("脚注", "注釈", "出典")
    for text in articles:
        lines = [line for line in text.split("\n") if line.strip()]
        assert lines[-1] not in notes and "\ue000" not in text
    # the 4 left head a section with a source list under them
    assert sum(line in notes for t in articles for line in t.split("\n")) == 4
