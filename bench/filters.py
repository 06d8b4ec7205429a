"""Sieve's quality rules against datatrove's implementations of the same rules, side by side.

    python bench/filters.py [--docs 20000]

Needs the bench environment (`make bench-env`: datatrove[processing], orjson, spacy in
.venv-bench). Both tools get the same documents and run Gopher repetition, Gopher quality, C4 and
FineWeb with the published defaults, in that order, one document after the other on one core:
datatrove through each filter's `filter(doc)` (bench/_datatrove_filters.py), Sieve twice: its
Python reference (`pipelines.filters.apply_quality`, one document at a time: the rules'
definition) and the compiled kernel its clean stage runs (`quality_kernels.RuleKernel`, batches
of 1,024), whose reasons must equal the reference's. Prints throughput, the keep/drop agreement,
the agreement on the exact reason, and every kind of disagreement with an example; writes
bench/results/filters.json.

Documents (deterministic): web text first, because that is what these rules are for: every
page of the two HTML extraction benchmarks twice (the main text as Sieve extracts it, and the
whole page's text with its navigation and boilerplate, by trafilatura's html2txt), and every
page of the WARC samples; then the real-text corpus of bench/dedup_corpus.py (IMDb reviews,
Wikipedia chunks, CoNLL-2003 documents, and their near duplicates) up to `--docs`.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
BENCH_PYTHON = REPO / ".venv-bench" / "bin" / "python"


def web_documents() -> list[tuple[str, str]]:
    import trafilatura

    from pipelines.filters import normalize
    from pipelines.sources import commoncrawl

    docs: list[tuple[str, str]] = []
    pages = sorted((CORPORA / "html_extraction_scrapinghub" / "html").glob("*.html.gz"))
    pages += sorted((CORPORA / "html_extraction_trafilatura" / "eval").glob("*.html"))
    for path in pages:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        html = commoncrawl.decode_html(raw)
        for kind, text in (("main", commoncrawl.extract_main_text(html)),
                           ("page", trafilatura.html2txt(html) or "")):
            if text.strip():
                docs.append((f"web/{kind}/{path.name}", text))
    for path in sorted(CORPORA.glob("*warc*/*.warc*.gz")):
        for doc, reason in commoncrawl.read(str(path), "warc"):
            if reason is None and doc.text.strip():
                docs.append((f"warc/{doc.id}", doc.text))
    # The clean stage normalises before its rules run; both tools see the normalised text.
    return [(doc_id, normalize(text)) for doc_id, text in docs]


def build_corpus(target: int) -> list[tuple[str, str]]:
    from bench.dedup_corpus import build_corpus as real_text
    from pipelines.filters import normalize

    web = web_documents()
    rest = [(f"text/{i}", normalize(t)) for i, (_, t) in
            enumerate(real_text(max(0, target - len(web))))]
    return [(doc_id, text) for doc_id, text in web + rest if text][:target]



ORDER = ("gopher_repetition", "gopher_quality", "c4", "fineweb")
# datatrove's reason strings -> Sieve's (same rule, Sieve's spelling).
DATATROVE_NAMES = {
    "gopher_quality:gopher_short_doc": "gopher_quality:short_doc",
    "gopher_quality:gopher_long_doc": "gopher_quality:long_doc",
    "gopher_quality:gopher_below_avg_threshold": "gopher_quality:below_avg_word_length",
    "gopher_quality:gopher_above_avg_threshold": "gopher_quality:above_avg_word_length",
    "gopher_quality:gopher_too_many_hashes": "gopher_quality:too_many_hashes",
    "gopher_quality:gopher_too_many_ellipsis": "gopher_quality:too_many_ellipsis",
    "gopher_quality:gopher_too_many_bullets": "gopher_quality:too_many_bullets",
    "gopher_quality:gopher_too_many_end_ellipsis": "gopher_quality:too_many_end_ellipsis",
    "gopher_quality:gopher_below_alpha_threshold": "gopher_quality:below_alpha_ratio",
    "gopher_quality:gopher_enough_stop_words": "gopher_quality:few_stop_words",
    **{f"gopher_repetition:duplicated_{n}_n_grams": f"gopher_repetition:dup_{n}_gram"
       for n in range(5, 11)},
}


def run_sieve(corpus: list[tuple[str, str]]) -> tuple[float, dict[str, str | None]]:
    from pipelines.filters import apply_quality
    from pipelines.quality import C4, FineWeb, GopherQuality, GopherRepetition

    # The published defaults of every rule set, as the recipe's [clean] section has them.
    defaults = SimpleNamespace(c4=C4(), fineweb=FineWeb(), gopher_quality=GopherQuality(),
                               gopher_repetition=GopherRepetition())
    reasons: dict[str, str | None] = {}
    start = time.process_time()
    for doc_id, text in corpus:
        reasons[doc_id] = apply_quality(text, ORDER, defaults)[1]
    return time.process_time() - start, reasons


def run_sieve_compiled(corpus: list[tuple[str, str]]) -> tuple[float, dict[str, str | None]]:
    """The same rules as the clean stage runs them: `RuleKernel`, in batches of 1,024."""
    from pipelines.quality import C4, FineWeb, GopherQuality, GopherRepetition
    from pipelines.quality_kernels import RuleKernel

    kernel = RuleKernel(SimpleNamespace(c4=C4(), fineweb=FineWeb(), gopher_quality=GopherQuality(),
                                        gopher_repetition=GopherRepetition()))
    kernel.judge([t for _, t in corpus[:8]], ORDER)  # loads the compiled code from numba's cache
    reasons: dict[str, str | None] = {}
    start = time.process_time()
    for lo in range(0, len(corpus), 1024):
        batch = corpus[lo:lo + 1024]
        found, _ = kernel.judge([t for _, t in batch], ORDER)
        reasons.update(zip((k for k, _ in batch), found, strict=True))
    return time.process_time() - start, reasons


def run_datatrove(corpus: list[tuple[str, str]], fineweb2: dict | None = None) -> dict:
    """datatrove's four filters over (id, text) pairs in the bench environment
    (`bench/_datatrove_filters.py`): {"seconds", "reasons": id -> reason or None}. `fineweb2`:
    id -> a language's FineWeb-2 values (language_rules.json), for FineWeb-2's filters."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl.gz"
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            for doc_id, text in corpus:
                record = {"id": doc_id, "text": text}
                if fineweb2 and fineweb2.get(doc_id):
                    record["fineweb2"] = fineweb2[doc_id]
                fh.write(json.dumps(record) + "\n")
        proc = subprocess.run([str(BENCH_PYTHON), str(REPO / "bench" / "_datatrove_filters.py"),
                               str(path)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"datatrove failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    args = parser.parse_args()
    if not BENCH_PYTHON.exists():
        raise SystemExit("the bench environment is missing: run `make bench-env`")
    corpus = build_corpus(args.docs)
    mean_bytes = sum(len(t.encode()) for _, t in corpus) / len(corpus)
    sieve_seconds, sieve = run_sieve(corpus)
    compiled_seconds, compiled = run_sieve_compiled(corpus)
    # The kernel is held to the reference in tests/test_quality_kernels.py; say so here too.
    compiled_same = sum(compiled[k] == sieve[k] for k in sieve)
    out = run_datatrove(corpus)
    datatrove_seconds = out["seconds"]
    datatrove = {k: (DATATROVE_NAMES.get(v, v) if v else None) for k, v in out["reasons"].items()}

    texts = dict(corpus)
    same_decision = sum((sieve[k] is None) == (datatrove[k] is None) for k in texts)
    same_reason = sum(sieve[k] == datatrove[k] for k in texts)
    disagreements = Counter((sieve[k] or "kept", datatrove[k] or "kept")
                            for k in texts if (sieve[k] is None) != (datatrove[k] is None))
    examples = {}
    for k in texts:
        key = (sieve[k] or "kept", datatrove[k] or "kept")
        if key in disagreements and key not in examples:
            examples[key] = k
    rows = {
        "datatrove 0.10.1": {"seconds": round(datatrove_seconds, 2),
                             "docs_per_s": round(len(corpus) / datatrove_seconds, 1),
                             "kept": sum(v is None for v in datatrove.values())},
        "sieve, Python reference": {"seconds": round(sieve_seconds, 2),
                                    "docs_per_s": round(len(corpus) / sieve_seconds, 1),
                                    "kept": sum(v is None for v in sieve.values())},
        "sieve, compiled (clean)": {"seconds": round(compiled_seconds, 2),
                                    "docs_per_s": round(len(corpus) / compiled_seconds, 1),
                                    "kept": sum(v is None for v in compiled.values())},
    }
    speedup = datatrove_seconds / compiled_seconds
    print(f"{len(corpus):,} documents (mean {mean_bytes:,.0f} bytes), Gopher repetition + Gopher "
          f"quality + C4 + FineWeb, published defaults, one core\n")
    print(f"{'tool':<26} {'seconds':>8} {'docs/s':>8} {'kept':>7}")
    for name, r in rows.items():
        print(f"{name:<26} {r['seconds']:>8.1f} {r['docs_per_s']:>8,.1f} {r['kept']:>7,}")
    print(f"\nsieve (compiled) / datatrove throughput: {speedup:.1f}x; "
          f"Python reference: {datatrove_seconds / sieve_seconds:.1f}x")
    print(f"compiled reason = reference reason: {compiled_same:,} of {len(sieve):,}")
    print(f"same keep/drop decision: {same_decision / len(corpus):.2%} "
          f"({len(corpus) - same_decision} documents differ)")
    print(f"same reason: {same_reason / len(corpus):.2%}\n")
    by_reason_sieve = Counter(v for v in sieve.values() if v)
    by_reason_dt = Counter(v for v in datatrove.values() if v)
    print(f"{'reason':<42} {'sieve':>7} {'datatrove':>9}")
    for reason in sorted(set(by_reason_sieve) | set(by_reason_dt)):
        print(f"{reason:<42} {by_reason_sieve[reason]:>7,} {by_reason_dt[reason]:>9,}")
    if disagreements:
        print(f"\n{'sieve says':<40} {'datatrove says':<40} {'docs':>5}  example")
        for (s, d), n in disagreements.most_common():
            print(f"{s:<40} {d:<40} {n:>5}  {examples[(s, d)]}")
    (REPO / "bench" / "results" / "filters.json").write_text(json.dumps(
        {"bench": "filters", "command": f"python bench/filters.py --docs {args.docs}",
         "documents": len(corpus), "mean_bytes": round(mean_bytes), "rules": list(ORDER),
         "results": rows, "speedup": round(speedup, 2),
         "speedup_python_reference": round(datatrove_seconds / sieve_seconds, 2),
         "compiled_equals_reference": compiled_same,
         "decision_agreement": round(same_decision / len(corpus), 5),
         "reason_agreement": round(same_reason / len(corpus), 5),
         "reasons": {"sieve": dict(by_reason_sieve), "datatrove": dict(by_reason_dt)},
         "disagreements": [{"sieve": s, "datatrove": d, "docs": n, "example": examples[(s, d)]}
                           for (s, d), n in disagreements.most_common()]},
        indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
