"""Every language, one table: what the default web rules keep of verified-good text and drop of
known junk, per language group, with words per document, CJK dedup and CJK extraction.

    python bench/multilingual.py        (the datatrove column needs `make bench-env`)

Verified-good text (the rules should keep it):
- the Scrapinghub benchmark's human-verified article bodies, English and other languages (by
  lid.176);
- the zh/ja extraction benchmark's gold texts (../shared/corpora/html_extraction_zh_ja);
- complete Wikipedia articles in en, zh and ja (the en sample, zhwiki, the truncated jawiki),
  without the disambiguation pages (lists of links; Wikipedia does not count them as articles);
- the 3 ordinary business pages of commoncrawl_warc/warcfile.warc.gz (`WARCFILE_PAGES`).

Known junk (the rules should drop it):
- the 13 junk pages of commoncrawl_warc/warcfile.warc.gz (Chinese gambling, lottery and adult
  pages, SEO splices, navigation and listings, as Sieve's Common Crawl reader extracts them;
  each page's label and why is in `WARCFILE_PAGES`);
- navigation and boilerplate: each Scrapinghub page's text outside its article body (the page's
  text lines that are not in the gold body);
- lorem ipsum, keyword stuffing (English and Chinese spam keywords, from the spam pages' titles)
  and symbol runs, generated with a seed.

Every text goes through the clean stage's decisions as a Common Crawl page (`Cleaner.judge`: C4,
Gopher repetition and quality, FineWeb, each language's thresholds). The datatrove column runs
datatrove's four filters with their published defaults (`bench/_datatrove_filters.py`) and
gives the share of documents where both keep or both drop. The FineWeb-2 column runs datatrove
as FineWeb-2's filtering step runs it (huggingface/fineweb-2, fineweb-2-pipeline.py): each
document's language's word tokenizer and FineWeb-2 values, no C4, and the English defaults where
a language has no values (as Sieve does); "FW-2 share" is what those filters keep of the good
text or drop of the junk, beside Sieve's share.

Also: CJK near-duplicate detection (bench/results/dedup_quality_cjk.json, run
`python bench/dedup_quality.py --corpus cjk`) and main-text extraction on the zh/ja pages against
trafilatura, scored with the Scrapinghub shingle metric over characters as tokens for CJK.
Writes bench/results/multilingual.json.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import gzip  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
ZH_JA = CORPORA / "html_extraction_zh_ja"
RULES = REPO / "pipelines" / "data" / "language_rules.json"
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_TOKEN = re.compile(f"[{CJK}]|[^\\W{CJK}]+")

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud "
         "exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure "
         "dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. "
         "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt "
         "mollit anim id est laborum.")
KEYWORDS_EN = ["cheap", "replica", "watches", "buy", "online", "best", "price", "discount",
               "free shipping", "casino", "bonus", "sale", "outlet", "2024", "top"]
SYMBOLS = "★☆■□◆◇●○▲△▼▽※→←↑↓♪♫♥♦♣♠#$%&*+=-~^|/\\<>@"


# ---- the groups ---------------------------------------------------------------------------

def scrapinghub() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(gold bodies, boilerplate texts): per page its article body, and its text lines that are
    not in the body."""
    from lxml import html as lxml_html

    from pipelines.sources.commoncrawl import decode_html

    folder = CORPORA / "html_extraction_scrapinghub"
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    gold, boiler = [], []
    for key, value in sorted(truth.items()):
        body = value.get("articleBody") or ""
        if not body:
            continue
        gold.append((f"scrapinghub/{key[:12]}", body))
        tree = lxml_html.fromstring(decode_html(
            gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())))
        for bad in tree.xpath("//script|//style|//noscript"):
            bad.drop_tree()
        lines = [" ".join(t.split()) for t in tree.itertext()]
        rest = [line for line in lines if line and line not in body]
        if rest:
            boiler.append((f"boilerplate/{key[:12]}", "\n".join(rest)))
    return gold, boiler


def zh_ja_gold() -> list[tuple[str, str]]:
    truth = json.loads((ZH_JA / "ground-truth.json").read_text(encoding="utf-8"))
    docs = [(f"zh_ja_gold/{k[:12]}", v["content"]) for k, v in sorted(truth.items())]
    docs += [(f"zh_ja_gold/{p.stem}", p.read_text(encoding="utf-8"))
             for p in sorted(ZH_JA.glob("*.txt"))]
    return docs


