"""resiliparse's main-content extraction, run in the bench environment (.venv-bench).

    .venv-bench/bin/python bench/_resiliparse_extract.py PAGES.json

PAGES.json is a list of decoded HTML strings (bench/extraction.py writes it). Prints one JSON line:
for each variant (resiliparse's defaults with `main_content=True`, and the same with the options
that suit article text: no comments, post metadata, alt texts or list bullets), the CPU seconds
spent extracting (best of `--repeat` runs) and the extracted texts, in order.
"""

import json
import sys
import time

VARIANTS = {
    "default": {"main_content": True},
    "tuned": {"main_content": True, "comments": False, "post_meta": False, "alt_texts": False,
              "list_bullets": False},
}


def main() -> None:
    from resiliparse.extract.html2text import extract_plain_text

    with open(sys.argv[1], encoding="utf-8") as fh:
        pages = json.load(fh)
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    result = {}
    for name, options in VARIANTS.items():
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            outputs = [extract_plain_text(html, **options) for html in pages]
            best = min(best, time.process_time() - start)
        result[name] = {"cpu_seconds": best, "outputs": outputs}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
