"""Sieve's whole build against datatrove's, end to end, side by side in one run, one core each.

    python bench/e2e_vs_datatrove.py [--docs 100000]

The corpus of bench/scale.py (real paragraphs, JSONL.gz). Sieve: `sieve build --until shard`
with one worker (ingest, clean with language ID, dedup, tokenizer training, shard). datatrove
0.10.1 in the bench environment (`make bench-env`): the pipeline of bench/_datatrove_e2e.py
(reader, language ID, Gopher repetition, Gopher quality, C4, FineWeb, MinHash's four stages,
tokenization with the tokenizer Sieve trained). Both run as subprocesses whose memory is sampled
with their children every 0.25 s. datatrove trains no tokenizer: Sieve's figure includes its
tokenizer training, datatrove's does not. Prints a table and writes
bench/results/e2e_vs_datatrove.json.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

from bench.scale import RECIPE, run_build, tree_rss  # noqa: E402
from bench.scale_corpus import write_corpus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"


def run_datatrove(corpus: Path, work: Path, tokenizer_json: Path) -> dict:
    from pipelines import langid

    command = [str(BENCH_PYTHON), str(REPO / "bench" / "_datatrove_e2e.py"), str(corpus),
               str(work), langid._default_path(), str(tokenizer_json)]
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    handle, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, sum(tree_rss(handle)[0].values()))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.25)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"datatrove failed:\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result.update({"wall_seconds": round(time.perf_counter() - started, 1),
                   "peak_rss_mb": round(peak / 2**20)})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=REPO / "bench" / ".scale")
    args = parser.parse_args()
    if not BENCH_PYTHON.exists():
        raise SystemExit("needs the bench environment: make bench-env")
    corpus = args.work / f"{args.docs}-{args.seed}"
    write_corpus(args.docs, args.seed, corpus)
    recipe = args.work / f"scale-{args.docs}.toml"
    recipe.write_text(RECIPE.format(docs=args.docs, corpus=corpus))
    root = args.work / f"root-e2e-{args.docs}"
    shutil.rmtree(root, ignore_errors=True)
    print(f"Sieve: {args.docs:,} documents, 1 worker ...", flush=True)
    sieve = run_build(recipe, root, 1)
    tokenizer = next((root / "tokenizer").glob("*/hf/tokenizer.json"))
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        print("datatrove: the same corpus, 1 task ...", flush=True)
        datatrove = run_datatrove(corpus, Path(work), tokenizer)
    shutil.rmtree(root, ignore_errors=True)
    sieve_seconds = sum(s["seconds"] for s in sieve["stages"].values())
    sieve_peak = max(s["peak_rss_mb"] for s in sieve["stages"].values())
    rows = [{"tool": "sieve build --until shard (1 worker)", "seconds": round(sieve_seconds, 1),
             "docs_per_s": round(args.docs / sieve_seconds), "peak_rss_mb": sieve_peak,
             "kept_after_dedup": sieve["kept_after_dedup"], "steps": {
                 k: v["seconds"] for k, v in sieve["stages"].items()}},
            {"tool": "datatrove 0.10.1 (1 task)", "seconds": datatrove["seconds"],
             "docs_per_s": round(args.docs / datatrove["seconds"]),
             "peak_rss_mb": datatrove["peak_rss_mb"],
             "kept_after_dedup": datatrove["kept_after_dedup"], "steps": datatrove["steps"]}]
    print(f"\n{'tool':<40} {'seconds':>8} {'docs/s':>7} {'peak RSS':>9} {'kept':>8}")
    for r in rows:
        print(f"{r['tool']:<40} {r['seconds']:>8.1f} {r['docs_per_s']:>7,} "
              f"{r['peak_rss_mb']:>6,} MB {r['kept_after_dedup']:>8,}")
    speedup = round(datatrove["seconds"] / sieve_seconds, 1)
    print(f"\nSieve is {speedup}x datatrove end to end")
    out = REPO / "bench" / "results" / "e2e_vs_datatrove.json"
    out.write_text(json.dumps({
        "bench": "e2e_vs_datatrove", "command": "python bench/e2e_vs_datatrove.py "
        + " ".join(sys.argv[1:]), "docs": args.docs, "rows": rows, "speedup": speedup,
        "datatrove_kept_after_filters": datatrove["kept_after_filters"],
        "sieve_kept_after_clean": sieve["stages"]["dedup"]["docs_in"]}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