def wikipedia_articles() -> tuple[dict[str, list[tuple[str, str]]], dict[str, int],
                                  dict[str, str]]:
    """(language -> its complete articles, language -> disambiguation pages left out: lists of
    links, which Wikipedia itself does not count as articles, article id -> title)."""
    from pipelines.ingest import read_source_file

    out, left_out, titles = {}, {}, {}
    for lang, path in (("en", next((CORPORA / "wikipedia_xml").glob("*.bz2"))),
                       ("zh", CORPORA / "wikipedia_xml_zh" / "zhwiki-test-pages.xml"),
                       ("ja", next((CORPORA / "wikipedia_xml_ja").glob("*.xz")))):
        pages = [row for row, reason in read_source_file("wikipedia", f"{lang}wiki", str(path),
                                                          {}) if reason is None]
        out[lang] = [(row["id"], row["text"]) for row in pages
                     if not json.loads(row["meta"]).get("disambiguation")]
        titles.update((row["id"], json.loads(row["meta"])["title"]) for row in pages)
        left_out[lang] = len(pages) - len(out[lang])
    return out, left_out, titles


# The 16 pages of warcfile.warc.gz, read one by one: 13 are junk, 3 are ordinary business
# pages that a curated crawl keeps (SOURCES.md calls the file "mostly Chinese spam/SEO pages").
# Keyed by WARC-Record-ID; the bench fails if the file holds a page not listed here.
WARCFILE_PAGES = {
    "c4c112a5": ("junk", "SEO page: a garbled keyword spliced into scraped news"),
    "8ed3a686": ("junk", "error page with a gambling-site ad"),
    "342e0cfd": ("junk", "lottery (六合彩) forum post list"),
    "bed28f39": ("junk", "lottery betting scam: QQ contact, deposits, tips"),
    "dda783c9": ("junk", "adult fiction"),
    "d83e05b0": ("junk", "adult site disclaimer and footer"),
    "7323c152": ("junk", "forum navigation (German cycling forum)"),
    "4a39d927": ("junk", "tipping-game navigation (German)"),
    "142fdccd": ("junk", "product listing with click counts"),
    "227065ee": ("junk", "lottery forum post list"),
    "dd19c4f1": ("junk", "job listing table"),
    "8b2d385d": ("junk", "lottery keywords spliced into news headlines"),
    "5caf7c30": ("junk", "adult video site"),
    "e9e41f63": ("ordinary", "a Moscow fire-safety contractor's services page"),
    "29666a04": ("ordinary", "a rubber-chemicals supplier's about page"),
    "2be52b4e": ("ordinary", "a Dutch gardener's services page"),
}


def warcfile_pages() -> dict[str, list[tuple[str, str]]]:
    """The warcfile's pages as Sieve's Common Crawl reader extracts them, by their label."""
    from pipelines.sources import commoncrawl

    path = CORPORA / "commoncrawl_warc" / "warcfile.warc.gz"
    out: dict[str, list[tuple[str, str]]] = {"junk": [], "ordinary": []}
    for doc, reason in commoncrawl.read(str(path), "spam"):
        if reason is None:
            label, _ = WARCFILE_PAGES[doc.id.split("/", 1)[1][:8]]
            out[label].append((doc.id, doc.text))
    return out


def generated_junk(spam: list[tuple[str, str]], seed: int = 0) -> dict[str, list]:
    rng = random.Random(seed)
    lorem = [(f"lorem/{k}", "\n\n".join(LOREM for _ in range(rng.randint(2, 8))))
             for k in range(10)]
    zh_keywords = sorted({w for _, t in spam for w in re.findall(f"[{CJK}]{{2,6}}", t[:400])})
    stuffing = []
    for k in range(10):
        pool = KEYWORDS_EN if k % 2 == 0 else zh_keywords[:40]
        words = [rng.choice(pool) for _ in range(rng.randint(150, 400))]
        joiner = " " if k % 2 == 0 else rng.choice(["", " ", "，"])
        lines = [joiner.join(words[i: i + 12]) for i in range(0, len(words), 12)]
        stuffing.append((f"keywords/{k}", "\n".join(lines)))
    symbols = [(f"symbols/{k}", "\n".join("".join(rng.choice(SYMBOLS) for _ in range(
        rng.randint(20, 80))) for _ in range(rng.randint(10, 40)))) for k in range(10)]
    return {"lorem ipsum": lorem, "keyword stuffing": stuffing, "symbol runs": symbols}


