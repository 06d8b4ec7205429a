"""The labelled near-duplicate benchmark shared by bench/dedup_quality.py and
bench/dedup_vs_datatrove.py.

Corpus (deterministic, seed 0): real text from ../shared/corpora (all 5,000 IMDb reviews,
Wikipedia articles cut into ~1,500-character paragraph chunks, CoNLL-2003 documents, the
Scrapinghub gold article bodies, the Clough & Stevenson answers and sources), plus injected near
duplicates of randomly chosen documents: word substitutions, deletions and insertions at rates from
1% to 30% (the high rates make pairs below the truth threshold, so the benchmark has hard
negatives), truncations, added boilerplate, and passages spliced into other documents.

Truth: every pair whose exact Jaccard similarity of word 5-gram sets (lower-cased `\\w+` words;
in Chinese, Japanese and Thai text the splitter's words: `pipelines.minhash.words`) is at
least 0.5, found exactly by prefix filtering (Bayardo et al., WWW 2007): tokens ordered by
rarity, each document indexed on its first |x| - ceil(0.5 |x|) + 1 tokens, every candidate pair
verified by set intersection. Complete for the threshold, no sampling, no LSH.

Scores for a set of removed ids (`score`):
- precision@0.8: removed documents that have some neighbour at J >= 0.8;
- recall@0.8: pairs at J >= 0.8 with at least one side removed;
- orphans: removed documents with no kept document at J >= 0.5 (content lost through chains).
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPORA = REPO.parent / "shared" / "corpora"
BOILERPLATE = ["Share this article on Facebook Twitter and email", "All rights reserved.",
               "Click here to subscribe to our newsletter for more stories like this.",
               "Advertisement", "Related posts you might like"]


def base_documents() -> list[tuple[str, str]]:
    docs: list[tuple[str, str]] = []
    imdb = CORPORA / "imdb_aclImdb" / "aclImdb"
    for path in sorted(imdb.glob("*/*/*.txt")):
        text = path.read_text(encoding="utf-8").replace("<br />", "\n")
        docs.append((f"imdb/{path.parent.parent.name}/{path.parent.name}/{path.stem}", text))
    from pipelines.sources import conll2003, wikipedia

    dump = next((CORPORA / "wikipedia_xml").glob("*.bz2"))
    for doc, reason in wikipedia.read(str(dump), "wikipedia"):
        if reason:
            continue
        chunk, n = [], 0
        for para in doc.text.split("\n\n"):
            chunk.append(para)
            if sum(map(len, chunk)) >= 1500:
                docs.append((f"wiki/{doc.meta['page_id']}/{n}", "\n\n".join(chunk)))
                chunk, n = [], n + 1
        if chunk and sum(map(len, chunk)) > 200:
            docs.append((f"wiki/{doc.meta['page_id']}/{n}", "\n\n".join(chunk)))
    for name in ("train.txt", "valid.txt", "test.txt"):
        by_doc: dict[int, list[str]] = defaultdict(list)
        for doc, _ in conll2003.read(str(CORPORA / "conll2003" / name), "conll"):
            by_doc[doc.meta["doc_index"]].append(doc.text)
        for index, sentences in sorted(by_doc.items()):
            docs.append((f"conll/{name.split('.')[0]}/{index}", "\n".join(sentences)))
    truth = json.loads((CORPORA / "html_extraction_scrapinghub" / "ground-truth.json").read_text())
    for key, value in sorted(truth.items()):
        if value.get("articleBody"):
            docs.append((f"news/{key[:16]}", value["articleBody"]))
    for path in sorted((CORPORA / "neardup_clough_stevenson").glob("*.txt")):
        docs.append((f"clough/{path.stem}", path.read_text(encoding="utf-8", errors="replace")))
    return docs


def _edit(token: str, rate: float, rng: random.Random, vocabulary: list[str]) -> list[str]:
    """One token after a random edit: deleted, substituted, kept, or kept with an insertion."""
    r = rng.random()
    if r < rate / 3:
        return []  # deletion
    if r < 2 * rate / 3:
        return [rng.choice(vocabulary)]  # substitution
    return [token, rng.choice(vocabulary)] if r < rate else [token]  # insertion, or kept


def mutate(text: str, rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    return " ".join(w for token in text.split(" ") for w in _edit(token, rate, rng, vocabulary))


def _chunks(doc_id: str, text: str, size: int) -> list[tuple[str, str]]:
    """A text cut at paragraph breaks into pieces of about `size` characters (the last one
    kept only if it is over 200)."""
    out, chunk, n = [], [], 0
    for para in text.split("\n"):
        chunk.append(para)
        if sum(map(len, chunk)) >= size:
            out.append((f"{doc_id}/{n}", "\n".join(chunk)))
            chunk, n = [], n + 1
    if chunk and sum(map(len, chunk)) > 200:
        out.append((f"{doc_id}/{n}", "\n".join(chunk)))
    return out


def cjk_base_documents() -> list[tuple[str, str]]:
    """Real Chinese and Japanese text: the zhwiki excerpt's and the truncated jawiki dump's
    articles in ~600-character chunks (variant markup resolved), the Chinese Common Crawl
    pages, the ChnSentiCorp hotel reviews of 100 characters or more, and the zh/ja extraction
    gold texts."""
    import csv

    from pipelines.ingest import read_source_file

    docs: list[tuple[str, str]] = []
    for path in (CORPORA / "wikipedia_xml_zh" / "zhwiki-test-pages.xml",
                 next((CORPORA / "wikipedia_xml_ja").glob("*.xz"))):
        # The truncated jawiki dump ends in one error row: its complete pages are kept.
        for row, reason in read_source_file("wikipedia", "wiki", str(path), {}):
            if reason is None:
                meta = json.loads(row["meta"])
                docs.extend(_chunks(f"{meta.get('wiki_language', 'wiki')}wiki/"
                                    f"{meta['page_id']}", row["text"], 600))
    ccnet = CORPORA / "chinese_web_ccnet" / "cleared1.jsonl"
    for k, line in enumerate(ccnet.read_text(encoding="utf-8").splitlines()):
        docs.append((f"ccnet/{k}", json.loads(line)["raw_content"]))
    with open(CORPORA / "chnsenticorp" / "ChnSentiCorp_htl_all.csv", encoding="utf-8",
              newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            if len(row["review"] or "") >= 100:
                docs.append((f"chnsenticorp/{k}", row["review"]))
    gold = json.loads((CORPORA / "html_extraction_zh_ja" / "ground-truth.json").read_text())
    for key, value in sorted(gold.items()):
        docs.append((f"gold/{key[:16]}", value["content"]))
    return docs


def mutate_words(text: str, rate: float, rng: random.Random, vocabulary: list[str]) -> str:
    """`mutate` for text written without spaces: deletions, substitutions and insertions of
    the language's words (`pipelines.languages`), the characters between words kept."""
    from pipelines import languages

    lang = languages.UNSPACED.get(languages.dominant_script(text), "zh")
    starts, ends = languages.word_spans(text, lang)
    out, at = [], 0
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        out.append(text[at:a])
        out.extend(_edit(text[a:b], rate, rng, vocabulary))
        at = b
    out.append(text[at:])
    return "".join(out)


