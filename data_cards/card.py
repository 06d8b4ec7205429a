"""Card stage: a markdown data card generated from the run's manifests (never hand-edited).

Contract: `run(cfg: CardConfig, {stage: folder, ...}, out, options) -> counters` reads each input
stage's `manifest.json` (and the shard index and tokenizer stats where present) and writes
`out/README.md` in the Hugging Face dataset-card layout: YAML front matter, then every stage's
counters with its drop reasons, the shard totals (per split and per source), the mixture plan
training follows (target against planned tokens, epochs and repeats, and `mixture.png`), the
tokenizer statistics and the lineage keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from data_cards.plots import figure
from pipelines import runners
from pipelines.manifest import RunOptions, read_manifest
from pipelines.recipe import CardConfig

NAME = "card"
VERSION = 14  # 8: reason rows with equal counts in name order (they followed set order);
#             9: the web-text limitation names the new main-text extractor;
#             10: Wikipedia markup left per source, limitations of every kind;
#             11: raw arms (cleaning or dedup off), the neutral held-out set;
#             12: tokens per source and split, the mixture plan (table and plot);
#             13: the bad words each language is checked for, in the per-language table;
#             14: C4's page minimum stated without calling it the variant's
# limitations; 5, 6: language tags from the data (confident identifications only); 7: cleaning
# table per source


def plot_s_curve(bands: int, rows: int, threshold: float | None, path: Path) -> None:
    import numpy as np

    from pipelines.minhash import detection_probability

    s = np.linspace(0, 1, 201)
    with figure(path, (5, 3.2)) as ax:
        ax.plot(s, detection_probability(s, bands, rows), lw=2)
        if threshold is not None:
            ax.axvline(threshold, color="grey", ls="--", lw=1,
                       label=f"verification threshold {threshold}")
            ax.legend(loc="lower right")
        ax.set_xlabel("Jaccard similarity of word n-gram sets")
        ax.set_ylabel("P(candidate pair)")
        ax.set_title(f"MinHash LSH, {bands} bands x {rows} rows")
        ax.grid(alpha=0.3)


LIMITATIONS = {
    "wikipedia": "Wikipedia text is converted from wikitext: tables, infoboxes and templates are "
                 "removed, so facts that live only there are missing.",
    "commoncrawl": "Web pages are reduced to their main text by heuristics (trafilatura's rules, "
                   "pipelines/sources/html_text.py): page titles, captions, navigation and "
                   "comment sections are left out, and pages with no article container fall back "
                   "to the whole pruned page. They are judged by heuristic rules "
                   "(C4, Gopher, FineWeb): spam written in fluent prose passes them. Each "
                   "language is judged by FineWeb-2's thresholds and stop words for it where "
                   "they are shipped (43 languages), others by the English defaults. PII "
                   "redaction covers e-mail, IP addresses and phone numbers only, not names.",
    "imdb": "IMDb reviews are opinionated user text about films, in English only.",
    "conll2003": "CoNLL-2003 sentences are short Reuters news sentences from 1996; language "
                 "identification is unreliable on such short texts.",
    "jsonl": "JSON Lines records as their owner wrote them; they are judged by the web rules "
             "(C4, Gopher, FineWeb), with each language's thresholds.",
    "parquet": "Parquet records as their owner wrote them; they are judged by the web rules "
               "(C4, Gopher, FineWeb), with each language's thresholds.",
    "classification": "Labelled rows of a CSV/TSV file: only normalised, never filtered (the "
                      "split must stay whole); without a split column the train/test split is "
                      "a seeded hash of the text, not the set's published one.",
    "conll": "CoNLL column sentences: only normalised, never filtered; short sentences make "
             "language identification unreliable.",
}


def source_section(ingest: dict[str, Any], docs: Any) -> list[str]:
    """Per source: kind, licence, documents ingested and kept after dedup."""
    import pyarrow.compute as pc

    from pipelines.recipe import Source

    counts = dict(zip(*pc.value_counts(docs.column("source")).flatten(), strict=True))
    counts = {str(k): int(v.as_py()) for k, v in counts.items()}
    lines = ["## Sources and licences", "", "| source | kind | documents kept | licence |",
             "|---|---|---:|---|"]
    wiki = []
    for raw in ingest["config"]["sources"]:
        src = Source.model_validate(raw)
        lines.append(f"| {src.source_name} | {src.kind} | {counts.get(src.source_name, 0):,} | "
                     f"{src.license_note} |")
        if src.kind == "wikipedia":
            wiki.append(src.source_name)
    if wiki and "markup_left" in docs.column_names:
        left = docs.filter(docs.column("markup_left"))
        found = {str(k): int(v.as_py()) for k, v in zip(
            *pc.value_counts(left.column("source")).flatten(), strict=True)} if len(left) else {}
        lines += ["", "Wikipedia markup left in the kept articles (`{{`, `}}`, and zhwiki's "
                  "variant markup `-{` `}-`): " + ", ".join(
                      f"{name} {found.get(name, 0):,} of {counts.get(name, 0):,}"
                      for name in wiki) + "."]
    return lines + [""]


def document_summary(folder: str) -> Any:
    """Per kept document: source, characters, language and its score; streamed a record batch
    at a time, so the card never holds the text of the corpus."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.io import iter_batches, parquet_files

    parts = []
    for path in parquet_files(folder):
        for table in iter_batches(path, ["source", "text", "meta"]):
            metas = [json.loads(m) for m in table.column("meta").to_pylist()]
            parts.append(pa.table({
                "source": table.column("source"),
                "chars": pc.utf8_length(table.column("text")),
                "markup_left": pc.match_substring_regex(table.column("text"),
                                                        r"-\{|\}-|\{\{|\}\}"),
                "language": pa.array([m.get("language", "unknown") for m in metas], pa.string()),
                "language_score": pa.array([float(m.get("language_score", 0)) for m in metas],
                                           pa.float64())}))
    schema = pa.schema([("source", pa.string()), ("chars", pa.int32()),
                        ("markup_left", pa.bool_()),
                        ("language", pa.string()), ("language_score", pa.float64())])
    return pa.concat_tables(parts) if parts else schema.empty_table()


