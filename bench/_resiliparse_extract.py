"""resiliparse's main-content extraction, run in the bench environment (.venv-bench).

    .venv-bench/bin/python bench/_resiliparse_extract.py PAGES.json

PAGES.json is a list of decoded HTML strings (bench/extraction.py writes it). Prints one JSON line:
CPU seconds spent extracting and the extracted texts, in order.
"""

import json
import sys
import time


def main() -> None:
    from resiliparse.extract.html2text import extract_plain_text

    with open(sys.argv[1], encoding="utf-8") as fh:
        pages = json.load(fh)
    start = time.process_time()
    outputs = [extract_plain_text(html, main_content=True) for html in pages]
    print(json.dumps({"cpu_seconds": time.process_time() - start, "outputs": outputs}))


if __name__ == "__main__":
    main()