# ---- judging --------------------------------------------------------------------------------

def judge(docs: list[tuple[str, str]]) -> dict[str, tuple[str | None, str, tuple | None]]:
    """id -> (reason or None, language, the failed rule's (value, threshold) or None) under the
    default web rules."""
    import pyarrow as pa

    from pipelines.clean import Cleaner
    from pipelines.recipe import CleanConfig
    from pipelines.schema import ARROW_SCHEMA

    cfg = CleanConfig(source_kinds={"web": "commoncrawl"})
    table = pa.Table.from_pylist([{"id": i, "source": "web", "split": "train", "text": t,
                                   "meta": "{}"} for i, t in docs], schema=ARROW_SCHEMA)
    kept, rejected, _ = Cleaner(cfg, None).judge(table)
    out = {}
    for row in kept.to_pylist():
        out[row["id"]] = (None, json.loads(row["meta"])["language"], None)
    for row in rejected.to_pylist():
        meta = json.loads(row["meta"])
        out[row["id"]] = (row["reason"], meta.get("language", ""),
                          (meta.get("rule_value"), meta.get("rule_threshold")))
    return out


# List articles ("List of ...", "...の一覧", "...列表"): lines of names and links, not prose.
LIST_TITLE = re.compile(r"^Lists? of |一覧|列表$")


def datatrove_reasons(docs: list[tuple[str, str]], langs: dict[str, str] | None = None
                      ) -> dict[str, str | None] | None:
    """datatrove's decisions: with its published (English) defaults, or with `langs` (id ->
    Sieve's language), FineWeb-2's filtering step for each document whose language has
    FineWeb-2 values, the values Sieve applies (`languages.rules_language`), and the English
    defaults for the rest, as Sieve does."""
    if not BENCH_PYTHON.exists():
        return None
    from bench.filters import run_datatrove
    from pipelines import languages

    if langs is None:
        return run_datatrove(docs)["reasons"]
    table = json.loads(RULES.read_text(encoding="utf-8"))["languages"]
    values = {i: table.get(languages.rules_language(langs[i], text)) for i, text in docs}
    return run_datatrove(docs, values)["reasons"]


def compare(docs: list[tuple[str, str]], ours: dict, theirs: dict, langs: dict[str, str]
            ) -> tuple[float, list[dict]]:
    """The share of documents where both keep or both drop, and the others."""
    agree = sum((theirs[i] is None) == (ours[i][0] is None) for i, _ in docs)
    return round(agree / len(docs), 4), [
        {"id": i, "language": langs[i], "sieve": ours[i][0], "datatrove": theirs[i],
         "text": text[:160]} for i, text in docs if (ours[i][0] is None) != (theirs[i] is None)]


def words_per_doc(docs: list[tuple[str, str]], langs: dict[str, str]) -> tuple[float, float]:
    """Median words per document: split on whitespace, and by each document's language."""
    from pipelines import languages

    before = statistics.median(len(t.split()) for _, t in docs)
    after = statistics.median(len(languages.words(t, langs[i])) for i, t in docs)
    return before, after


# ---- CJK extraction -------------------------------------------------------------------------

def cjk_extraction() -> dict:
    import trafilatura

    import bench.extraction as ex
    from pipelines.sources.commoncrawl import decode_html
    from pipelines.sources.html_text import extract_main_text

    truth = json.loads((ZH_JA / "ground-truth.json").read_text(encoding="utf-8"))
    pages = [((ZH_JA / "htmls" / f"{k}.html").read_bytes(), v["content"])
             for k, v in sorted(truth.items())]
    for html_name, text_name in (("chinese_article.html", "chinese.txt"),
                                 ("japanese_article.html", "japanese.txt"),
                                 ("japanese_article2.html", "japanese2.txt")):
        pages.append(((ZH_JA / html_name).read_bytes(),
                      (ZH_JA / text_name).read_text(encoding="utf-8")))

    def shingles(text: str, n: int = 4) -> Counter:
        tokens = _CJK_TOKEN.findall(text or "")
        return Counter(tuple(tokens[i: i + n]) for i in range(max(1, len(tokens) - n + 1))
                       if tokens[i: i + n])

    extractors = {
        "sieve": lambda raw: extract_main_text(decode_html(raw)),
        "trafilatura (default)": lambda raw: trafilatura.extract(decode_html(raw)) or "",
        "trafilatura (favor_precision)": lambda raw: trafilatura.extract(
            decode_html(raw), favor_precision=True) or "",
    }
    saved, ex.shingles = ex.shingles, shingles
    try:
        rows = {name: ex.score([ex.page_counts(gold, f(raw)) for raw, gold in pages])
                for name, f in extractors.items()}
    finally:
        ex.shingles = saved
    return {"pages": len(pages), "metric": "Scrapinghub shingle metric, 4-grams of tokens: each "
            "Han/kana/Hangul character one token, other \\w+ runs one token", "rows": rows}


