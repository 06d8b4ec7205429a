"""Language ID: Sieve's compiled lid.176 (pipelines/langid.py) against fastText's own C++
predictor and py3langid (the language ID before it), on the real samples.

    python bench/langid.py

For each group of real text: documents, agreement of the kernel with fastText's C++ predictor
(language and probability to 4 places: they must be equal) and with py3langid (the model Sieve
used until now; py3langid and lid.176 are different models, so this measures how far the
annotations move), and the speed of each on one core (MB/s of the text classified, best of 2).
Prints a table and the disagreements with py3langid by language pair; writes
bench/results/langid.json.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"


def groups() -> dict[str, list[str]]:
    from pipelines import filters
    from pipelines.ingest import read_source_file

    out: dict[str, list[str]] = {}
    out["wikipedia (en)"] = [r["text"] for r, reason in read_source_file(
        "wikipedia", "w", str(next((CORPORA / "wikipedia_xml").glob("*.bz2"))), {}) if not reason]
    out["web pages (WARC)"] = [r["text"] for p in sorted((CORPORA / "web_warc_other").glob("*"))
                               + [CORPORA / "commoncrawl_warc" / "warcfile.warc.gz"]
                               for r, reason in read_source_file("commoncrawl", "c", str(p), {})
                               if not reason]
    truth = json.loads((CORPORA / "html_extraction_scrapinghub" / "ground-truth.json")
                       .read_text(encoding="utf-8"))
    out["news articles (Scrapinghub gold)"] = [v["articleBody"] for _, v in sorted(truth.items())]
    out["IMDb reviews"] = [p.read_text(encoding="utf-8") for p in sorted(
        (CORPORA / "imdb_aclImdb" / "aclImdb").glob("*/*/*.txt"))]
    sentences = (CORPORA / "conll2003" / "valid.txt").read_text().split("\n\n")
    out["CoNLL-2003 sentences"] = [" ".join(line.split(" ")[0] for line in s.splitlines()
                                            if not line.startswith("-DOCSTART-"))
                                   for s in sentences if s.strip()]
    with open(CORPORA / "chinese_web_ccnet" / "cleared1.jsonl", encoding="utf-8") as fh:
        out["Chinese web pages (CCNet)"] = [json.loads(line)["raw_content"] for line in fh]
    out["zh/ja article gold"] = [(CORPORA / "html_extraction_zh_ja" / n).read_text("utf-8")
                                 for n in ("chinese.txt", "japanese.txt", "japanese2.txt")]
    return {k: [filters.normalize(t) for t in v if t.strip()] for k, v in out.items()}


def timed(fn, texts):
    best = None
    for _ in range(2):
        started = time.process_time()
        result = fn(texts)
        seconds = time.process_time() - started
        best = seconds if best is None else min(best, seconds)
    return result, best


def main() -> None:
    import fasttext

    from pipelines import filters, langid

    cpp_model = fasttext.load_model(langid._default_path())

    def cpp(texts):
        return [cpp_model.f.predict(langid._bytes_of(t).decode() + "\n", 1, 0.0, "strict")[0]
                for t in texts]

    def py3(texts):
        return [filters.identify_language_py3langid(t) for t in texts]

    langid.identify(["warm up the compiled kernel"])
    rows, pairs = [], Counter()
    total = {"docs": 0, "mb": 0.0, "kernel": 0.0, "cpp": 0.0, "py3": 0.0, "same_cpp": 0,
             "same_py3": 0}
    for name, texts in groups().items():
        mb = sum(len(langid._bytes_of(t)) for t in texts) / 1e6
        (languages, scores), t_kernel = timed(langid.identify, texts)
        reference, t_cpp = timed(cpp, texts)
        old, t_py3 = timed(py3, texts)
        same_cpp = sum(lang == label.removeprefix("__label__") and score == round(prob, 4)
                       for lang, score, (prob, label) in zip(languages, scores, reference,
                                                             strict=True))
        same_py3 = sum(lang == o[0] for lang, o in zip(languages, old, strict=True))
        pairs.update(f"{o[0]} -> {lang}" for lang, o in zip(languages, old, strict=True)
                     if lang != o[0])
        rows.append({"group": name, "docs": len(texts), "mb": round(mb, 2),
                     "equal_to_fasttext_cpp": same_cpp, "agree_with_py3langid": same_py3,
                     "kernel_mb_s": round(mb / t_kernel, 1), "cpp_mb_s": round(mb / t_cpp, 1),
                     "py3langid_mb_s": round(mb / t_py3, 1),
                     "languages": dict(Counter(languages).most_common(5))})
        for key, value in (("docs", len(texts)), ("mb", mb), ("kernel", t_kernel),
                           ("cpp", t_cpp), ("py3", t_py3), ("same_cpp", same_cpp),
                           ("same_py3", same_py3)):
            total[key] += value
    print(f"{'group':<34} {'docs':>6} {'= C++':>7} {'= py3langid':>12} {'kernel MB/s':>12} "
          f"{'C++ MB/s':>9} {'py3langid':>10}")
    for r in rows:
        print(f"{r['group']:<34} {r['docs']:>6,} {r['equal_to_fasttext_cpp']:>7,} "
              f"{r['agree_with_py3langid'] / r['docs']:>12.1%} {r['kernel_mb_s']:>12.1f} "
              f"{r['cpp_mb_s']:>9.1f} {r['py3langid_mb_s']:>10.1f}")
    print(f"{'all':<34} {total['docs']:>6,} {total['same_cpp']:>7,} "
          f"{total['same_py3'] / total['docs']:>12.1%} {total['mb'] / total['kernel']:>12.1f} "
          f"{total['mb'] / total['cpp']:>9.1f} {total['mb'] / total['py3']:>10.1f}")
    print("\nmost frequent changes of label (py3langid -> lid.176):",
          ", ".join(f"{k} {v}" for k, v in pairs.most_common(12)))
    result = {"bench": "langid", "command": "python bench/langid.py",
              "prefix_chars": langid.PREFIX_CHARS, "rows": rows,
              "all": {"docs": total["docs"], "equal_to_fasttext_cpp": total["same_cpp"],
                      "agree_with_py3langid": round(total["same_py3"] / total["docs"], 4),
                      "kernel_mb_s": round(total["mb"] / total["kernel"], 1),
                      "cpp_mb_s": round(total["mb"] / total["cpp"], 1),
                      "py3langid_mb_s": round(total["mb"] / total["py3"], 1)},
              "label_changes_from_py3langid": dict(pairs.most_common(30))}
    out = REPO / "bench" / "results" / "langid.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
