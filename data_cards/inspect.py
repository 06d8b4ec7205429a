"""`sieve inspect ROOT RECIPE`: one self-contained HTML page per build that shows what each stage
kept and dropped and why, the documents behind every reason, and which documents were merged.

Contract: `page(recipe, root) -> str` finds the build's stage outputs by their keys (nothing is
built or recomputed: a stage that was never built is an error naming it) and reads:
- every document stage's manifest counters (the page's totals are the manifests' own);
- per source, kept and rejected rows by reason, from the `source` and `reason` columns alone;
- up to `SAMPLE_PER_REASON` rejected documents per stage and reason, and as many kept ones per
  stage and source (in the clean stage also as many that cleaning changed): text, language, for
  a clean rejection the statistic that failed and its threshold (`meta.rule_value`,
  `meta.rule_threshold`), for a kept document what cleaning changed (`meta.cleaning`: C4's
  removed lines, PII placeholders), for a decontaminated one its evaluation n-gram
  (`meta.matched_ngram`);
- duplicate pairs, a removed document beside the document it was removed for
  (`meta.duplicate_of`), for the largest clusters (`clusters.json`) and for a seeded random
  sample of removed documents: cluster size, estimated Jaccard (agreeing values of the stage's
  MinHash) and exact Jaccard over the dedup stage's shingles, the shared shingles' words marked;
- the languages (clean counters), the cluster size histogram and the card's plots.
The data go into the page as JSON; a small script (no network, nothing fetched) renders it:
tabs for the overview, documents, duplicates and plots, all reachable by keyboard.

`serve(recipe, root, port)` serves the same page and `/api/docs`: every document of a stage,
filtered by reason, source, language and text, a page at a time, read from the row groups that
hold it (`Browser`: an index of (source, reason) counts per row group, made from those two
columns at start; a filtered page reads only the row groups it needs).
"""

from __future__ import annotations

import base64
import html
import json
import random
import threading
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.manifest import RunOptions, StageOutput, key_of, read_manifest
from pipelines.recipe import Recipe

SAMPLE_PER_REASON = 25
LARGEST = 10  # pairs for the largest clusters
RANDOM_PAIRS = 20  # and for a seeded random sample of removed documents
PAGE = 10  # documents per page of /api/docs
TEXT_CHARS = 6000
DOCUMENT_STAGES = ("ingest", "clean", "dedup")
PLOTS = ("lengths.png", "languages.png", "s_curve.png")


class NotBuilt(LookupError):
    pass


def locate(recipe: Recipe, root: str) -> dict[str, StageOutput]:
    """The build's outputs up to the card, by key, without running anything."""
    from flows.build import run_stages

    def lookup(module, cfg, inputs, root_, options, force=False) -> StageOutput:
        key = key_of(module, cfg, inputs)
        folder = Path(root_) / module.NAME / key
        manifest = read_manifest(folder)
        if manifest is None:
            raise NotBuilt(f"{folder}: stage {module.NAME} of {recipe.name} is not built; run "
                           f"`sieve build` with this recipe and root first")
        return StageOutput(module.NAME, key, folder, manifest, cached=True)

    return run_stages(recipe, root, RunOptions(show_progress=False), until="card",
                      run_stage=lookup)


def latest(root: str) -> dict[str, StageOutput]:
    """Without a recipe: the stages of the root's newest data card, by the keys its manifest
    names."""
    cards = [(m["key"], p) for p in Path(root, "card").glob("*")
             if (m := read_manifest(p)) is not None]
    if not cards:
        raise NotBuilt(f"{root}: no built data card; run `sieve build` first")
    folder = max((p for _, p in cards), key=lambda p: (p / "manifest.json").stat().st_mtime)
    manifest = read_manifest(folder)
    outputs = {"card": StageOutput("card", manifest["key"], folder, manifest, cached=True)}
    pending = dict(manifest["inputs"])
    while pending:
        stage, ref = pending.popitem()
        path = Path(root) / ref["stage"] / ref["key"]
        found = read_manifest(path)
        if found is None:
            raise NotBuilt(f"{path}: stage {stage} named by {folder} is missing")
        outputs[stage] = StageOutput(stage, ref["key"], path, found, cached=True)
        pending.update({k: v for k, v in found.get("inputs", {}).items() if k not in outputs})
    return outputs