def plot_histograms(docs: Any, out: Path) -> tuple[dict, dict, list[str]]:
    """Document lengths (characters, log bins) and languages per source, as PNGs; returns the
    median lengths, the top languages, and the languages of at least 2% of the documents
    identified with probability >= 0.9 (the card's language tags)."""
    import numpy as np

    sources = docs.column("source").to_pylist()
    lengths = docs.column("chars").to_pylist()
    languages = docs.column("language").to_pylist()
    # Tags for the card's front matter count only confident identifications (short texts such
    # as CoNLL sentences are often misidentified with low scores).
    confident: dict[str, int] = {}
    for lang, score in zip(languages, docs.column("language_score").to_pylist(), strict=True):
        if score >= 0.9:
            confident[lang] = confident.get(lang, 0) + 1
    by_source: dict[str, list[int]] = {}
    lang_counts: dict[str, dict[str, int]] = {}
    for src, n, lang in zip(sources, lengths, languages, strict=True):
        by_source.setdefault(src, []).append(n)
        lang_counts.setdefault(src, {}).setdefault(lang, 0)
        lang_counts[src][lang] += 1
    bins = np.logspace(0, np.log10(max(lengths) + 1), 40)
    with figure(out / "lengths.png", (6, 3.4)) as ax:
        for src in sorted(by_source):
            ax.hist(by_source[src], bins=bins, histtype="step", lw=1.5, label=src)
        ax.set_xscale("log")
        ax.set_yscale("log")  # sources differ by orders of magnitude in size
        ax.set_xlabel("document length (characters)")
        ax.set_ylabel("documents")
        ax.legend(fontsize=8)
    totals: dict[str, int] = {}
    for per in lang_counts.values():
        for lang, n in per.items():
            totals[lang] = totals.get(lang, 0) + n
    top = sorted(totals, key=lambda k: -totals[k])[:10]
    with figure(out / "languages.png", (6, 3.4)) as ax:
        bottom = np.zeros(len(top))
        for src in sorted(lang_counts):
            heights = np.array([lang_counts[src].get(lang, 0) for lang in top])
            ax.bar(top, heights, bottom=bottom, label=src)
            bottom += heights
        ax.set_yscale("symlog")
        ax.set_ylabel("documents")
        ax.set_xlabel("language (py3langid)")
        ax.legend(fontsize=8)
    medians = {src: int(np.median(v)) for src, v in by_source.items()}
    tags = [k for k, v in sorted(confident.items(), key=lambda kv: -kv[1])
            if v >= 0.02 * len(languages)]
    return medians, {lang: totals[lang] for lang in top}, tags


