"""`sieve inspect` against the demo build, in headless Chromium (Debian's, driven by
Playwright): no console errors, the page's stage totals equal the manifests, a reason opens real
rejected documents with their failing statistic, and a duplicate pair is shown."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
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
        for stage in ("ingest", "clean", "dedup", "tokenizer", "shard", "tasks"):
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
        assert pair.locator("mark").count() > 0
        page.locator("#tab-plots").click()
        assert page.locator("#plots img").count() >= 2

    open_page(out.as_uri(), check)


def test_inspect_serves_the_page_on_localhost(demo_build, tmp_path):
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

        def check(page):
            row = page.locator("#stage-totals tr[data-stage=dedup]")
            assert int(row.get_attribute("data-out")) == summary["dedup"]["counters"]["out"]

        open_page(f"http://127.0.0.1:{port}/", check)
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_inspect_names_a_stage_that_was_never_built(tmp_path):
    proc = run_sieve("inspect", str(tmp_path), str(DEMO_RECIPE), check=False)
    assert proc.returncode == 2 and "is not built" in proc.stderr
