"""MinHash signatures per second on one core: Sieve's compiled kernel against datasketch.

    python bench/minhash.py [--docs 20000] [--reference-docs 1000] [--trials 3]

Text: the documents of bench/dedup_corpus.py (real text from ../shared/corpora with injected
near duplicates). Word 5-grams, 112 permutations (14 bands x 8 rows), seed 42, one core.
  sieve             : `MinHasher.signatures` on batches of 4,096 documents (what the dedup stage
                      does), the compiled kernel included its text-to-code-points step;
  datasketch        : `datasketch.MinHash` (scheme "affine32") over the same shingles with the same
                      hash function (`pipelines.minhash.shingle_hash`): the reference signatures;
  datasketch sha1   : `datasketch.MinHash` as most users call it, shingles hashed with its default
                      SHA-1 hash function (different signatures, same work).
datasketch is measured on the first --reference-docs documents (it is slow); every one of its
signatures must equal Sieve's, or the bench fails. Best of --trials. Prints a table and writes
bench/results/minhash.json.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from datasketch import MinHash  # noqa: E402

from bench.dedup_corpus import build_corpus  # noqa: E402
from pipelines.minhash import MinHasher, words  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
BATCH = 4096


def best_of(trials: int, fn) -> float:
    times = []
    for _ in range(trials):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--reference-docs", type=int, default=1_000)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    texts = [t for _, t in build_corpus(args.docs)]
    reference = texts[: args.reference_docs]
    hasher = MinHasher(num_perm=112, seed=42, ngram=5)
    hasher.signatures(texts[:10])  # load the compiled kernels (cached on disk after the first)

    def sieve() -> None:
        for first in range(0, len(texts), BATCH):
            hasher.signatures(texts[first: first + BATCH])

    def datasketch_same_hash() -> list[np.ndarray]:
        return [hasher.datasketch_minhash(t).hashvalues for t in reference]

    def datasketch_sha1() -> None:
        for text in reference:
            tokens = words(text)
            n = min(5, len(tokens))
            m = MinHash(num_perm=112, seed=42, scheme="affine32")
            m.update_batch([" ".join(tokens[i: i + n]).encode("utf-8")
                            for i in range(len(tokens) - n + 1)] if n else [])

    expected = datasketch_same_hash()
    got = hasher.signatures(reference)
    mismatches = sum(not np.array_equal(e, g) for e, g in zip(expected, got, strict=True))
    if mismatches:
        raise SystemExit(f"{mismatches} of {len(reference)} signatures differ from datasketch's")

    rows = [("sieve", len(texts), best_of(args.trials, sieve)),
            ("datasketch", len(reference), best_of(args.trials, datasketch_same_hash)),
            ("datasketch sha1", len(reference), best_of(args.trials, datasketch_sha1))]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    print(f"{len(texts):,} documents ({mb:.1f} MB), word 5-grams, 112 permutations, one core; "
          f"{len(reference):,} signatures equal datasketch's\n")
    header = (f"{'implementation':<16} {'documents':>9} {'seconds':>8} {'docs/s':>9} "
              f"{'vs datasketch':>14}")
    print(header)
    print("-" * len(header))
    rate = {name: n / s for name, n, s in rows}
    for name, n, seconds in rows:
        print(f"{name:<16} {n:>9,} {seconds:>8.3f} {rate[name]:>9,.0f} "
              f"{rate[name] / rate['datasketch']:>13.1f}x")
    result = {"bench": "minhash", "command": f"python bench/minhash.py --docs {args.docs} "
              f"--reference-docs {args.reference_docs} --trials {args.trials}",
              "documents": len(texts), "megabytes": round(mb, 1),
              "equal_to_datasketch": len(reference),
              "rows": [{"implementation": name, "documents": n, "seconds": round(s, 3),
                        "docs_per_s": round(rate[name])} for name, n, s in rows]}
    (REPO / "bench" / "results" / "minhash.json").write_text(
        json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