# ---- the table ------------------------------------------------------------------------------

def interval(hits: int, n: int) -> list[float]:
    """The Wilson score 95% interval of a share of n documents."""
    from scipy.stats import binomtest

    ci = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def main() -> None:
    gold_sh, boiler = scrapinghub()
    warcfile = warcfile_pages()
    spam = warcfile["junk"]
    wiki, disambiguation, titles = wikipedia_articles()
    good_groups = {"Scrapinghub gold": gold_sh, "zh/ja gold": zh_ja_gold(),
                   "Wikipedia en": wiki["en"], "Wikipedia zh": wiki["zh"],
                   "Wikipedia ja": wiki["ja"],
                   "ordinary pages (warcfile)": warcfile["ordinary"]}
    junk_groups = {"spam pages (warcfile)": spam, "navigation/boilerplate": boiler,
                   **generated_junk(spam)}
    everything = [d for g in (*good_groups.values(), *junk_groups.values()) for d in g]
    decisions = judge(everything)
    theirs = datatrove_reasons(everything)
    langs = {i: lang for i, (_, lang, _) in decisions.items()}
    fineweb2 = datatrove_reasons(everything, langs)
    # The Scrapinghub bodies split by language: English, and every other language.
    en = [d for d in gold_sh if langs[d[0]] == "en"]
    other = [d for d in gold_sh if langs[d[0]] != "en"]
    good_groups = {"Scrapinghub gold, en": en, "Scrapinghub gold, other": other,
                   **{k: v for k, v in good_groups.items() if k != "Scrapinghub gold"}}
    rows = []
    departures: dict[str, list] = {}  # from datatrove's English defaults
    departures_fw2: dict[str, list] = {}  # from FineWeb-2's filters per language
    for kind, groups in (("good", good_groups), ("junk", junk_groups)):
        for name, docs in groups.items():
            reasons = [decisions[i][0] for i, _ in docs]
            kept = sum(r is None for r in reasons)
            before, after = words_per_doc(docs, langs)
            hits = kept if kind == "good" else len(docs) - kept
            share = "kept_share" if kind == "good" else "dropped_share"
            row = {"group": name, "kind": kind, "documents": len(docs),
                   "languages": dict(Counter(langs[i] for i, _ in docs).most_common(4)),
                   share: round(hits / len(docs), 4),
                   # how sure a share of so few documents is: the Wilson 95% interval
                   f"{share}_95ci": interval(hits, len(docs)),
                   "words_per_doc_whitespace": before, "words_per_doc_language": after,
                   "reasons": dict(Counter(r for r in reasons if r).most_common()),
                   # each document decided against its label, with the rule and its values
                   "misses": [{"id": i, "title": titles.get(i), "reason": decisions[i][0],
                               "value_threshold": decisions[i][2], "language": langs[i],
                               "text": text[:120]} for i, text in docs
                              if (decisions[i][0] is None) == (kind == "junk")]}
            if name.startswith("Wikipedia"):
                lists = [i for i, _ in docs if LIST_TITLE.search(titles.get(i, ""))]
                row["list_articles"] = {"documents": len(lists), "kept": sum(
                    decisions[i][0] is None for i in lists)}
            if theirs is not None:
                row["agreement_with_datatrove"], departures[name] = compare(
                    docs, decisions, theirs, langs)
                row["agreement_with_fineweb2"], departures_fw2[name] = compare(
                    docs, decisions, fineweb2, langs)
                # what FineWeb-2's own filters keep of the good text, or drop of the junk
                peer = sum((fineweb2[i] is None) == (kind == "good") for i, _ in docs)
                row[f"fineweb2_{share}"] = round(peer / len(docs), 4)
            rows.append(row)
    dedup_path = REPO / "bench" / "results" / "dedup_quality_cjk.json"
    dedup = json.loads(dedup_path.read_text()) if dedup_path.exists() else None
    extraction = cjk_extraction()

    print(f"{'group':<26} {'docs':>5} {'good kept':>9} {'junk drop':>9} {'95% interval':>13} "
          f"{'datatrove':>9} {'FineWeb-2':>9} {'FW-2 share':>10} {'words ws':>8} "
          f"{'words lang':>10}")
    for r in rows:
        good = f"{r['kept_share']:.1%}" if "kept_share" in r else ""
        junk = f"{r['dropped_share']:.1%}" if "dropped_share" in r else ""
        low, high = r.get("kept_share_95ci") or r["dropped_share_95ci"]
        agree, fw2 = (f"{r[k]:.1%}" if k in r else "-" for k in (
            "agreement_with_datatrove", "agreement_with_fineweb2"))
        peer = r.get("fineweb2_kept_share", r.get("fineweb2_dropped_share"))
        peer = "-" if peer is None else f"{peer:.1%}"
        print(f"{r['group']:<26} {r['documents']:>5} {good:>9} {junk:>9} "
              f"{f'{low:.0%}-{high:.0%}':>13} {agree:>9} {fw2:>9} {peer:>10} "
              f"{r['words_per_doc_whitespace']:>8.0f} {r['words_per_doc_language']:>10.0f}")
    for r in rows:
        if r.get("list_articles", {}).get("documents"):
            lists = r["list_articles"]
            others = r["documents"] - lists["documents"]
            kept_others = r["documents"] - len(r["misses"]) - lists["kept"]
            print(f"{r['group']}: {lists['kept']} of {lists['documents']} list articles kept, "
                  f"{kept_others} of the {others} others ({kept_others / others:.1%})")
    if dedup:
        best = dedup["rows"][0]
        print(f"\nCJK near-duplicates ({dedup['documents']:,} zh/ja documents, J >= 0.8): "
              f"precision {best['precision_at_0.8']}, recall {best['recall_at_0.8']}, "
              f"orphans {best['orphans']}")
    print(f"CJK extraction ({extraction['pages']} zh/ja pages): " + ", ".join(
        f"{k} F1 {v['f1']}" for k, v in extraction["rows"].items()))
    for label, found in (("datatrove", departures), ("FineWeb-2", departures_fw2)):
        for name, items in found.items():
            if not items:
                continue
            by_class = Counter((d["sieve"] or "kept", d["datatrove"] or "kept") for d in items)
            print(f"\n{name}: {len(items)} departures from {label}: " + "; ".join(
                f"sieve {a} / {label} {b}: {n}" for (a, b), n in by_class.most_common(6)))
    result = {"bench": "multilingual", "command": "python bench/multilingual.py",
              "rules": "the default web rules (a Common Crawl source), each language's "
                       "thresholds (pipelines/data/language_rules.json, with Sieve's "
                       "departures: language_departures.json) and bad words (LDNOOBW, with "
                       "Sieve's gambling-spam terms: spam_words.json)",
              "rows": rows, "cjk_dedup": dedup and {k: dedup["rows"][0][k] for k in (
                  "precision_at_0.8", "recall_at_0.8", "orphans")} | {
                  "documents": dedup["documents"]},
              "cjk_extraction": extraction,
              "datatrove": "datatrove's Gopher repetition, Gopher quality, C4 and FineWeb "
                           "filters with their published (English) defaults"
              if theirs is not None else "not run (make bench-env)",
              "fineweb2": "datatrove running FineWeb-2's filtering step (fineweb-2-pipeline.py: "
                          "Gopher repetition, FineWeb quality, Gopher quality, no C4) with the "
                          "values of each document's language in language_rules.json, and the "
                          "English defaults above where a language has none, as Sieve does"
              if fineweb2 is not None else "not run (make bench-env)",
              "departures": {k: v[:40] for k, v in departures.items()},
              "departures_from_fineweb2": {k: v[:40] for k, v in departures_fw2.items()},
              "left_out": {"wikipedia_disambiguation_pages": disambiguation},
              "warcfile_pages": {k: {"label": v[0], "why": v[1]}
                                 for k, v in WARCFILE_PAGES.items()}}
    (REPO / "bench" / "results" / "multilingual.json").write_text(
        json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
