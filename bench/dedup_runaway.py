"""A runaway LSH bucket: one template page in N near copies, through `dedup.link_groups`.

    python bench/dedup_runaway.py [--sizes 2000 8000 16000 64000] [--against CHECKOUT]

Every copy shares every band with the others, so all N land in one bucket of every band. The
verification links each member to its better-ranked members whose signatures agree in at least
`threshold` of the permutations, at most `max_links_per_doc` of them. Built as every
(better, worse) pair of the bucket first, that is N(N-1)/2 pairs: 200 million at 20,000 copies.
Each size runs in a fresh process (its peak RSS is its own); `--against` runs the same
measurement with another checkout's `pipelines` (a `git worktree` of an earlier commit), side
by side. Prints a table and writes bench/results/dedup_runaway.json.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PERMUTATIONS = 256
VARIED = 10  # permutations each copy draws afresh: estimated Jaccard about 0.96


def measure(copies: int) -> dict:
    """In this process: link one bucket of `copies` near copies; seconds, links, peak RSS."""
    import numpy as np

    from pipelines import dedup

    peak = _load("bench_peak", REPO / "bench" / "_peak.py")
    peak_rss_mb, reset_peak_rss = peak.peak_rss_mb, peak.reset_peak_rss
    from pipelines.recipe import DedupConfig

    assert Path(dedup.__file__).resolve().is_relative_to(Path(sys.path[0]).resolve())
    rng = np.random.default_rng(0)
    sigs = np.repeat(rng.integers(0, 2**32, (1, PERMUTATIONS), dtype=np.uint32), copies, axis=0)
    sigs[:, :VARIED] = rng.integers(0, 2**32, (copies, VARIED), dtype=np.uint32)
    of = dedup.Docs([f"page/{i:07d}" for i in range(copies)], np.ones(copies, np.int8),
                    np.zeros(copies, np.int32), -np.full(copies, 3000),
                    np.arange(2 * copies, dtype=np.uint64).reshape(copies, 2),
                    np.zeros(copies, np.int32))
    groups = dedup.Groups(np.arange(copies, dtype=np.int32), np.array([copies]), of)
    by_key = dict(zip(dedup.key_bytes(of.exact), sigs, strict=True))
    cfg = DedupConfig()
    dedup.link_groups(dedup.Groups(groups.rows[:3], np.array([3]), of), by_key, cfg)  # compile
    reset_peak_rss()
    before = peak_rss_mb()
    started = time.perf_counter()
    links = dedup.link_groups(groups, by_key, cfg)
    return {"copies": copies, "pairs_if_all": copies * (copies - 1) // 2, "links": len(links),
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mb_above_start": round(peak_rss_mb() - before)}


def _load(name: str, path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(copies: int, checkout: Path, timeout: float) -> dict:
    """`measure` in a fresh process whose `pipelines` is the checkout's."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    code = ("import sys, json, importlib.util; "
            f"spec = importlib.util.spec_from_file_location('runaway', {__file__!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            f"sys.path.insert(0, {str(checkout)!r}); print(json.dumps(m.measure({copies})))")
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=timeout, cwd=checkout)
    except subprocess.TimeoutExpired:
        return {"copies": copies, "error": f"over {timeout:.0f} s"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return {"copies": copies, "error": last[-160:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 16000, 64000])
    parser.add_argument("--against", type=Path, help="another checkout (an earlier commit)")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--against-max", type=int, default=16000,
                        help="largest bucket for --against: all pairs of 64,000 copies would "
                             "take about 2 billion pairs of int64 (tens of GB)")
    parser.add_argument("--out", type=Path,
                        default=REPO / "bench" / "results" / "dedup_runaway.json")
    args = parser.parse_args()
    checkouts = {"this": REPO}
    if args.against:
        checkouts["against"] = args.against.resolve()
    rows = []
    for copies in args.sizes:
        for name, checkout in checkouts.items():
            if name == "against" and copies > args.against_max:
                continue
            row = {"code": name, **run(copies, checkout, args.timeout)}
            rows.append(row)
            if "error" in row:
                print(f"{name:<8} {copies:>7,} copies: {row['error']}", flush=True)
            else:
                print(f"{name:<8} {copies:>7,} copies: {row['links']:>8,} links "
                      f"{row['seconds']:>8.2f} s {row['peak_rss_mb_above_start']:>7,} MB "
                      f"(all pairs: {row['pairs_if_all']:,})", flush=True)

    def commit(path: Path) -> str:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=path,
                              capture_output=True, text=True).stdout.strip()

    result = {"bench": "dedup_runaway", "command": "python bench/dedup_runaway.py " + " ".join(
        sys.argv[1:]), "permutations": PERMUTATIONS, "varied_permutations": VARIED,
        "code": {name: commit(path) for name, path in checkouts.items()}, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
