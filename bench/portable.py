"""The demo build on Beam's portable job API against the in-process runner, in one run.

    python bench/portable.py [--recipe recipes/demo.toml]

Three builds of the same recipe up to the card, each a fresh root and a `sieve build` subprocess
as a user runs it: the in-process runner with 1 worker and with 2 (multi-processing), and the
portable runner (a local job service and an external pool of 2 SDK worker processes, which
Sieve starts and stops: pipelines/runners.py). Records the wall time and each stage's seconds,
checks that every stage has the same key, counters and files (names, rows, sha256) as the first
build, prints a table and writes bench/results/portable.json.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RUNS = [("direct, 1 worker", ["--runner", "direct", "--workers", "1"]),
        ("direct, 2 workers", ["--runner", "direct", "--workers", "2"]),
        ("portable, 2 external workers", ["--runner", "portable", "--workers", "2"])]


def build(recipe: Path, root: Path, args: list[str]) -> tuple[float, dict]:
    command = [str(REPO / ".venv" / "bin" / "sieve"), "build", str(recipe), "--root", str(root),
               "--json", "--quiet", *args]
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-4000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def manifest(summary: dict, stage: str) -> dict:
    return json.loads((Path(summary[stage]["path"]) / "manifest.json").read_text("utf-8"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", type=Path, default=REPO / "recipes" / "demo.toml")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "portable.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sieve-bench-portable-"))
    results, first = [], None
    try:
        for label, extra in RUNS:
            print(f"building {args.recipe.name}: {label} ...", flush=True)
            wall, summary = build(args.recipe.resolve(), work / label.replace(" ", "_"), extra)
            first = first or summary
            same = all(summary[s]["key"] == first[s]["key"]
                       and summary[s]["counters"] == first[s]["counters"]
                       and (s == "card" or manifest(summary, s)["files"]
                            == manifest(first, s)["files"]) for s in first)
            results.append({
                "run": label, "args": extra, "wall_seconds": round(wall, 1),
                "stage_seconds": {s: manifest(summary, s)["seconds"] for s in summary},
                "runner": manifest(summary, "ingest")["runner"],
                "same_keys_counters_and_files_as_first": same})
            if not same:
                raise SystemExit(f"{label}: outputs differ from {RUNS[0][0]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stages = list(results[0]["stage_seconds"])
    print(f"\n{'run':32s} {'wall s':>7s} " + " ".join(f"{s:>9s}" for s in stages))
    for r in results:
        print(f"{r['run']:32s} {r['wall_seconds']:7.1f} "
              + " ".join(f"{r['stage_seconds'][s]:9.1f}" for s in stages))
    record = {"recipe": str(args.recipe.relative_to(REPO) if args.recipe.is_relative_to(REPO)
                            else args.recipe),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d"), "runs": results}
    args.out.write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
