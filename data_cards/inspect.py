"""`sieve inspect ROOT RECIPE`: one self-contained HTML page per build that shows what each stage
kept and dropped and why, the documents behind every reason, and which documents were merged.

Contract: `page(recipe, root) -> str` finds the build's stage outputs by their keys (nothing is
built or recomputed: a stage that was never built is an error naming it) and reads:
- every document stage's manifest counters (the page's totals are the manifests' own);
- per source, kept and rejected rows by reason, from the `source` and `reason` columns alone;
- up to `SAMPLE_PER_REASON` rejected documents per stage and reason (text, language, and for the
  clean stage the statistic that failed and its threshold, `meta.rule_value` /
  `meta.rule_threshold`);
- up to `PAIRS` duplicate pairs: a removed document and the document it was removed for
  (`meta.duplicate_of`), their estimated Jaccard (agreeing values of the stage's MinHash) and
  exact Jaccard over the dedup stage's shingles, with the shared shingles' words marked;
- the dedup stage's largest clusters (`clusters.json`) and the card's plots.
The data go into the page as JSON; a small script (no network, nothing fetched) renders it:
tabs for the overview, documents, duplicates and plots, all reachable by keyboard.
"""

from __future__ import annotations

import base64
import html
import json
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.manifest import RunOptions, StageOutput, key_of, read_manifest
from pipelines.recipe import Recipe

SAMPLE_PER_REASON = 25
PAIRS = 40
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
           "reason": row.get("reason"), "language": meta.get("language", "unknown"),
           "chars": len(row["text"]), "text": row["text"][:TEXT_CHARS]}
    if "rule_value" in meta and "rule_threshold" in meta:
        doc["value"], doc["threshold"] = meta["rule_value"], meta["rule_threshold"]
        doc["thresholds"] = meta.get("thresholds")
    if meta.get("duplicate_of"):
        doc["duplicate_of"] = meta["duplicate_of"]
    return doc


def rejected_samples(folder: Path, stage: str) -> list[dict[str, Any]]:
    """Up to SAMPLE_PER_REASON rejected documents per reason, in file order, streamed."""
    taken: Counter = Counter()
    docs = []
    for path in _files(folder, "rejected"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            reasons = batch.column(batch.schema.get_field_index("reason")).to_pylist()
            want = []
            for i, reason in enumerate(reasons):
                if taken[reason] < SAMPLE_PER_REASON:
                    taken[reason] += 1
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


def duplicate_pairs(folder: Path, cfg: dict[str, Any], samples: list[dict[str, Any]]
                    ) -> list[dict[str, Any]]:
    """Removed documents (of the stage's sampled rejected ones) beside the ones they were
    removed for, MinHash pairs first, longer ones first. The estimated Jaccard is the share of
    agreeing values of the stage's MinHash signatures (its seed and permutations;
    `signatures/` holds the kept documents' only, so both are hashed again here, as the stage
    hashed them)."""
    from pipelines.minhash import MinHasher, words
    from pipelines.recipe import DedupConfig

    dedup_cfg = DedupConfig.model_validate(cfg)
    ngram = dedup_cfg.ngram
    removed = [d for d in samples if d.get("duplicate_of")]  # the dedup stage's rejected
    removed.sort(key=lambda d: (d["reason"] != "duplicate_minhash", -d["chars"]))
    removed = removed[:PAIRS]
    keepers = _rows_by_id(_files(folder, "docs") + _files(folder, "rejected"),
                          [d["duplicate_of"] for d in removed])
    hasher = MinHasher(dedup_cfg.num_perm, dedup_cfg.seed, ngram)
    pairs = []
    for d in removed:
        keeper = keepers.get(d["duplicate_of"])
        if keeper is None:
            continue
        kept = _doc(keeper, "dedup")
        grams_a, grams_b = shingles(words(d["text"]), ngram), shingles(words(kept["text"]), ngram)
        union = grams_a | grams_b
        shared = grams_a & grams_b
        sig_a, sig_b = hasher.signatures([d["text"], keeper["text"]])
        pairs.append({"removed": d, "kept": kept, "reason": d["reason"],
                      "exact_jaccard": round(len(shared) / len(union), 4) if union else 1.0,
                      "estimated_jaccard": round(float((sig_a == sig_b).mean()), 4),
                      "shared_words": sorted({w for g in shared for w in g})})
    return pairs


def collect(recipe: Recipe | None, root: str) -> dict[str, Any]:
    outputs = locate(recipe, root) if recipe is not None else latest(root)
    stages = []
    samples: dict[str, list[dict[str, Any]]] = {}
    for name in DOCUMENT_STAGES:
        out = outputs[name]
        stages.append({"stage": name, "key": out.key, "counters": out.counters,
                       "sources": per_source(out.path)})
        samples[name] = rejected_samples(out.path, name)
    for name in ("tokenizer", "shard", "tasks"):
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
            "documents": [d for name in DOCUMENT_STAGES for d in samples[name]],
            "pairs": duplicate_pairs(dedup.path, dedup.manifest["config"], samples["dedup"]),
            "clusters": clusters, "plots": plots,
            "sample_per_reason": SAMPLE_PER_REASON}


def page(recipe: Recipe | None, root: str) -> str:
    data = collect(recipe, root)
    text = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    template = (Path(__file__).with_name("inspect.html")).read_text(encoding="utf-8")
    return (template.replace("{{title}}", html.escape(f"Sieve build: {data['recipe']}"))
            .replace("{{data}}", text))


def serve(text: str, port: int) -> None:
    """The page on http://127.0.0.1:PORT/ until interrupted."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = text.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            found = self.path.split("?")[0] in ("/", "/index.html")
            content = body if found else b"not found"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        print(f"sieve inspect: http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)",
              flush=True)
        server.serve_forever()