def dedup_section(manifest: dict[str, Any], folder: Path, out: Path) -> list[str]:
    cfg, counters = manifest["config"], manifest["counters"]
    lines = ["## Deduplication", ""]
    if cfg.get("exact") is False and not cfg.get("minhash"):
        lines.append("Deduplication was off (`[dedup] exact = false, minhash = false`): only "
                     "decontamination ran.")
    else:
        lines.append(f"{'Exact (normalised text), then ' if cfg.get('exact', True) else ''}"
                     f"MinHash LSH over word {cfg.get('ngram')}-grams "
                     f"with {cfg.get('bands')} bands x {cfg.get('rows')} rows (seed "
                     f"{cfg.get('seed')})"
                     + (f", candidates verified at estimated Jaccard >= {cfg['threshold']}"
                        if cfg.get("verify") else ", unverified") + ". A document is removed "
                     "only for a kept document it resembles directly.")
    lines += ["", "| reason | documents |", "|---|---:|"]
    lines += [f"| {k.removeprefix('dropped:')} | {v:,} |" for k, v in sorted(counters.items())
              if k.startswith("dropped:")]
    if cfg.get("minhash"):
        plot_s_curve(cfg["bands"], cfg["rows"], cfg.get("threshold") if cfg.get("verify")
                     else None, out / "s_curve.png")
        lines += ["", "![S-curve](s_curve.png)"]
    clusters_path = folder / "clusters.json"
    if clusters_path.exists():
        clusters = json.loads(clusters_path.read_text(encoding="utf-8"))
        lines += ["", f"{clusters['clusters']:,} near-duplicate clusters; sizes:", "",
                  "| size | clusters |", "|---:|---:|"]
        histogram = sorted(clusters["size_histogram"].items(), key=lambda kv: int(kv[0]))
        lines += [f"| {size} | {n:,} |" for size, n in histogram]
        lines += ["", "Largest clusters:", "", "| size | kept | sample removed |", "|---:|---|---|"]
        for c in clusters["largest"][:5]:
            sample = ", ".join(f"`{i}`" for i in c["sample_removed"][:3])
            lines.append(f"| {c['size']} | `{c['kept']}` | {sample} |")
        if clusters["over_limit"]:
            lines += ["", f"**Warning:** {clusters['over_limit']} clusters exceed "
                      f"{clusters['limit']} documents."]
    if cfg.get("decontaminate"):
        lines += ["", "## Decontamination", "",
                  f"{counters.get('dropped:decontaminated', 0):,} pretraining documents shared a "
                  f"{cfg['decontaminate_ngram']}-word n-gram with a document of an evaluation "
                  "split (every split not in "
                  f"{', '.join(cfg.get('pretraining_splits', []))}"
                  + (f", or with the {counters.get('held_out_documents', 0):,} documents of the "
                     "neutral held-out set "
                     f"{', '.join(Path(h).name for h in cfg['held_out'])}"
                     if cfg.get("held_out") else "")
                  + ") and were removed; the evaluation splits themselves are never "
                  "deduplicated."]
    return lines + [""]