def _files(folder: Path, sub: str) -> list[Path]:
    return sorted((folder / sub).glob("*.parquet"))


def per_source(folder: Path) -> dict[str, dict[str, int]]:
    """source -> {"kept": n, "<reason>": n, ...} from two columns of the stage's files."""
    out: dict[str, Counter] = defaultdict(Counter)
    for path in _files(folder, "docs"):
        for source, n in Counter(pq.read_table(path, columns=["source"]).column(
                "source").to_pylist()).items():
            out[source]["kept"] += n
    for path in _files(folder, "rejected"):
        table = pq.read_table(path, columns=["source", "reason"])
        for (source, reason), n in Counter(zip(table.column("source").to_pylist(),
                                               table.column("reason").to_pylist(),
                                               strict=True)).items():
            out[source][reason] += n
    return {s: dict(c) for s, c in sorted(out.items())}


def _doc(row: dict[str, Any], stage: str) -> dict[str, Any]:
    meta = json.loads(row.get("meta") or "{}")
    doc = {"id": row["id"], "source": row["source"], "split": row["split"], "stage": stage,
           "reason": row.get("reason") or "kept", "language": meta.get("language", "unknown"),
           "chars": len(row["text"]), "text": row["text"][:TEXT_CHARS]}
    if "rule_value" in meta and "rule_threshold" in meta:
        doc["value"], doc["threshold"] = meta["rule_value"], meta["rule_threshold"]
        doc["thresholds"] = meta.get("thresholds")
    if meta.get("duplicate_of"):
        doc["duplicate_of"] = meta["duplicate_of"]
    if meta.get("matched_ngram"):
        doc["matched_ngram"] = meta["matched_ngram"]
    if meta.get("cleaning"):  # offsets past the text shown are left out
        edits = meta["cleaning"]
        doc["removed_lines"] = [e for e in edits.get("removed_lines", []) if e[0] <= TEXT_CHARS]
        doc["redacted"] = [e for e in edits.get("redacted", []) if e[1] <= TEXT_CHARS]
    return doc


def samples(folder: Path, stage: str) -> list[dict[str, Any]]:
    """Up to SAMPLE_PER_REASON rejected documents per reason and kept documents per source (in
    the clean stage as many again that cleaning changed), in file order, streamed: reading
    stops once every quota is full."""
    docs = []
    for sub in ("rejected", "docs"):
        taken: Counter = Counter()
        for path in _files(folder, sub):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
                if sub == "rejected":
                    keys = batch.column(batch.schema.get_field_index("reason")).to_pylist()
                else:
                    sources = batch.column(batch.schema.get_field_index("source")).to_pylist()
                    changed = pc.match_substring(
                        batch.column(batch.schema.get_field_index("meta")),
                        '"cleaning": ').to_pylist()
                    keys = [(src, bool(c and stage == "clean"))
                            for src, c in zip(sources, changed, strict=True)]
                want = []
                for i, key in enumerate(keys):
                    for k in ({key, (key[0], False)} if sub == "docs" else {key}):
                        if taken[k] < SAMPLE_PER_REASON:
                            taken[k] += 1
                            if not want or want[-1] != i:
                                want.append(i)
                if want:
                    rows = pa.Table.from_batches([batch]).take(pa.array(want)).to_pylist()
                    docs += [_doc(r, stage) for r in rows]
    return docs


