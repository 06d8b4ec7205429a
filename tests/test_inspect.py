"""`sieve inspect` against the demo build, in headless Chromium (Debian's, driven by
Playwright) and Firefox ESR (Debian's, driven by puppeteer-core over WebDriver BiDi): no console
errors, the page's stage totals equal the manifests, a reason opens real rejected documents with
their failing statistic, a duplicate pair is shown, what cleaning changed and the evaluation
n-gram of a decontaminated document are marked; served, every document pages from the row
groups in the files' order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import DEMO_RECIPE, REPO, SIEVE, free_port, run_sieve

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def rejected(folder: Path) -> pa.Table:
    files = sorted((folder / "rejected").glob("*.parquet"))
    return pa.concat_tables(pq.read_table(p) for p in files)


def open_page(url: str, check):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: `make test` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url)
            check(page)
            assert problems == []
        finally:
            browser.close()


def test_inspect_page_in_chromium(demo_build, tmp_path):
    root, summary = demo_build
    out = tmp_path / "inspect.html"
    run_sieve("inspect", str(root), str(DEMO_RECIPE), "--out", str(out))
    text = out.read_text(encoding="utf-8")
    assert "http://" not in text.split('<script type="application/json"')[0]  # nothing fetched
    clean = Path(summary["clean"]["path"])
    dedup = Path(summary["dedup"]["path"])
    clean_rejected = rejected(clean)

    def check(page):
        # Totals per stage are the manifests' own counters.
        for stage in ("ingest", "clean", "dedup", "tokenizer", "shard", "mix", "tasks"):
            row = page.locator(f"#stage-totals tr[data-stage={stage}]")
            assert int(row.get_attribute("data-in")) == summary[stage]["counters"]["in"]
            assert int(row.get_attribute("data-out")) == summary[stage]["counters"]["out"]
        # A clean reason opens its documents, each a real rejected row with its statistic.
        button = page.locator("button.reason[data-stage=clean]").first
        reason, source = button.get_attribute("data-reason"), button.get_attribute("data-source")
        button.click()
        assert page.locator("#documents").is_visible()
        card = page.locator("#doc-list article.doc").first
        doc_id = card.get_attribute("data-id")
        ids = clean_rejected.column("id").to_pylist()
        assert doc_id in ids
        row = clean_rejected.slice(ids.index(doc_id), 1).to_pylist()[0]
        assert row["reason"] == reason and row["source"] == source
        meta = json.loads(row["meta"])
        stat = card.locator(".stat").inner_text()
        assert f"{meta['rule_value']}" in stat and f"{meta['rule_threshold']}" in stat
        assert reason.split(":")[-1] in stat
        # Search narrows the sample; keyboard moves between tabs.
        page.fill("#f-search", "zzzz-no-such-text")
        assert page.locator("#doc-list article.doc").count() == 0
        page.locator("#tab-documents").press("ArrowRight")
        assert page.locator("#duplicates").is_visible()
        # A duplicate pair: the removed document and the one it was removed for.
        pair = page.locator("#duplicates [data-pair]").first
        assert "estimated Jaccard" in pair.inner_text() and "exact Jaccard" in pair.inner_text()
        removed_id = pair.locator("p").first.inner_text().removeprefix("removed: ")
        dup = rejected(dedup)
        dup_ids = dup.column("id").to_pylist()
        assert removed_id in dup_ids
        kept_id = json.loads(dup.column("meta")[dup_ids.index(removed_id)].as_py())["duplicate_of"]
        assert pair.locator("p").nth(1).inner_text() == f"kept: {kept_id}"
        assert page.locator("#duplicates [data-group=largest]").count() > 0
        assert page.locator("#duplicates [data-group=random] mark").count() > 0
        # A decontaminated document with its evaluation n-gram marked in its text.
        decon = page.locator("#duplicates article.doc").first
        gram = decon.locator(".ngram").inner_text().removeprefix("evaluation n-gram: ")
        row = dup.slice(dup_ids.index(decon.get_attribute("data-id")), 1).to_pylist()[0]
        assert row["reason"] == "decontaminated"
        assert json.loads(row["meta"])["matched_ngram"] == gram
        assert re.findall(r"\w+", decon.locator("mark").inner_text().lower()) == gram.split()
        # A kept document that cleaning changed: its removed lines struck through.
        page.locator("#tab-documents").click()
        page.select_option("#f-stage", "clean")
        page.select_option("#f-reason", "kept")
        page.fill("#f-search", "")
        changed = page.locator("#doc-list article.doc:has(del.removed)").first
        kept = {r["id"]: r for r in pq.read_table(clean / "docs").to_pylist()}
        edits = json.loads(kept[changed.get_attribute("data-id")]["meta"])["cleaning"]
        struck = changed.locator("del.removed").all_inner_texts()
        assert struck == [line for _, line in edits["removed_lines"]][:len(struck)]
        # The plots: a language opens its kept documents.
        page.locator("#tab-plots").click()
        assert page.locator("#plots img").count() >= 2
        page.locator("#plots .hbar button[data-value=en]").click()
        assert page.locator("#f-language").input_value() == "en"
        assert page.locator("#doc-list article.doc").count() > 0

    open_page(out.as_uri(), check)


@pytest.fixture
def served(demo_build):
    root, summary = demo_build
    port = free_port()
    server = subprocess.Popen([*SIEVE, "inspect", str(root), "--port", str(port)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, server.stdout.read()
                time.sleep(0.5)
        assert b"Sieve build" in body
        yield f"http://127.0.0.1:{port}/", summary
    finally:
        server.terminate()
        server.wait(timeout=10)


def api(url: str, **query) -> dict:
    with urllib.request.urlopen(f"{url}api/docs?{urllib.parse.urlencode(query)}") as resp:
        return json.loads(resp.read())


def test_served_page_reads_every_document_a_page_at_a_time(served):
    url, summary = served
    clean = Path(summary["clean"]["path"])
    kept = pa.concat_tables(pq.read_table(p, columns=["id", "source", "meta"])
                            for p in sorted((clean / "docs").glob("*.parquet")))
    ids = kept.column("id").to_pylist()
    # Kept documents in the files' order, any page; the total is the manifest's.
    first, deep = api(url, stage="clean", reason="kept", page=0), api(url, stage="clean",
                                                                      reason="kept", page=123)
    assert first["total"] == summary["clean"]["counters"]["out"] == len(ids)
    assert [d["id"] for d in first["docs"]] == ids[:10]
    assert [d["id"] for d in deep["docs"]] == ids[1230:1240]
    # One source's rejections of one reason: the rejected rows that have both.
    rejected_rows = rejected(clean).to_pylist()
    row = rejected_rows[0]
    want = [r["id"] for r in rejected_rows
            if r["reason"] == row["reason"] and r["source"] == row["source"]]
    got = api(url, stage="clean", reason=row["reason"], source=row["source"], page=0)
    assert got["total"] == len(want) and [d["id"] for d in got["docs"]] == want[:10]
    # By language (read from meta) and by text, across all stages' rows.
    german = [i for i, m in zip(ids, kept.column("meta").to_pylist(), strict=True)
              if json.loads(m)["language"] == "de"]
    pages = [api(url, stage="clean", reason="kept", language="de", page=k) for k in range(2)]
    assert [d["id"] for p in pages for d in p["docs"]] == german[:20]
    found = api(url, stage="dedup", q="touchdown")
    dedup = Path(summary["dedup"]["path"])
    texts = {r["id"]: r["text"] for sub in ("docs", "rejected")
             for f in sorted((dedup / sub).glob("*.parquet"))
             for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}
    assert found["total"] == sum("touchdown" in t.lower() for t in texts.values()) > 0
    assert all("touchdown" in texts[d["id"]].lower() for d in found["docs"])
    bad = urllib.request.Request(f"{url}api/docs?stage=nope")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad)
    assert err.value.code == 400

    def check(page):
        row = page.locator("#stage-totals tr[data-stage=dedup]")
        assert int(row.get_attribute("data-out")) == summary["dedup"]["counters"]["out"]
        page.locator("#tab-documents").click()
        page.select_option("#f-reason", "kept")
        page.wait_for_function("document.getElementById('doc-count').textContent"
                               f".startsWith({json.dumps(f'{len(ids):,}')})")
        page.locator("#next").click()
        page.wait_for_function("document.getElementById('page-no').textContent"
                               ".startsWith('page 2 of')")
        assert page.locator("#doc-list article.doc").first.get_attribute("data-id") == ids[10]

    open_page(url, check)


def test_inspect_page_in_firefox(demo_build, tmp_path):
    """The same page in Debian's Firefox ESR, by keyboard: Enter on a reason, ArrowRight
    between tabs."""
    root, summary = demo_build
    node, script = shutil.which("node"), REPO / "tests" / "browser" / "firefox.mjs"
    if node is None or not (script.parent / "node_modules" / "puppeteer-core").is_dir():
        pytest.fail("node or puppeteer-core is missing: `make test` installs them")
    out = tmp_path / "inspect.html"
    run_sieve("inspect", str(root), str(DEMO_RECIPE), "--out", str(out))
    proc = subprocess.run([node, str(script), out.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["version"].startswith("firefox/") and result["errors"] == []
    assert {s: (n_in, n_out) for s, n_in, n_out in result["totals"]} == {
        s: (summary[s]["counters"]["in"], summary[s]["counters"]["out"])
        for s in ("ingest", "clean", "dedup", "tokenizer", "shard", "mix", "tasks")}
    clean = rejected(Path(summary["clean"]["path"])).to_pylist()
    row = next(r for r in clean if r["id"] == result["reason"]["id"])
    assert (row["reason"], row["source"]) == (result["reason"]["reason"],
                                              result["reason"]["source"])
    assert str(json.loads(row["meta"])["rule_value"]) in result["reason"]["stat"]
    dedup = rejected(Path(summary["dedup"]["path"])).to_pylist()
    removed = result["pair"]["removed"].removeprefix("removed: ")
    keeper = json.loads(next(r for r in dedup if r["id"] == removed)["meta"])["duplicate_of"]
    assert result["pair"]["kept"] == f"kept: {keeper}"
    assert result["focused"] == "tab-duplicates"


def test_inspect_names_a_stage_that_was_never_built(tmp_path):
    proc = run_sieve("inspect", str(tmp_path), str(DEMO_RECIPE), check=False)
    assert proc.returncode == 2 and "is not built" in proc.stderr
