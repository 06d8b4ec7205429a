"""Main-text extraction (pipelines/sources/html_text.py): its quality on the two real HTML
benchmarks in ../shared/corpora, and each of its rules on pages written for the rule."""

from pathlib import Path

import pytest

from bench.extraction import load_pages, load_snippet_pages, page_counts, score, snippet_score
from pipelines.sources.commoncrawl import decode_html
from pipelines.sources.html_text import extract_main_text

PROSE = ("The committee met on Tuesday to discuss the new bridge, which has been delayed "
         "for two years by disputes over its cost and its design. ")


def page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>t</title></head><body>{body}</body></html>"


def test_scrapinghub_benchmark_reaches_the_goal(corpora: Path) -> None:
    """Issue #3's quality goal on the real benchmark, with its published shingle metric."""
    pages = load_pages()
    assert len(pages) == 181
    metrics = score([page_counts(gold, extract_main_text(decode_html(raw)))
                     for _, raw, gold in pages])
    assert metrics["f1"] >= 0.955, metrics
    assert metrics["precision"] >= 0.95 and metrics["recall"] >= 0.97, metrics


def test_trafilatura_evaluation_pages_stay_above_the_measured_floor(corpora: Path) -> None:
    """A set the rules were not tuned on: 0.923 measured (trafilatura itself: 0.938); the floor
    catches a change that only helps the Scrapinghub pages."""
    pages = load_snippet_pages()
    assert len(pages) == 318
    outputs = [extract_main_text(decode_html(raw)) for _, raw, _, _ in pages]
    metrics = snippet_score(pages, outputs)
    assert metrics["f1"] >= 0.91, metrics


def test_article_container_wins_over_page_chrome() -> None:
    html = page(
        '<nav><a href="/">Home</a> <a href="/news">News</a></nav>'
        '<div id="sidebar"><p>' + "Sidebar text about other things entirely. " * 5 + "</p></div>"
        '<div class="article-body"><h1>Bridge delayed</h1>'
        f"<p>{PROSE * 2}</p><p>{PROSE}</p></div>"
        "<footer><p>Copyright 2026 The Paper</p></footer>")
    text = extract_main_text(html)
    assert text.splitlines() == [(PROSE * 2).strip(), PROSE.strip()]


def test_boilerplate_blocks_inside_the_article_are_pruned() -> None:
    html = page(
        f'<article><p>{PROSE * 2}</p>'
        '<div class="share-buttons"><p>Share this story with your friends and family now</p></div>'
        '<div class="related-stories"><p>Another story you might like to read today</p></div>'
        '<p class="byline">By A. Reporter, staff writer for the paper</p>'
        f"<p>{PROSE}</p></article>")
    text = extract_main_text(html)
    assert "Share this" not in text and "Another story" not in text and "A. Reporter" not in text
    assert text.count("committee") == 3


def test_pruning_never_leaves_less_than_a_seventh_of_the_text() -> None:
    """A container whose text sits in a block with a boilerplate-looking class keeps it
    (trafilatura's guard), rather than losing the article."""
    html = page(f'<article><div class="content-with-sidebar"><p>{PROSE * 3}</p></div>'
                "<p>Short tail paragraph.</p></article>")
    assert "committee" in extract_main_text(html)


def test_link_lists_go_and_links_in_prose_stay() -> None:
    links = "".join(f'<li><a href="/s{i}">Story {i}</a></li>' for i in range(8))
    html = page(f'<div class="post-content"><p>{PROSE} See <a href="/r">the report</a> for more.'
                f"</p><ul>{links}</ul><p>{PROSE * 2}</p></div>")
    text = extract_main_text(html)
    assert "See the report for more." in text
    assert "Story 3" not in text


def test_loose_text_in_divs_is_dropped_when_paragraphs_carry_the_article() -> None:
    html = page(f'<div class="entry-content"><p>{PROSE * 3}</p>'
                "<div><span>Photo: A. Photographer</span> Replay</div>"
                f"<p>{PROSE * 3}</p></div>")
    text = extract_main_text(html)
    assert "Photographer" not in text and "Replay" not in text
    # A page written in <div>s alone keeps them: there is no other text.
    divs = page(f'<div class="entry-content"><div>{PROSE * 2}</div><div>{PROSE}</div></div>')
    assert extract_main_text(divs).count("committee") == 3


def test_removed_elements_keep_the_text_that_follows_them() -> None:
    html = page(f'<article><p>{PROSE * 2}</p><p>Before <span class="share-icon">share</span> '
                "after, the sentence goes on.</p></article>")
    assert "Before after, the sentence goes on." in extract_main_text(html)


def test_without_a_container_the_pruned_page_is_used() -> None:
    html = page(f'<div class="wrapper"><nav><a href="/">Home</a></nav><p>{PROSE * 2}</p>'
                "<table><tr><td>Height</td><td>120 m</td></tr></table></div>")
    text = extract_main_text(html)
    assert "Home" not in text
    assert "committee" in text and "Height 120 m" in text


def test_a_page_swallowed_by_an_unclosed_tag_in_noscript_is_still_read() -> None:
    html = page(f'<noscript><div id="nojs"></noscript><div class="text-content"><p>{PROSE * 3}'
                "</p></div><noscript></div></noscript>")
    assert "committee" in extract_main_text(html)


@pytest.mark.parametrize("html", ["", "   ", "<html></html>", "<html><body></body></html>"])
def test_pages_without_text_give_an_empty_string(html: str) -> None:
    assert extract_main_text(html) == ""


def test_awkward_inputs() -> None:
    # An XML declaration with an encoding, which lxml refuses on a str.
    xhtml = ('<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
             f"<body><article><p>{PROSE * 3}</p></article></body></html>")
    assert extract_main_text(xhtml).startswith("The committee")
    # NUL ends libxml2's text; control characters and non-characters become spaces.
    dirty = page(f"<article><p>{PROSE * 3}a\x00b\x01c\ufffed</p></article>")
    assert extract_main_text(dirty).endswith("ab c d")
    # Nesting deeper than libxml2's limit does not crash the walk.
    deep = page("<div>" * 3000 + f"<p>{PROSE}</p>" + "</div>" * 3000)
    assert isinstance(extract_main_text(deep), str)


def test_prose_written_straight_into_a_div_counts_as_a_paragraph() -> None:
    html = page(f'<div class="entry-content"><p>{PROSE * 6}</p>'
                f"<div>{PROSE}<br>{PROSE}</div><div>Photo: A. Photographer</div></div>")
    text = extract_main_text(html)
    assert text.count("committee") == 8
    assert "Photographer" not in text


def test_a_heading_left_at_the_end_is_dropped() -> None:
    links = "".join(f'<li><a href="/s{i}">Story {i}</a></li>' for i in range(6))
    html = page(f'<article><h2>The decision</h2><p>{PROSE * 3}</p>'
                f"<h3>You might also like</h3><ul>{links}</ul></article>")
    assert extract_main_text(html).splitlines() == ["The decision", (PROSE * 3).strip()]
