"""How fast `sieve inspect`'s page is on a large build, in headless Chromium; and the README's
screenshots of each view.

    python bench/inspect_page.py --docs 100000        # build (cached), page, open, page through
    python bench/inspect_page.py --screenshots out     # screenshots of the demo build -> docs/

The benchmark builds `--docs` documents of real text (bench/scale_corpus.py, as bench/scale.py
does) up to the card, times `sieve inspect` writing the page, then in Debian's Chromium: the
page's load until the overview table is drawn, one page of documents (Next), opening a reason's
documents from the overview, and the duplicates tab. Best of `--repeat` loads. Then served
(`sieve inspect ROOT --port N`, every document read from its row groups): the server's start
until it answers, and `/api/docs` pages: the first and the 5,000th page of kept documents, a
reason's first page, a language's first and second page, a text search, and Next in the
browser. Prints a table and writes `bench/results/inspect_page.json` (`--out` elsewhere).
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.scale import RECIPE  # noqa: E402
from bench.scale_corpus import write_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SIEVE = str(REPO / ".venv" / "bin" / "sieve")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def browser(p):
    return p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)


def timings(url: str, repeat: int) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    best: dict[str, float] = {}
    with sync_playwright() as p:
        b = browser(p)
        for _ in range(repeat):
            page = b.new_page()
            t0 = time.perf_counter()
            page.goto(url)
            page.wait_for_selector("#stage-totals tr[data-stage=dedup]")
            result = {"open_s": time.perf_counter() - t0}
            page.locator("#tab-documents").click()
            before = page.locator("#page-no").inner_text()
            t0 = time.perf_counter()
            page.locator("#next").click()
            page.wait_for_function(f"document.getElementById('page-no').textContent !== "
                                   f"{json.dumps(before)}")
            result["next_page_s"] = time.perf_counter() - t0
            page.locator("#tab-overview").click()
            t0 = time.perf_counter()
            page.locator("button.reason").first.click()
            page.wait_for_selector("#doc-list article.doc")
            result["open_reason_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            page.locator("#tab-duplicates").click()
            page.wait_for_selector("#duplicates", state="visible")
            result["duplicates_tab_s"] = time.perf_counter() - t0
            for k, v in result.items():
                best[k] = round(min(best.get(k, v), v), 3)
            page.close()
        b.close()
    return best


def _get(url: str) -> tuple[float, dict]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as resp:
        found = json.loads(resp.read())
    return time.perf_counter() - t0, found


def served_timings(root: Path, recipe: Path, port: int = 8799) -> dict[str, float]:
    """The server's start, then single requests (the first of each is the one a user waits
    for: nothing cached) and Next in Chromium."""
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    server = subprocess.Popen([SIEVE, "inspect", str(root), str(recipe), "--port", str(port)],
                              cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2).read()
                break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("sieve inspect --port exited") from None
                time.sleep(0.2)
        result = {"serve_start_s": time.perf_counter() - t0}
        api = url + "api/docs?"
        first_reason = None
        for name, query in [
                ("api_kept_page_1_s", {"stage": "clean", "reason": "kept", "page": 0}),
                ("api_kept_page_5000_s", {"stage": "clean", "reason": "kept", "page": 4999}),
                ("api_language_page_1_s", {"stage": "clean", "language": "de", "page": 0}),
                ("api_language_page_2_s", {"stage": "clean", "language": "de", "page": 1}),
                ("api_search_s", {"stage": "dedup", "q": "touchdown", "page": 0}),
                ("api_dedup_reason_s", {"stage": "dedup", "reason": "duplicate_minhash",
                                        "page": 0})]:
            result[name], found = _get(api + urllib.parse.urlencode(query))
            if name == "api_kept_page_1_s":
                first_reason = found["docs"][0]["id"]
        assert first_reason
        with sync_playwright() as p:
            b = browser(p)
            page = b.new_page()
            page.goto(url)
            page.locator("#tab-documents").click()
            page.select_option("#f-reason", "kept")
            page.wait_for_function("document.getElementById('page-no').textContent"
                                   ".startsWith('page 1 of')")
            t0 = time.perf_counter()
            page.locator("#next").click()
            page.wait_for_function("document.getElementById('page-no').textContent"
                                   ".startsWith('page 2 of')")
            result["served_next_page_s"] = time.perf_counter() - t0
            b.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {k: round(v, 3) for k, v in result.items()}


def screenshots(root: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_file = out / ".inspect.html"
    subprocess.run([SIEVE, "inspect", root, str(REPO / "recipes" / "demo.toml"), "--out",
                    str(page_file)], check=True, cwd=REPO)
    with sync_playwright() as p:
        b = browser(p)
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_file.as_uri())
        page.screenshot(path=str(out / "inspect-overview.png"), full_page=False)
        page.locator("button.reason[data-stage=clean]").first.click()
        page.screenshot(path=str(out / "inspect-documents.png"))
        page.select_option("#f-stage", "clean")
        page.select_option("#f-reason", "kept")
        page.locator("#doc-list article.doc:has(del.removed)").first.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "inspect-cleaning.png"))
        page.locator("#tab-duplicates").click()
        page.locator("#duplicates [data-group=random] mark").first.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "inspect-duplicates.png"))
        page.locator("#decontaminated").scroll_into_view_if_needed()
        page.screenshot(path=str(out / "inspect-decontaminated.png"))
        page.locator("#tab-plots").click()
        page.screenshot(path=str(out / "inspect-plots.png"))
        b.close()
    page_file.unlink()
    print(f"wrote {out}/inspect-*.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".scale")
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "inspect_page.json")
    parser.add_argument("--screenshots", metavar="ROOT",
                        help="screenshots of the demo build at ROOT into docs/ instead")
    args = parser.parse_args()
    if args.screenshots:
        (REPO / "docs").mkdir(exist_ok=True)
        screenshots(args.screenshots, REPO / "docs")
        return
    corpus = args.work / f"{args.docs}-{args.seed}"
    write_corpus(args.docs, args.seed, corpus)
    recipe = args.work / f"inspect-{args.docs}.toml"
    recipe.write_text(RECIPE.format(docs=args.docs, corpus=corpus).replace(
        'name = "scale"', 'name = "inspect"'))
    root = args.work / f"inspect-root-{args.docs}"
    t0 = time.perf_counter()
    subprocess.run([SIEVE, "build", str(recipe), "--root", str(root), "--until", "card",
                    "--quiet"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    build_s = time.perf_counter() - t0
    html = root / "inspect.html"
    t0 = time.perf_counter()
    subprocess.run([SIEVE, "inspect", str(root), str(recipe), "--out", str(html)], check=True,
                   cwd=REPO, stdout=subprocess.DEVNULL)
    write_s = time.perf_counter() - t0
    times = timings(html.as_uri(), args.repeat)
    served = served_timings(root, recipe)
    pages = [v for k, v in served.items() if k.startswith("api_") or k == "served_next_page_s"]
    result = {"benchmark": "inspect_page", "docs": args.docs, "build_s (cached if rerun)":
              round(build_s, 1), "write_page_s": round(write_s, 2),
              "page_mb": round(html.stat().st_size / 1e6, 2), **times, **served,
              "goals": {"open_s <= 3": times["open_s"] <= 3,
                        "next_page_s <= 1": times["next_page_s"] <= 1,
                        "served pages <= 1 s": max(pages) <= 1},
              "command": f"python bench/inspect_page.py --docs {args.docs}"}
    print(f"{'measure':<22} {'value':>10}")
    for k, v in result.items():
        if isinstance(v, int | float):
            print(f"{k:<22} {v:>10}")
    print(f"goals: {result['goals']}")
    out = args.out
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