def _rows_by_id(files: list[Path], ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows with these ids: each row group's `id` column is read, and only the row groups
    that hold one of them in full (a few rows out of a large build, without reading its
    text)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = pa.array(sorted(set(ids)), pa.string())
    for path in files:
        parquet = pq.ParquetFile(path)
        for group in range(parquet.num_row_groups):
            hits = pc.is_in(parquet.read_row_group(group, columns=["id"]).column("id"), wanted)
            if pc.any(hits).as_py():
                rows = parquet.read_row_group(group).filter(hits)
                found.update({r["id"]: r for r in rows.to_pylist()})
    return found


def shingles(tokens: list[str], ngram: int) -> set[tuple[str, ...]]:
    """The dedup stage's shingles (`MinHasher.datasketch_minhash`): word n-grams, or the whole
    text for one shorter than n words."""
    n = min(ngram, len(tokens))
    return {tuple(tokens[i: i + n]) for i in range(len(tokens) - n + 1)} if n else set()


def removed_sample(folder: Path, seed: int = 0) -> tuple[list[str], Counter]:
    """A seeded random sample (reservoir) of the dedup stage's removed documents with a keeper,
    and every keeper's number of removed documents; reads the rejected rows' id and meta."""
    rng = random.Random(seed)
    chosen: list[str] = []
    sizes: Counter = Counter()
    seen = 0
    for path in _files(folder, "rejected"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096, columns=["id", "meta"]):
            ids = batch.column(0).to_pylist()
            for doc_id, meta in zip(ids, batch.column(1).to_pylist(), strict=True):
                keeper = json.loads(meta).get("duplicate_of")
                if keeper is None:
                    continue
                sizes[keeper] += 1
                seen += 1
                if len(chosen) < RANDOM_PAIRS:
                    chosen.append(doc_id)
                elif (j := rng.randrange(seen)) < RANDOM_PAIRS:
                    chosen[j] = doc_id
    return chosen, sizes


def duplicate_pairs(folder: Path, cfg: dict[str, Any], clusters: dict | None
                    ) -> list[dict[str, Any]]:
    """Removed documents beside the ones they were removed for: one per largest cluster
    (`clusters.json`), then a seeded random sample of all removed ones. The estimated Jaccard
    is the share of agreeing values of the stage's MinHash signatures (its seed and
    permutations; `signatures/` holds the kept documents' only, so both are hashed again here,
    as the stage hashed them)."""
    from pipelines.minhash import MinHasher, words
    from pipelines.recipe import DedupConfig

    dedup_cfg = DedupConfig.model_validate(cfg)
    ngram = dedup_cfg.ngram
    largest = [(c["sample_removed"][0], "largest") for c in (clusters or {}).get("largest", [])
               [:LARGEST] if c["sample_removed"]]
    chosen, sizes = removed_sample(folder)
    wanted = largest + [(i, "random") for i in chosen if i not in dict(largest)]
    rows = _rows_by_id(_files(folder, "rejected"), [i for i, _ in wanted])
    keepers = _rows_by_id(_files(folder, "docs") + _files(folder, "rejected"),
                          [json.loads(r["meta"])["duplicate_of"] for r in rows.values()])
    hasher = MinHasher(dedup_cfg.num_perm, dedup_cfg.seed, ngram)
    pairs = []
    for doc_id, group in wanted:
        d = _doc(rows[doc_id], "dedup")
        keeper = keepers.get(d["duplicate_of"])
        if keeper is None:
            continue
        kept = _doc(keeper, "dedup")
        grams_a, grams_b = shingles(words(d["text"]), ngram), shingles(words(kept["text"]), ngram)
        union = grams_a | grams_b
        shared = grams_a & grams_b
        sig_a, sig_b = hasher.signatures([rows[doc_id]["text"], keeper["text"]])
        pairs.append({"removed": d, "kept": kept, "reason": d["reason"], "group": group,
                      "cluster_size": 1 + sizes[kept["id"]],
                      "exact_jaccard": round(len(shared) / len(union), 4) if union else 1.0,
                      "estimated_jaccard": round(float((sig_a == sig_b).mean()), 4),
                      "shared_words": sorted({w for g in shared for w in g})})
    return pairs


def languages(counters: dict[str, int]) -> list[dict[str, Any]]:
    """The clean stage's documents in and kept per language (its `lang:<code>:in/out`)."""
    codes = sorted({k.split(":")[1] for k in counters if k.startswith("lang:")})
    rows = [{"language": c, "in": counters.get(f"lang:{c}:in", 0),
             "kept": counters.get(f"lang:{c}:out", 0)} for c in codes]
    return sorted(rows, key=lambda r: -r["in"])


def collect(recipe: Recipe | None, root: str) -> dict[str, Any]:
    outputs = locate(recipe, root) if recipe is not None else latest(root)
    stages = []
    docs: list[dict[str, Any]] = []
    for name in DOCUMENT_STAGES:
        out = outputs[name]
        stages.append({"stage": name, "key": out.key, "counters": out.counters,
                       "sources": per_source(out.path)})
        docs += samples(out.path, name)
    for name in ("tokenizer", "shard", "mix", "tasks"):
        stages.append({"stage": name, "key": outputs[name].key,
                       "counters": outputs[name].counters, "sources": {}})
    dedup = outputs["dedup"]
    clusters_path = dedup.path / "clusters.json"
    clusters = json.loads(clusters_path.read_text()) if clusters_path.exists() else None
    plots = {}
    for name in PLOTS:
        path = outputs["card"].path / name
        if path.exists():
            plots[name] = "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
    name = recipe.name if recipe is not None else outputs["card"].manifest["config"].get(
        "pretty_name") or "build"
    return {"recipe": name, "root": str(Path(root).resolve()), "stages": stages,
            "documents": docs,
            "pairs": duplicate_pairs(dedup.path, dedup.manifest["config"], clusters),
            "clusters": clusters, "plots": plots,
            "languages": languages(outputs["clean"].counters),
            "sample_per_reason": SAMPLE_PER_REASON, "served": False}


def render(data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    template = (Path(__file__).with_name("inspect.html")).read_text(encoding="utf-8")
    return (template.replace("{{title}}", html.escape(f"Sieve build: {data['recipe']}"))
            .replace("{{data}}", text))


def page(recipe: Recipe | None, root: str) -> str:
    return render(collect(recipe, root))


class Browser:
    """Every document of the build's document stages, a page at a time, for `/api/docs`.

    At start, per stage, kept (`docs/`) and rejected files, per row group its (source, reason)
    counts, from those two columns (what the overview reads anyway). A query by stage, reason
    and source skips whole row groups by those counts and reads only the row groups that hold
    its page; one by language or text reads those row groups' `meta` or `text` column too, and
    remembers each row group's matches, so the next page starts where this one ended."""

    def __init__(self, outputs: dict[str, StageOutput]) -> None:
        self.groups: dict[str, list[tuple[Path, int, Counter]]] = {}
        for stage in DOCUMENT_STAGES:
            groups = []
            for sub in ("docs", "rejected"):
                for path in _files(outputs[stage].path, sub):
                    parquet = pq.ParquetFile(path)
                    columns = ["source"] + (["reason"] if sub == "rejected" else [])
                    for g in range(parquet.num_row_groups):
                        table = parquet.read_row_group(g, columns=columns)
                        reasons = (table.column("reason").to_pylist() if sub == "rejected"
                                   else ["kept"] * table.num_rows)
                        groups.append((path, g, Counter(zip(table.column("source").to_pylist(),
                                                            reasons, strict=True))))
            self.groups[stage] = groups
        self.matches: dict[tuple, list[int | None]] = {}  # per query: matches per row group
        self.lock = threading.Lock()

    def _mask(self, table: pa.Table, reason: str, source: str, language: str, text: str
              ) -> pa.Array:
        mask = pa.array([True] * table.num_rows)
        if reason:
            column = (table.column("reason") if "reason" in table.column_names
                      else pa.array(["kept"] * table.num_rows))
            mask = pc.and_(mask, pc.equal(column, reason))
        if source:
            mask = pc.and_(mask, pc.equal(table.column("source"), source))
        if language:  # meta is JSON with sorted keys: `"language": "<code>"`
            has = pc.match_substring(table.column("meta"), f'"language": {json.dumps(language)}')
            if language == "unknown":
                has = pc.invert(pc.match_substring(table.column("meta"), '"language": '))
            mask = pc.and_(mask, has)
        if text:
            mask = pc.and_(mask, pc.match_substring(table.column("text"), text, ignore_case=True))
        return mask

    def query(self, stage: str, reason: str = "", source: str = "", language: str = "",
              text: str = "", page: int = 0) -> dict[str, Any]:
        if stage not in self.groups:
            raise KeyError(f"no document stage {stage!r}; one of {', '.join(self.groups)}")
        groups = self.groups[stage]

        def initial(counts: Counter) -> int | None:
            n = sum(v for (s, r), v in counts.items()
                    if (not reason or r == reason) and (not source or s == source))
            return n if n == 0 or not (language or text) else None  # None: not read yet

        with self.lock:
            counts = self.matches.setdefault((stage, reason, source, language, text),
                                             [initial(c) for _, _, c in groups])
            skip, docs = page * PAGE, []
            columns = ["source"] + ["meta"] * bool(language) + ["text"] * bool(text)
            for k, (path, g, _) in enumerate(groups):
                if len(docs) == PAGE:
                    break
                if counts[k] is not None and counts[k] <= skip:
                    skip -= counts[k]
                    continue
                parquet = pq.ParquetFile(path)
                rejected = "reason" in parquet.schema_arrow.names
                mask = self._mask(parquet.read_row_group(
                    g, columns=columns + ["reason"] * rejected), reason, source, language, text)
                counts[k] = pc.sum(mask.cast(pa.int64())).as_py() or 0
                if counts[k] <= skip:
                    skip -= counts[k]
                    continue
                hits = parquet.read_row_group(g).filter(mask).slice(skip, PAGE - len(docs))
                skip = 0
                docs += [_doc(r, stage) for r in hits.to_pylist()]
            known = all(c is not None for c in counts)
            return {"stage": stage, "page": page, "page_size": PAGE, "docs": docs,
                    "total": sum(counts) if known else None,
                    "at_least": sum(c for c in counts if c is not None)}


def serve(recipe: Recipe | None, root: str, port: int) -> None:
    """The page on http://127.0.0.1:PORT/ and every document behind `/api/docs?stage=..&
    reason=..&source=..&language=..&q=..&page=N`, until interrupted."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    outputs = locate(recipe, root) if recipe is not None else latest(root)
    data = collect(recipe, root)
    body = render({**data, "served": True}).encode("utf-8")
    browser = Browser(outputs)

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: int, content: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html"):
                return self.reply(200, body, "text/html; charset=utf-8")
            if url.path != "/api/docs":
                return self.reply(404, b"not found", "text/plain")
            q = {k: v[-1] for k, v in parse_qs(url.query).items()}
            try:
                found = browser.query(q.get("stage", "clean"), q.get("reason", ""),
                                      q.get("source", ""), q.get("language", ""),
                                      q.get("q", ""), max(0, int(q.get("page", "0"))))
            except (KeyError, ValueError) as exc:
                return self.reply(400, json.dumps({"error": str(exc)}).encode(),
                                  "application/json")
            self.reply(200, json.dumps(found, ensure_ascii=False).encode("utf-8"),
                       "application/json; charset=utf-8")

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        print(f"sieve inspect: http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)",
              flush=True)
        server.serve_forever()
