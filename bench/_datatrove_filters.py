"""datatrove's Gopher repetition, Gopher quality, C4 and FineWeb filters, in that order, on a
JSONL corpus; runs in the bench environment (.venv-bench).

    .venv-bench/bin/python bench/_datatrove_filters.py CORPUS.jsonl.gz

Each filter's `filter(doc)` is called directly, one document after the other in one process (one
core), with the published defaults; C4 rewrites the text that FineWeb then sees, as in a
datatrove pipeline. Prints one JSON line: seconds spent in the filters and each document's
reason (null when kept).

A record with a `fineweb2` entry (a language of pipelines/data/language_rules.json, whose values
come from FineWeb-2's configs/*.yml) gets FineWeb-2's filtering step instead, built as
huggingface/fineweb-2's fineweb-2-pipeline.py builds it: Gopher repetition (paragraph and
line-character rules off), FineWeb quality (short lines off, char_duplicates_ratio 0.1), Gopher
quality (min_stop_words 2), each with the language's word tokenizer and values; no C4.
"""

import os
import sys

# Not bench/ on the import path: bench/tokenize.py would shadow the stdlib module.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import gzip  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402


def fineweb2_filters(rules: dict) -> list:
    """FineWeb-2's filtering step for one language (fineweb-2-pipeline.py, step 5)."""
    from datatrove.pipeline.filters import (
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    lang, rep = rules["config"], rules["gopher_repetition"]
    if lang == "kor_Hang":
        # datatrove asks Kiwi for its "sbg" model, which kiwipiepy-model 0.24 no longer ships;
        # "cong" is the one it ships, and the one Sieve's Korean splitter uses.
        from datatrove.utils.word_tokenizers import KiwiTokenizer

        lang = KiwiTokenizer(model_type="cong")
    fw, gq = rules["fineweb"], rules["gopher_quality"]
    return [("gopher_repetition", GopherRepetitionFilter(
                language=lang, dup_para_frac=0, dup_line_char_frac=0, dup_para_char_frac=0,
                dup_line_frac=rep["dup_line_frac"], top_n_grams=rep["top_n_grams"],
                dup_n_grams=rep["dup_n_grams"])),
            ("fineweb", FineWebQualityFilter(
                language=lang, short_line_thr=999, char_duplicates_ratio=0.1,
                line_punct_thr=fw["line_punct_thr"], new_line_ratio=fw["new_line_ratio"])),
            ("gopher_quality", GopherQualityFilter(
                language=lang, max_avg_word_length=gq["max_avg_word_length"],
                min_avg_word_length=gq["min_avg_word_length"], stop_words=gq["stop_words"],
                max_non_alpha_words_ratio=gq["min_alpha_words_ratio"], min_stop_words=2))]


def main() -> None:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

    per_language: dict[str, list] = {}
    filters = [("gopher_repetition", GopherRepetitionFilter()),
               ("gopher_quality", GopherQualityFilter()),
               ("c4", C4QualityFilter()),
               ("fineweb", FineWebQualityFilter())]
    with gzip.open(sys.argv[1], "rt", encoding="utf-8") as fh:
        docs = [json.loads(line) for line in fh]
    # Load spaCy before the clock starts.
    filters[0][1].filter(Document(text="Warm up the tokenizer. " * 20, id="warmup"))
    reasons = {}
    start = time.perf_counter()
    for record in docs:
        doc = Document(text=record["text"], id=record["id"])
        reason = None
        rules = record.get("fineweb2")
        if rules and rules["config"] not in per_language:
            per_language[rules["config"]] = fineweb2_filters(rules)
        for name, f in per_language[rules["config"]] if rules else filters:
            result = f.filter(doc)
            if result is not True:
                label = result[1] if isinstance(result, tuple) else "dropped"
                reason = f"{name}:{label}"
                break
        reasons[record["id"]] = reason
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "reasons": reasons}))


if __name__ == "__main__":
    main()
