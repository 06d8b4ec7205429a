"""Main-text extraction quality and speed on the Scrapinghub article-extraction benchmark.

    python bench/extraction.py

181 real news pages with human-checked article bodies (../shared/corpora/
html_extraction_scrapinghub). Metric: the benchmark's published one, re-implemented here: per page,
multisets of word 4-gram shingles (case-sensitive `\\w+` tokens) of the gold and the extracted text
give tp/fp/fn, normalised to sum to 1; precision is averaged over pages with tp + fp > 0, recall
over pages with tp + fn > 0 (a page with neither fp nor fn scores 1, one with no tp 0), and F1 is
computed from the two averages. Pages/s is measured on one core, decoding included, for every
extractor side by side in one run. resiliparse runs in the bench environment (`make bench-env`).
Writes bench/results/extraction.json.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"
BENCH = REPO.parent / "shared" / "corpora" / "html_extraction_scrapinghub"
_TOKEN = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> Counter:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i: i + n]) for i in range(max(1, len(tokens) - n + 1))
                   if tokens[i: i + n])


def page_counts(gold: str, extracted: str) -> tuple[float, float, float]:
    g, e = shingles(gold), shingles(extracted)
    tp = sum((g & e).values())
    fp = sum((e - g).values())
    fn = sum((g - e).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def _precision(tp: float, fp: float, fn: float) -> float:
    if fp == 0 and fn == 0:
        return 1.0
    return 0.0 if tp == 0 and fp == 0 else tp / (tp + fp)


def _recall(tp: float, fp: float, fn: float) -> float:
    if fp == 0 and fn == 0:
        return 1.0
    return 0.0 if tp == 0 and fn == 0 else tp / (tp + fn)


def score(counts: list[tuple[float, float, float]]) -> dict[str, float]:
    precisions = [_precision(*c) for c in counts if c[0] + c[1] > 0]
    recalls = [_recall(*c) for c in counts if c[0] + c[2] > 0]
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r), 4)}


def load_pages() -> list[tuple[str, bytes, str]]:
    truth = json.loads((BENCH / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key, gold in sorted(truth.items()):
        raw = gzip.decompress((BENCH / "html" / f"{key}.html.gz").read_bytes())
        pages.append((key, raw, gold["articleBody"]))
    return pages


def extractors() -> dict[str, Callable[[bytes], str]]:
    import trafilatura

    from pipelines.sources.commoncrawl import decode_html, extract_main_text

    return {
        "trafilatura 2.3 (default)": lambda raw: trafilatura.extract(decode_html(raw)) or "",
        "trafilatura (favor_precision)": lambda raw: trafilatura.extract(
            decode_html(raw), favor_precision=True) or "",
        "sieve (pipelines.sources.commoncrawl)": lambda raw: extract_main_text(decode_html(raw)),
    }


def resiliparse_outputs(pages: list[tuple[str, bytes, str]]) -> tuple[list[str], float]:
    """resiliparse runs in the bench environment (`make bench-env`); the decoding it is given is
    timed here and added to its CPU seconds, as the other extractors decode inside their row."""
    from pipelines.sources.commoncrawl import decode_html

    start = time.process_time()
    htmls = [decode_html(raw) for _, raw, _ in pages]
    decode_seconds = time.process_time() - start
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pages.json"
        path.write_text(json.dumps(htmls), encoding="utf-8")
        proc = subprocess.run([str(BENCH_PYTHON), str(REPO / "bench" / "_resiliparse_extract.py"),
                               str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"resiliparse failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["outputs"], out["cpu_seconds"] + decode_seconds


def main() -> None:
    pages = load_pages()
    if not BENCH_PYTHON.exists():
        raise SystemExit("the bench environment is missing: run `make bench-env`")
    runs: dict[str, Callable[[], tuple[list[str], float]]] = {}
    for name, extract in extractors().items():
        def run(extract=extract) -> tuple[list[str], float]:
            start = time.process_time()
            outputs = [extract(raw) for _, raw, _ in pages]
            return outputs, time.process_time() - start
        runs[name] = run
    runs["resiliparse 2.0 (main_content)"] = lambda: resiliparse_outputs(pages)
    rows = []
    for name, run in runs.items():
        outputs, seconds = run()
        metrics = score([page_counts(gold, out) for (_, _, gold), out in
                         zip(pages, outputs, strict=True)])
        rows.append({"extractor": name, **metrics, "cpu_seconds": round(seconds, 2),
                     "pages_per_s": round(len(pages) / seconds, 1)})
    base = rows[0]["pages_per_s"]
    print(f"{len(pages)} pages, one core (CPU time)\n")
    print(f"{'extractor':<40} {'precision':>9} {'recall':>7} {'F1':>6} {'pages/s':>8} {'speed':>6}")
    for r in rows:
        print(f"{r['extractor']:<40} {r['precision']:>9.3f} {r['recall']:>7.3f} {r['f1']:>6.3f} "
              f"{r['pages_per_s']:>8.1f} {r['pages_per_s'] / base:>5.1f}x")
    (REPO / "bench" / "results" / "extraction.json").write_text(json.dumps(
        {"bench": "extraction", "command": "python bench/extraction.py", "pages": len(pages),
         "rows": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