CJK_BOILERPLATE = ["分享到微信 微博 QQ空间", "版权所有，未经许可不得转载。",
                   "点击这里订阅我们的新闻通讯。", "広告", "関連記事：こちらもおすすめ",
                   "ホーム > ニュース > 記事"]


def build_cjk_corpus(target_docs: int = 10_000, seed: int = 0) -> list[tuple[str, str]]:
    """`build_corpus` over `cjk_base_documents`, edits by words."""
    from pipelines import languages

    base = cjk_base_documents()
    vocabulary = sorted({w for _, t in base[:500] for w in languages.words(t[:300], "zh")
                         if w.isalpha()})
    return build_corpus(target_docs, seed, base, vocabulary, mutate_words, CJK_BOILERPLATE)


def build_corpus(target_docs: int = 20_000, seed: int = 0,
                 base: list[tuple[str, str]] | None = None, vocabulary: list[str] | None = None,
                 edit=None, boilerplate: list[str] | None = None) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    base = base_documents() if base is None else base
    if vocabulary is None:
        vocabulary = sorted({w for _, t in base[:2000] for w in t.split()[:50]})
    mutate_ = mutate if edit is None else edit
    boilerplate = BOILERPLATE if boilerplate is None else boilerplate
    corpus = list(base)
    while len(corpus) < target_docs:
        source_id, text = rng.choice(base)
        kind = rng.random()
        if kind < 0.55:
            rate = rng.choice([0.01, 0.02, 0.04, 0.06, 0.1, 0.15, 0.2, 0.3])
            new = mutate_(text, rate, rng, vocabulary)
            label = f"edit{int(rate * 100)}"
        elif kind < 0.7:
            new = text[: int(len(text) * rng.uniform(0.6, 0.97))]
            label = "trunc"
        elif kind < 0.85:
            new = rng.choice(boilerplate) + "\n" + text + "\n" + rng.choice(boilerplate)
            label = "boiler"
        else:
            _, other = rng.choice(base)
            cut = int(len(other) * rng.uniform(0.2, 0.8))
            new = other[:cut] + "\n" + text[: int(len(text) * rng.uniform(0.3, 1.0))]
            label = "splice"
        corpus.append((f"dup/{len(corpus):06d}/{label}/{source_id}", new))
    return corpus


