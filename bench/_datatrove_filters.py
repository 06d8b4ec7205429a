"""datatrove's Gopher repetition, Gopher quality, C4 and FineWeb filters, in that order, on a
JSONL corpus; runs in the bench environment (.venv-bench).

    .venv-bench/bin/python bench/_datatrove_filters.py CORPUS.jsonl.gz

Each filter's `filter(doc)` is called directly, one document after the other in one process (one
core), with the published defaults; C4 rewrites the text that FineWeb then sees, as in a
datatrove pipeline. Prints one JSON line: seconds spent in the filters and each document's
reason (null when kept).
"""

import os
import sys

# Not bench/ on the import path: bench/tokenize.py would shadow the stdlib module.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import gzip  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402


def main() -> None:
    from datatrove.data import Document
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )

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
        for name, f in filters:
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