def clean_section(manifest: dict[str, Any]) -> list[str]:
    """Per source: documents in, kept, and dropped by each rule; the rules that ran."""
    from pipelines.clean import reason_table
    from pipelines.recipe import CleanConfig

    sources, rows = reason_table(manifest["counters"])
    if not sources:
        return []
    cfg = CleanConfig.model_validate(manifest["config"])
    if not cfg.enabled:
        return [f"Cleaning was off (`[clean] enabled = false`): all "
                f"{manifest['counters']['in']:,} documents passed through as ingested, without "
                "normalisation, rules, language identification or PII redaction.", ""]
    lines = ["Documents per source and the rule that dropped them (the first that applied):",
             "", "| | " + " | ".join(sources) + " | total |",
             "|---|" + "---:|" * (len(sources) + 1)]
    lines += [f"| {reason} | " + " | ".join(f"{v:,}" for v in values) + f" | {sum(values):,} |"
              for reason, values in rows]
    lines += ["", "| source | rule sets, in order | PII redacted | min chars | languages |",
              "|---|---|---|---:|---|"]
    for source in sources:
        rules = cfg.rules_for(source)
        lines.append(f"| {source} | {', '.join(rules.filters) or '-'} | "
                     f"{', '.join(rules.pii) or '-'} | {rules.min_chars} | "
                     f"{', '.join(rules.languages) or 'all'} |")
    lines += language_table(cfg, manifest["counters"])
    min_words, min_sentences, _ = cfg.c4.resolved()
    lines += ["", f"C4: lines of at least {min_words} words ending in terminal punctuation "
              f"({cfg.c4.variant} variant), pages of at least {min_sentences} sentences. "
              "Thresholds of every rule set are in the clean stage's manifest.", ""]
    return lines


def language_table(cfg: Any, counters: dict[str, int], top: int = 12) -> list[str]:
    """Per identified language (the most frequent `top`, then every other with thresholds of
    its own): documents in, kept, and the thresholds and words that judged them."""
    ins = {k.split(":")[1]: v for k, v in counters.items()
           if k.startswith("lang:") and k.endswith(":in")}
    if not ins:
        return []
    ranked = sorted(ins, key=lambda lang: (-ins[lang], lang))
    shown = ranked[:top] + [lang for lang in ranked[top:]
                            if cfg.rules_for_language(lang).origin != "default"]
    lines = ["", "Per language (lid.176), with the thresholds that judged it: FineWeb-2's "
             "published values for the language where Sieve ships them "
             "(pipelines/data/language_rules.json), else the `[clean]` ones; `+sieve` where "
             "Sieve departs from FineWeb-2's (pipelines/data/language_departures.json, each "
             "with its reason), `+recipe` where `[clean.languages.<code>]` changed them.", "",
             "| language | in | kept | kept share | thresholds | words | mean word length | "
             "min alpha-word share | C4 | bad words |",
             "|---|---:|---:|---:|---|---|---|---:|---|---:|"]
    for lang in shown:
        s = cfg.rules_for_language(lang).summary()
        n, kept = ins[lang], counters.get(f"lang:{lang}:out", 0)
        lo, hi = s["mean_word_length"]
        lines.append(f"| {lang} | {n:,} | {kept:,} | {kept / n:.1%} | {s['origin']} | "
                     f"{s['words']} | {lo:g}-{hi:g} | {s['min_alpha_words_ratio']:g} | "
                     f"{'on' if s['c4'] else 'off'} | {s['bad_words'] or 'off'} |")
    rest = len(ranked) - len(shown)
    if rest:
        lines.append(f"\n{rest} more languages with fewer documents, judged by `[clean]`'s "
                     "thresholds.")
    return lines


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "n>10M"


