"""Tokens/s per core: Sieve's shard stage against SentencePiece's raw batch encode, same text.

    python bench/tokenize.py [--root out] [--repeat 16] [--trials 3]

Takes the deduplicated documents and the tokenizer of the newest demo build under --root (run
`make demo` first), repeats the packable documents --repeat times with distinct ids so that
fixed start-up costs do not dominate, then measures on one core:
  raw   : `SentencePieceProcessor.encode(texts, num_threads=1)` and releasing its result, the
          ceiling the issue names; and the same in calls of 2,048 documents, as the shard stage
          encodes (short-lived result lists stay in cache, so this ceiling is higher);
  shard : the whole shard stage (Beam DirectRunner, one worker: read Parquet, tokenize, group,
          pack, write Arrow, index), wall clock and CPU seconds.
The compiled encoder remembers the pieces of words it has seen, so copies of the same documents
flatter it: its own rows encode the documents once, with an empty memo, in the shard stage's
chunks: one search over each whole text (as before the memo), then words remembered.
Prints a table and writes bench/results/tokenize.json.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/: this file would shadow the stdlib `tokenize`.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

from pipelines import shard  # noqa: E402
from pipelines.manifest import RunOptions  # noqa: E402
from pipelines.recipe import ShardConfig  # noqa: E402
from tokenizer import spm  # noqa: E402
from tokenizer.unigram import UnigramEncoder  # noqa: E402


def newest(root: Path, stage: str) -> Path:
    folders = [p for p in (root / stage).iterdir() if (p / "manifest.json").exists()]
    if not folders:
        raise SystemExit(f"no committed {stage} output under {root}: run `make demo` first")
    return max(folders, key=lambda p: (p / "manifest.json").stat().st_mtime)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default=str(REPO / "out"))
    parser.add_argument("--repeat", type=int, default=16)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    root = Path(args.root)
    dedup_dir, tok_dir = newest(root, "dedup"), newest(root, "tokenizer")
    cfg = ShardConfig(seq_len=1024, validation_fraction=0.01)
    table = pq.read_table(dedup_dir / "docs")
    table = table.filter(pa.compute.is_in(table["split"], pa.array(cfg.splits)))
    tables = []
    for r in range(args.repeat):
        ids = pa.compute.binary_join_element_wise(table["id"], pa.scalar(f"#{r}"), "")
        tables.append(table.set_column(0, "id", ids))
    docs = pa.concat_tables(tables)
    texts = docs.column("text").to_pylist()
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)

    sp = spm.load(str(tok_dir / "tokenizer.model"))

    def raw() -> float:
        start = time.perf_counter()
        encoded = sp.encode(texts, num_threads=1)
        raw_tokens.append(sum(len(x) for x in encoded))
        del encoded  # releasing the result lists is part of using them
        return time.perf_counter() - start

    def chunked() -> float:
        # A chunk of documents per call, as the shard stage does: the stricter ceiling, since
        # short-lived result lists stay in cache.
        start = time.perf_counter()
        for lo in range(0, len(texts), shard._ENCODE_CHUNK):
            encoded = sp.encode(texts[lo:lo + shard._ENCODE_CHUNK], num_threads=1)
            del encoded
        return time.perf_counter() - start

    def stage() -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "dedup"
            (src / "docs").mkdir(parents=True)
            pq.write_table(docs, src / "docs" / "bench-00000-000.parquet")  # as dedup names them
            out = Path(tmp) / "shard"
            out.mkdir()
            cpu0, start = cpu_seconds(), time.perf_counter()
            counters.update(shard.run(cfg, {"dedup": src, "tokenizer": tok_dir}, out,
                                      RunOptions(workers=1)))
            return time.perf_counter() - start, cpu_seconds() - cpu0

    once = table.column("text").combine_chunks()
    once_tokens: list[int] = []

    def encoder(memo: bool) -> float:
        enc = UnigramEncoder.load(str(tok_dir / "tokenizer.model"))
        if not memo:  # one search over each whole text, as before the memo
            enc = dataclasses.replace(enc, segmented=False)
        start = time.perf_counter()
        total = 0
        for lo in range(0, len(once), shard._ENCODE_CHUNK):
            total += len(enc.encode(once.slice(lo, shard._ENCODE_CHUNK))[0])
        once_tokens.append(total)
        if memo:
            memo_words.append(int(enc.memo["state"][3]))
        return time.perf_counter() - start

    # This machine's timings vary by 10% from run to run: each measurement runs --trials times,
    # interleaved, and the fastest counts (as timeit does).
    raw_tokens: list[int] = []
    counters: dict[str, int] = {}
    raw_times, chunked_times, stage_times, search_times, memo_times = [], [], [], [], []
    memo_words: list[int] = []
    for _ in range(args.trials):
        raw_times.append(raw())
        chunked_times.append(chunked())
        stage_times.append(stage())
        search_times.append(encoder(memo=False))
        memo_times.append(encoder(memo=True))
    assert len(set(once_tokens)) == 1, once_tokens
    n_once = len(once)
    once_bytes = pa.compute.sum(pa.compute.binary_length(once)).as_py()
    search_s, memo_s = min(search_times), min(memo_times)
    raw_s, chunked_s = min(raw_times), min(chunked_times)
    shard_s, shard_cpu = min(stage_times)
    raw_tokens = raw_tokens[0]
    shard_tokens = counters["tokens"]
    assert shard_tokens == raw_tokens, (shard_tokens, raw_tokens)

    rows = [
        {"what": "sentencepiece raw batch encode (1 thread)", "seconds": round(raw_s, 3),
         "tokens_per_s": round(raw_tokens / raw_s)},
        {"what": f"sentencepiece raw encode, {shard._ENCODE_CHUNK} docs per call",
         "seconds": round(chunked_s, 3), "tokens_per_s": round(raw_tokens / chunked_s)},
        {"what": "sieve shard stage, wall (DirectRunner, 1 worker)", "seconds": round(shard_s, 3),
         "tokens_per_s": round(shard_tokens / shard_s)},
        {"what": "sieve shard stage, per CPU-second", "seconds": round(shard_cpu, 3),
         "tokens_per_s": round(shard_tokens / shard_cpu)},
    ]
    rows += [
        {"what": f"compiled encoder, one search per text ({n_once:,} docs once)",
         "seconds": round(search_s, 3), "tokens_per_s": round(once_tokens[0] / search_s)},
        {"what": f"compiled encoder, words remembered ({n_once:,} docs once)",
         "seconds": round(memo_s, 3), "tokens_per_s": round(once_tokens[0] / memo_s)},
    ]
    ratio_wall = (shard_tokens / shard_s) / (raw_tokens / raw_s)
    ratio_chunked = chunked_s / shard_s
    print(f"{len(texts):,} documents, {n_bytes / 1e6:.1f} MB, {raw_tokens:,} tokens "
          f"(demo text x{args.repeat})\n")
    print(f"{'what':<60} {'seconds':>9} {'tokens/s':>12}")
    for row in rows:
        print(f"{row['what']:<60} {row['seconds']:>9.2f} {row['tokens_per_s']:>12,}")
    print(f"\nshard stage / raw batch encode: {ratio_wall:.0%} (wall clock, one worker); "
          f"/ raw encode in chunks: {ratio_chunked:.0%}")
    print(f"compiled encoder on the documents once ({once_bytes / 1e6:.1f} MB): words remembered "
          f"{search_s / memo_s:.2f}x one search per text; {memo_words[0]:,} distinct words held")
    result = {"bench": "tokenize", "machine": platform.machine(), "cpus": os.cpu_count(),
              "documents": len(texts), "bytes": n_bytes, "tokens": raw_tokens,
              "repeat": args.repeat, "trials": args.trials, "rows": rows,
              "ratio_wall": round(ratio_wall, 3),
              "ratio_to_chunked_raw": round(ratio_chunked, 3),
              "encoder_once": {"documents": n_once, "bytes": once_bytes,
                               "tokens": once_tokens[0], "search_seconds": search_times,
                               "memo_seconds": memo_times, "words_held": memo_words[0],
                               "memo_speedup": round(search_s / memo_s, 2)},
              "all_seconds": {"raw": raw_times, "chunked": chunked_times,
                              "stage": [t for t, _ in stage_times]},
              "command": f"python bench/tokenize.py --repeat {args.repeat} "
                         f"--trials {args.trials}"}
    out_file = REPO / "bench" / "results" / "tokenize.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
