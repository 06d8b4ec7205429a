"""Dedup quality on a labelled near-duplicate benchmark (see bench/dedup_corpus.py).

    python bench/dedup_quality.py [--docs 20000] [--corpus english|cjk]

`--corpus cjk` is the same benchmark over real Chinese and Japanese text (bench/dedup_corpus.py
`build_cjk_corpus`, 10,000 documents by default: edits by words), with a row for the shingles
before word splitting (a `\\w+` run is a whole clause there), and writes
bench/results/dedup_quality_cjk.json.

Runs Sieve's dedup stage (exact + MinHash LSH, word 5-grams, 14 bands x 8 rows, the recipe
defaults) with and without candidate verification, scores what each removes against the exact
truth, prints a table and writes bench/results/dedup_quality.json.
Goal (issue 5): precision@0.8 >= 0.95, recall@0.8 >= 0.95, zero orphans.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

from bench.dedup_corpus import build_cjk_corpus, build_corpus, score, similar_pairs  # noqa: E402


def corpus_folder(corpus: list[tuple[str, str]], folder: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from pipelines.schema import ARROW_SCHEMA, Document

    (folder / "docs").mkdir(parents=True)
    rows = [Document(id=i, source=i.split("/")[0], split="train", text=t).to_row()
            for i, t in corpus]
    pq.write_table(pa.Table.from_pylist(rows, schema=ARROW_SCHEMA),
                   folder / "docs" / "part-00000-of-00001.parquet")
    return folder


def run_sieve(corpus: list[tuple[str, str]], workdir: Path, **overrides) -> tuple[set[str], float]:
    import pyarrow.parquet as pq

    from pipelines import dedup
    from pipelines.manifest import RunOptions
    from pipelines.recipe import DedupConfig

    src = workdir / "clean"
    if not src.exists():
        corpus_folder(corpus, src)
    out = Path(tempfile.mkdtemp(dir=workdir))
    cfg = DedupConfig(decontaminate=False, **overrides)
    start = time.perf_counter()
    dedup.run(cfg, {"clean": src}, out, RunOptions(workers=1))
    seconds = time.perf_counter() - start
    removed = set(pq.read_table(out / "rejected", columns=["id"]).column("id").to_pylist())
    return removed, seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int)
    parser.add_argument("--corpus", choices=("english", "cjk"), default="english")
    args = parser.parse_args()
    cjk = args.corpus == "cjk"
    args.docs = args.docs or (10_000 if cjk else 20_000)
    corpus = build_cjk_corpus(args.docs) if cjk else build_corpus(args.docs)
    start = time.perf_counter()
    pairs = similar_pairs(corpus)
    truth_s = time.perf_counter() - start
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        from pipelines.recipe import DedupConfig

        threshold = DedupConfig().threshold
        runs = [(f"sieve, verified (threshold {threshold})", {}, False),
                ("sieve, unverified", {"verify": False}, False)]
        if cjk:
            runs.append(("sieve, \\w+ runs (no splitter)", {}, True))
        for label, overrides, unsplit in runs:
            from pipelines import minhash

            split = minhash.split_unspaced
            if unsplit:  # the shingles as they were before words per language
                minhash.split_unspaced = lambda encoded: encoded
            try:
                removed, seconds = run_sieve(corpus, Path(tmp), **overrides)
            finally:
                minhash.split_unspaced = split
            rows.append({"run": label, "seconds": round(seconds, 2),
                         "docs_per_s": round(len(corpus) / seconds),
                         **score(corpus, pairs, removed)})
    print(f"{len(corpus):,} documents; truth: {len(pairs):,} pairs at J>=0.5 "
          f"({sum(j >= 0.8 for j in pairs.values()):,} at J>=0.8), exact, in {truth_s:.1f} s\n")
    header = (f"{'run':<34} {'removed':>8} {'prec@0.8':>9} {'rec@0.8':>8} {'orphans':>8} "
              f"{'seconds':>8} {'docs/s':>7}")
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['run']:<34} {r['removed']:>8,} {r['precision_at_0.8']:>9.4f} "
              f"{r['recall_at_0.8']:>8.4f} {r['orphans']:>8,} {r['seconds']:>8.1f} "
              f"{r['docs_per_s']:>7,}")
    name = "dedup_quality_cjk" if cjk else "dedup_quality"
    result = {"bench": name, "command": f"python bench/dedup_quality.py --docs {args.docs}"
              f" --corpus {args.corpus}", "documents": len(corpus),
              "truth_pairs_0.5": len(pairs), "rows": rows}
    out = REPO / "bench" / "results" / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
