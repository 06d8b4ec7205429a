"""A large corpus of real text for bench/scale.py: N documents made of real paragraphs, with exact
and near copies, written as JSONL.gz shards.

    python bench/scale_corpus.py --docs 100000 --seed 0 --out bench/.scale/100000-0

Paragraphs (deterministic, from ../shared/corpora): the English Wikipedia sample's articles, every
IMDb review, the Scrapinghub gold article bodies, the main text of trafilatura's evaluation pages
(as Sieve's extractor gives it), the pages of the WARC samples, CoNLL-2003 documents, and the 100
Chinese Common Crawl pages (CCNet). Each has a genre; a document takes 1 to 12 paragraphs of one
genre, drawn without replacement, until it reaches a length drawn from a log-normal around 2.7 KB
(the documents the issue measured). Paragraphs are shared between documents, documents are not:
about 4% of the documents are exact copies of an earlier one and 4% near copies (1-5% of the words
substituted, deleted or inserted, or a boilerplate line added), so dedup has real work.

Shards hold `docs_per_shard` documents each (`part-NNNNN.jsonl.gz`, gzip level 1), one JSON
object per line: `id`, `text`, `genre`. The same N, seed and paragraph pool give the same
bytes; `write_corpus` draws again where the pool changed.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import math
import os
import random
import sys
from pathlib import Path

if __name__ == "__main__":  # imported as bench.scale_corpus, the root is on the path already
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from bench.dedup_corpus import mutate  # noqa: E402  (the near-copy edits both corpora use)

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
# Share of documents per genre: web-like text first, as in a pretraining crawl.
GENRE_WEIGHTS = {"news": 0.22, "web": 0.22, "wiki": 0.22, "review": 0.22, "newswire": 0.06,
                 "zh_web": 0.06}
BOILERPLATE = ["Share this article on Facebook, Twitter and email.", "All rights reserved.",
               "Click here to subscribe to our newsletter for more stories like this.",
               "Advertisement", "Related posts you might like"]


def paragraphs() -> dict[str, list[str]]:
    """genre -> real paragraphs (at least 40 characters each), in a fixed order."""
    from pipelines.sources import commoncrawl, conll2003, wikipedia

    pool: dict[str, list[str]] = {g: [] for g in GENRE_WEIGHTS}

    def add(genre: str, text: str, sep: str = "\n") -> None:
        pool[genre].extend(p.strip() for p in text.split(sep) if len(p.strip()) >= 40)

    dump = next((CORPORA / "wikipedia_xml").glob("*.bz2"))
    for doc, reason in wikipedia.read(str(dump), "wikipedia"):
        if reason is None:
            add("wiki", doc.text, "\n\n")
    for path in sorted((CORPORA / "imdb_aclImdb" / "aclImdb").glob("*/*/*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace").replace("<br />", "\n")
        add("review", text.replace("\n\n", "\n"), "\n\n")  # a review is one paragraph
    truth = json.loads((CORPORA / "html_extraction_scrapinghub" / "ground-truth.json").read_text())
    for _, value in sorted(truth.items()):
        add("news", value.get("articleBody") or "")
    for path in sorted((CORPORA / "html_extraction_trafilatura").glob("*/*.html")):
        html = commoncrawl.decode_html(path.read_bytes())
        add("web", commoncrawl.extract_main_text(html))
    for folder in ("commoncrawl_warc", "web_warc_other"):
        for path in sorted((CORPORA / folder).glob("*.warc.gz")):
            for doc, reason in commoncrawl.read(str(path), "web"):
                if reason is None:
                    add("web", doc.text)
    for name in ("train.txt", "valid.txt", "test.txt"):
        by_doc: dict[int, list[str]] = {}
        for doc, _ in conll2003.read(str(CORPORA / "conll2003" / name), "conll"):
            by_doc.setdefault(doc.meta["doc_index"], []).append(doc.text)
        for _, sentences in sorted(by_doc.items()):
            pool["newswire"].append("\n".join(sentences))
    with open(CORPORA / "chinese_web_ccnet" / "cleared1.jsonl", encoding="utf-8") as fh:
        for line in fh:
            add("zh_web", json.loads(line)["raw_content"])
    return pool


def documents(n: int, seed: int, pool: dict[str, list[str]]):
    """Yield (id, genre, text) for n documents."""
    rng = random.Random(seed)
    genres, weights = list(GENRE_WEIGHTS), list(GENRE_WEIGHTS.values())
    vocabulary = sorted({w for p in pool["wiki"][:500] for w in p.split()[:30]})
    recent: list[tuple[str, str]] = []  # the last documents, the originals of copies
    # log-normal with mean 2,700 characters: mu = ln(2700) - sigma^2 / 2
    sigma = 0.7
    mu = math.log(2700) - sigma * sigma / 2
    for i in range(n):
        r = rng.random()
        if recent and r < 0.04:
            genre, text = rng.choice(recent)
        elif recent and r < 0.08:
            genre, text = rng.choice(recent)
            if rng.random() < 0.25:
                text = text + "\n" + rng.choice(BOILERPLATE)
            else:
                text = mutate(text, rng.choice([0.01, 0.02, 0.03, 0.05]), rng, vocabulary)
        else:
            genre = rng.choices(genres, weights)[0]
            paras = pool[genre]
            target = min(max(rng.lognormvariate(mu, sigma), 300), 30_000)
            chosen, length = [], 0
            for k in rng.sample(range(len(paras)), 12):
                chosen.append(paras[k])
                length += len(paras[k]) + 1
                if length >= target:
                    break
            text = "\n".join(chosen)
        if len(recent) < 2000:
            recent.append((genre, text))
        else:
            recent[rng.randrange(2000)] = (genre, text)
        yield f"scale/{i:08d}", genre, text


def pool_fingerprint(pool: dict[str, list[str]]) -> str:
    """sha256 of the paragraph pool: what the corpus depends on besides N and the seed."""
    return hashlib.sha256(json.dumps(pool, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def write_corpus(n: int, seed: int, out: Path, docs_per_shard: int = 10_000) -> list[Path]:
    """Write the corpus and return its files. A folder whose marker names the same N, seed and
    paragraph pool is reused; where the pool changed (the shared samples, or Sieve's readers of
    them), the corpus is drawn again. (A marker of N and seed alone kept a corpus drawn before
    ingest v10/v11 changed the Wikipedia paragraphs, which the code of later stops would not
    have drawn.)"""
    pool = paragraphs()
    wanted = {"docs": n, "seed": seed, "pool_sha256": pool_fingerprint(pool)}
    marker = out / "COMPLETE"
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return sorted(out.glob("part-*.jsonl.gz"))
    out.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    for old in out.glob("part-*.jsonl.gz"):
        old.unlink()
    docs = documents(n, seed, pool)
    files = []
    for shard in range(-(-n // docs_per_shard)):
        files.append(out / f"part-{shard:05d}.jsonl.gz")
        # mtime 0: no time stamp in the gzip header, so the same N and seed give the same bytes
        with open(files[-1], "wb") as raw, gzip.GzipFile(
                fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz, \
                io.TextIOWrapper(gz, encoding="utf-8") as fh:
            for _ in range(min(docs_per_shard, n - shard * docs_per_shard)):
                doc_id, genre, text = next(docs)
                fh.write(json.dumps({"id": doc_id, "text": text, "genre": genre},
                                    ensure_ascii=False) + "\n")
    marker.write_text(json.dumps(wanted))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = write_corpus(args.docs, args.seed, args.out)
    size = sum(f.stat().st_size for f in files)
    print(f"{args.docs:,} documents in {len(files)} files, {size / 1e6:.1f} MB gzip, {args.out}")


if __name__ == "__main__":
    main()
