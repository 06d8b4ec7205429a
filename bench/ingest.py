"""Ingest throughput per source format, one core: MB/s of input files and documents/s.

    python bench/ingest.py

Runs each source reader of pipelines/sources over its real samples in ../shared/corpora in this
process (the work one Beam worker does per input file, without Beam's per-element overhead) and
measures CPU time. MB are the files' bytes on disk (compressed where the format is). Writes
bench/results/ingest.json.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pipelines.sources import commoncrawl, conll2003, imdb, wikipedia  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"

FORMATS = {
    "wikipedia xml.bz2 (wikitext -> text)": (wikipedia, sorted(
        str(p) for p in (CORPORA / "wikipedia_xml").glob("*.bz2"))),
    "warc.gz / wet / wat (main text)": (commoncrawl, sorted(
        str(p) for p in [*(CORPORA / "commoncrawl_warc").glob("*.gz"),
                         *(CORPORA / "web_warc_other").glob("*.gz")])),
    "aclImdb review files": (imdb, imdb.list_files(str(CORPORA / "imdb_aclImdb" / "aclImdb"))),
    "conll2003 column files": (conll2003, sorted(
        str(p) for p in (CORPORA / "conll2003").glob("*.txt"))),
}


def main() -> None:
    rows = []
    for name, (reader, files) in FORMATS.items():
        size = sum(os.path.getsize(f) for f in files)
        start = time.process_time()
        records = kept = 0
        for path in files:
            for _, reason in reader.read(path, "bench"):
                records += 1
                kept += reason is None
        seconds = time.process_time() - start
        rows.append({"format": name, "files": len(files), "mb": round(size / 1e6, 2),
                     "records": records, "documents": kept, "cpu_seconds": round(seconds, 2),
                     "mb_per_s": round(size / 1e6 / seconds, 2),
                     "docs_per_s": round(kept / seconds)})
    print(f"{'format':<40} {'MB':>6} {'docs':>7} {'CPU s':>6} {'MB/s':>7} {'docs/s':>8}")
    for r in rows:
        print(f"{r['format']:<40} {r['mb']:>6.2f} {r['documents']:>7,} {r['cpu_seconds']:>6.2f} "
              f"{r['mb_per_s']:>7.2f} {r['docs_per_s']:>8,}")
    (REPO / "bench" / "results" / "ingest.json").write_text(json.dumps(
        {"bench": "ingest", "command": "python bench/ingest.py", "rows": rows}, indent=2) + "\n",
        encoding="utf-8")


if __name__ == "__main__":
    main()