def shingles(text: str, n: int = 5) -> set[int]:
    # Sieve's MinHash words (pipelines/minhash.words): lower-cased \w+ runs, and in Chinese,
    # Japanese or Thai text the runs of the language's splitter's words.
    from pipelines.minhash import words as minhash_words

    words = minhash_words(text)
    if len(words) < n:
        return {hash(tuple(words))} if words else set()
    return {hash(tuple(words[i: i + n])) for i in range(len(words) - n + 1)}


def similar_pairs(corpus: list[tuple[str, str]], threshold: float = 0.5,
                  ) -> dict[tuple[int, int], float]:
    """All pairs (i < j) with exact Jaccard >= threshold, by prefix filtering."""
    sets = [shingles(text) for _, text in corpus]
    frequency: dict[int, int] = defaultdict(int)
    for s in sets:
        for token in s:
            frequency[token] += 1
    ordered = [sorted(s, key=lambda t: (frequency[t], t)) for s in sets]
    index: dict[int, list[int]] = defaultdict(list)
    pairs: dict[tuple[int, int], float] = {}
    for i in sorted(range(len(sets)), key=lambda k: len(sets[k])):
        x = ordered[i]
        if not x:
            continue
        prefix = len(x) - math.ceil(threshold * len(x)) + 1
        candidates = set()
        for token in x[:prefix]:
            candidates.update(index[token])
            index[token].append(i)
        for j in candidates:
            # j is no larger than i (processed in size order): the size filter holds by design.
            inter = len(sets[i] & sets[j])
            jac = inter / (len(sets[i]) + len(sets[j]) - inter)
            if jac >= threshold:
                pairs[(min(i, j), max(i, j))] = jac
    return pairs


def score(corpus: list[tuple[str, str]], pairs: dict[tuple[int, int], float],
          removed_ids: set[str]) -> dict[str, float | int]:
    ids = [doc_id for doc_id, _ in corpus]
    removed = {k for k, doc_id in enumerate(ids) if doc_id in removed_ids}
    unknown = removed_ids - set(ids)
    if unknown:
        raise ValueError(f"removed ids not in the corpus: {sorted(unknown)[:5]}")
    strong = {p for p, j in pairs.items() if j >= 0.8}
    has_strong = {k for p in strong for k in p}
    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    covered = sum(1 for a, b in strong if a in removed or b in removed)
    orphans = sum(1 for r in removed if not (neighbours[r] - removed))
    return {
        "documents": len(ids), "removed": len(removed),
        "pairs_at_0.5": len(pairs), "pairs_at_0.8": len(strong),
        "precision_at_0.8": round(len(removed & has_strong) / max(len(removed), 1), 4),
        "recall_at_0.8": round(covered / max(len(strong), 1), 4),
        "orphans": orphans,
    }


def write_jsonl_gz(corpus: list[tuple[str, str]], path: Path) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for doc_id, text in corpus:
            fh.write(json.dumps({"id": doc_id, "text": text}) + "\n")