def mixture_section(plan: dict[str, Any], out: Path) -> list[str]:
    """The plan training follows: per source its target and planned tokens, and a plot."""
    if plan.get("natural"):
        lines = ["## Mixture", "", "No `[mix]` section: training reads every train sequence once, "
                 "in natural proportions.", ""]
    else:
        names = plan["source_names"]
        lines = ["## Mixture", "",
                 f"{plan['total_tokens']:,} tokens in {plan['steps']:,} global batches of "
                 f"{plan['global_batch_tokens']:,} tokens ({plan['global_batch_sequences']} "
                 f"sequences), seed {plan['seed']}, interleave {plan['interleave']}; plan "
                 f"`{plan['plan_id'][:12]}`. Training reads exactly this order on any number of "
                 "ranks.", "",
                 "| source | weight | available tokens | target tokens | planned tokens | "
                 "planned share | epochs | max repeat | repeated sequences |",
                 "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for n in names:
            s = plan["sources"][n]
            lines.append(f"| {n} | {s['weight']:g} | {s['available_tokens']:,} | "
                         f"{s['target_tokens']:,.0f} | {s['planned_tokens']:,} | "
                         f"{s['planned_share']:.2%} | {s['epochs']:.2f} | {s['max_repeat']:g} | "
                         f"{s['repeated_sequences']:,} |")
        if len(plan["stages"]) > 1:
            lines += ["", "| stage | from token | weights |", "|---|---:|---|"]
            lines += [f"| {i} | {st['from_tokens']:,} | "
                      + ", ".join(f"{k} {v:g}" for k, v in st["weights"].items() if v) + " |"
                      for i, st in enumerate(plan["stages"])]
        lines += ["", "![mixture: target and planned tokens per source](mixture.png)", ""]
        import numpy as np

        x = np.arange(len(names))
        with figure(out / "mixture.png", (6, 3.2)) as ax:
            ax.bar(x - 0.2, [plan["sources"][n]["target_tokens"] for n in names], 0.4,
                   label="target")
            ax.bar(x + 0.2, [plan["sources"][n]["planned_tokens"] for n in names], 0.4,
                   label="planned")
            ax.bar(x + 0.2, [plan["sources"][n]["repeated_sequences"] * plan["seq_len"]
                             for n in names], 0.4, color="none", hatch="//",
                   edgecolor="black", label="of which repeats")
            ax.set_xticks(x, names)
            ax.set_ylabel("tokens")
            ax.legend(fontsize=8)
    neutral = plan.get("neutral")
    if neutral:
        lines += [f"Neutral validation set (no mixture weights it): {neutral['documents']:,} "
                  f"held-out documents, {neutral['sequences']:,} sequences.", ""]
    return lines


def _counter_table(counters: dict[str, int]) -> list[str]:
    lines = ["| counter | value |", "|---|---:|"]
    order = sorted(counters, key=lambda k: (k not in ("in", "out"), k != "in", k))
    lines += [f"| `{k}` | {counters[k]:,} |" for k in order]
    return lines


def render(title: str, cfg: CardConfig, manifests: dict[str, dict[str, Any]],
           extras: dict[str, Any]) -> str:
    """The card's markdown; `extras["dedup_lines"]` is the already-rendered dedup section."""
    final_docs = manifests.get("dedup", {}).get("counters", {}).get("out", 0)
    sources = sorted({s["name"] or s["kind"]
                      for s in manifests.get("ingest", {}).get("config", {}).get("sources", [])})
    lines = [
        "---",
        f"pretty_name: {json.dumps(title)}",
        f"license: {cfg.license}",
        "language:\n" + "\n".join(f"- {lang}" for lang in extras.get("languages", ["en"])),
        "task_categories:\n- text-generation",
        f"size_categories:\n- {_size_category(final_docs)}",
        "source_datasets:\n" + "\n".join(f"- {s}" for s in sources),
        "---",
        "",
        f"# {title}",
        "",
        "Generated by Sieve's card stage from the build's manifests; do not edit by hand.",
        "",
        "## Summary",
        "",
        f"{final_docs:,} documents after cleaning and deduplication from {len(sources)} sources "
        f"({', '.join(sources)}).",
        "",
        "## Processing",
        "",
    ]
    for stage, manifest in manifests.items():
        ran = (f" on {runners.describe_text(manifest['runner'])}" if "runner" in manifest
               else "")
        lines += [f"### {stage}", "", f"key `{manifest['key']}`, {manifest['seconds']} s{ran}",
                  ""]
        lines += _counter_table({k: v for k, v in manifest["counters"].items()
                                 if not k.startswith(("source:", "lang:"))}) + [""]
        if stage == "clean":
            lines += clean_section(manifest)
    lines += extras.get("sources_lines", [])
    lines += extras.get("dedup_lines", [])
    lines += extras.get("distribution_lines", [])
    if "tokenizer" in extras:
        stats = extras["tokenizer"]
        overall = stats["sources"]["all"]
        lines += ["## Tokenizer", "",
                  f"SentencePiece {stats['model_type']}, {overall['vocab_size']:,} pieces, "
                  f"trained on {stats['training_sentences']:,} lines; "
                  f"{overall['vocab_used']:.1%} of the vocabulary used by the samples below.", "",
                  "| source | docs sampled | bytes/token | unknown rate | byte-fallback rate |"
                  " vocab used |", "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {src} | {s['docs']:,} | {s['bytes_per_token']} | {s['unk_rate']} | "
                  f"{s['byte_fallback_rate']} | {s['vocab_used']:.1%} |"
                  for src, s in sorted(stats["sources"].items()) if src != "all"] + [""]
    if "index" in extras:
        index = extras["index"]
        lines += ["## Splits and sizes", "",
                  f"Packed sequences of {index['seq_len']} tokens ({index['dtype']}).", "",
                  "| split | sequences | tokens |", "|---|---:|---:|"]
        lines += [f"| {split} | {t['rows']:,} | {t['tokens']:,} |"
                  for split, t in index["totals"].items()] + [""]
        if index.get("sources"):  # one source per sequence: the mixture weights these
            lines += ["| source | split | sequences | tokens | files |",
                      "|---|---|---:|---:|---:|"]
            lines += [f"| {src} | {split} | {t['sequences']:,} | {t['tokens']:,} | "
                      f"{t['files']:,} |" for src, splits in sorted(index["sources"].items())
                      for split, t in sorted(splits.items())] + [""]
        lines += ["## How to load", "", "```python",
                  "import datasets",
                  'ds = datasets.load_dataset(',
                  '    "arrow", data_files={"train": "<shard folder>/train/*.arrow"})',
                  "```", ""]
    lines += extras.get("mixture_lines", [])
    lines += extras.get("limitations_lines", [])
    lines += ["## Lineage", "", "| stage | key | inputs |", "|---|---|---|"]
    for stage, manifest in manifests.items():
        inputs = ", ".join(f"{v['stage']}:{v['key']}" for v in manifest["inputs"].values())
        lines.append(f"| {stage} | `{manifest['key']}` | {inputs or '-'} |")
    return "\n".join(lines) + "\n"


def run(cfg: CardConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    manifests: dict[str, dict[str, Any]] = {}
    extras: dict[str, Any] = {}
    for stage, folder in inputs.items():
        manifest = read_manifest(Path(folder))
        if manifest is None:
            raise FileNotFoundError(f"card: {folder} has no manifest.json")
        manifests[stage] = manifest
        if (Path(folder) / "index.json").exists():
            extras["index"] = json.loads((Path(folder) / "index.json").read_text("utf-8"))
        if (Path(folder) / "mixture.json").exists():
            extras["mixture_lines"] = mixture_section(
                json.loads((Path(folder) / "mixture.json").read_text("utf-8")), Path(out))
        if (Path(folder) / "stats.json").exists():
            extras["tokenizer"] = json.loads((Path(folder) / "stats.json").read_text("utf-8"))
        if stage == "dedup":
            extras["dedup_lines"] = dedup_section(manifest, Path(folder), Path(out))
            docs = document_summary(str(folder))
            extras["sources_lines"] = source_section(manifests["ingest"], docs)
            medians, languages, extras["languages"] = plot_histograms(docs, Path(out))
            extras["distribution_lines"] = [
                "## Lengths and languages", "",
                "| source | median characters |", "|---|---:|",
                *[f"| {s} | {m:,} |" for s, m in sorted(medians.items())], "",
                "![document lengths](lengths.png)", "",
                "Top languages: " + ", ".join(f"{k} {v:,}" for k, v in languages.items()), "",
                "![languages](languages.png)", ""]
            kinds = {s["kind"] for s in manifests["ingest"]["config"]["sources"]}
            extras["limitations_lines"] = ["## Limitations", "", *[
                f"- {LIMITATIONS[k]}" for k in sorted(kinds) if k in LIMITATIONS],
                "- Exact and near-duplicate removal works on word 5-grams: paraphrases and "
                "translations are not detected.", ""]
    title = cfg.pretty_name or "Sieve dataset"
    (Path(out) / "README.md").write_text(render(title, cfg, manifests, extras), "utf-8")
    return {"in": len(manifests), "out": len(manifests)}
