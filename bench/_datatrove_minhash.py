"""datatrove's four MinHash stages on a JSONL corpus; runs in the bench environment (.venv-bench).

    .venv-bench/bin/python bench/_datatrove_minhash.py CORPUS.jsonl.gz WORKDIR

Word 5-grams, 14 buckets x 8 hashes (FineWeb's setting), one task and one worker per stage (one
core). Prints one JSON line: seconds, peak RSS of this process and its workers, and the removed ids.
"""

import os
import sys

# Not bench/ on the import path: bench/tokenize.py would shadow the stdlib module.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import gzip  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402


def main() -> None:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers.jsonl import JsonlWriter

    corpus, work = sys.argv[1], sys.argv[2]
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    common = {"workers": 1, "start_method": "fork"}

    def reader():
        folder, name = corpus.rsplit("/", 1)
        return JsonlReader(folder, glob_pattern=name, id_key="id", text_key="text")

    from bench._peak import peak_rss_mb, reset_peak_rss

    reset_peak_rss()
    start = time.perf_counter()
    s1 = LocalPipelineExecutor(pipeline=[reader(), MinhashDedupSignature(
        output_folder=f"{work}/signatures", config=config)], tasks=1,
        logging_dir=f"{work}/logs/s1", **common)
    s2 = LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(
        input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
        tasks=config.num_buckets, logging_dir=f"{work}/logs/s2", depends=s1, **common)
    s3 = LocalPipelineExecutor(pipeline=[MinhashDedupCluster(
        input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
        tasks=1, logging_dir=f"{work}/logs/s3", depends=s2, **common)
    s4 = LocalPipelineExecutor(pipeline=[
        reader(),
        MinhashDedupFilter(input_folder=f"{work}/remove_ids",
                           exclusion_writer=JsonlWriter(f"{work}/removed")),
        JsonlWriter(f"{work}/kept")], tasks=1, logging_dir=f"{work}/logs/s4", depends=s3,
        **common)
    s4.run()
    seconds = time.perf_counter() - start
    removed = []
    import glob

    for path in sorted(glob.glob(f"{work}/removed/*")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            removed += [json.loads(line)["id"] for line in fh]
    # Workers (with more than one task) are forked: their own high-water marks count too.
    peak = max(peak_rss_mb(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak, "removed": removed}))


if __name__ == "__main__":
    main()
