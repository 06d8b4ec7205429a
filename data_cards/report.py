"""Report stage: the evaluation report of a training run, generated from its stages' outputs.

Contract: `run({"recipe", "device"}, {stage: folder, ...}, out, options) -> counters` reads the
pretrain and finetune `metrics.json` and every input's manifest, and writes:
- `report.json`: metrics (validation loss, perplexity and bits per byte; IMDb accuracy, macro F1,
  confusion; CoNLL entity P/R/F1 per type), every input manifest key, library versions, the git
  revision and the device;
- `loss.png` (training and validation loss), `<task>_confusion.png` per classification task
  (`imdb_confusion.png`), `<task>_f1.png` per NER task (`conll_f1.png` for CoNLL-2003);
- `report.md`: the same, for people.
Bits per byte come from the evaluate stage (training/bpb.py): over whole validation sequences, and
on the recipe's neutral held-out set with a bootstrap interval over its documents, so that runs
with different tokenizers and data compare. Each fine-tuned metric has its mean and spread over
`finetune.seeds` beside its interval over test items and the baselines.
"""

from __future__ import annotations

import json
import math
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from data_cards.plots import figure
from pipelines.manifest import RunOptions, code_version, read_manifest

_TITLES = {"imdb": "IMDb sentiment", "conll2003": "CoNLL-2003 NER"}
_UNITS = {"imdb": "reviews"}
_PLOT_STEMS = {"conll2003": "conll"}
_BASELINES = {"majority": "majority class", "bag_of_pieces_logreg":
              "bag-of-pieces logistic regression (same training split)",
              "most_frequent_tag": "most frequent tag per word (same training split)"}


def _baseline_rows(m: dict, metric: str) -> list[str]:
    """The fine-tuned model beside the baselines on the same test items, with 95% bootstrap
    intervals over the items (not over seeds)."""
    interval = f"{metric}_ci95"
    rows = [f"| model | {metric} | 95% interval (bootstrap over test items) |", "|---|---:|---|"]
    seeds = m.get("seeds")
    if interval in m:
        first = f" (seed {seeds['seeds'][0]})" if seeds else ""
        rows.append(f"| fine-tuned{first} | {m[metric]} | {m[interval][0]} - {m[interval][1]} |")
    if seeds and len(seeds["values"]) > 1:
        rows.append(f"| fine-tuned, mean of {len(seeds['values'])} seeds | {seeds['mean']} "
                    f"(sd {seeds['sd']}, range {seeds['min']} - {seeds['max']}) | spread over "
                    "seeds is training noise, not covered by the interval |")
    for name, b in m.get("baselines", {}).items():
        rows.append(f"| {_BASELINES.get(name, name)} | {b[metric]} | {b[interval][0]} - "
                    f"{b[interval][1]} |")
    return rows if len(rows) > 2 else []


NAME = "report"
VERSION = 4  # 2: baseline rows and bootstrap intervals per task; 3: seeds, held-out bpb;
# 4: validation loss per source and on the neutral set, sequences read per source vs the plan
LIBRARIES = ("torch", "transformers", "apache-beam", "pyarrow", "sentencepiece", "datasets",
             "prefect", "datasketch")


def _versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return {"python": platform.python_version(), **found}


def plot_loss(history: dict[str, list], path: Path) -> None:
    with figure(path, (6, 3.5)) as ax:
        ax.plot(history["step"], history["loss"], label="train", lw=1)
        if history["val_step"]:
            ax.plot(history["val_step"], history["val_loss"], "o-", label="validation")
            for name, losses in history.get("val_loss_by_set", {}).items():
                if name != "all" and len(losses) == len(history["val_step"]):
                    ax.plot(history["val_step"], losses, ".--", lw=0.8,
                            label=name.removeprefix("source:"))
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats/token)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)


def plot_confusion(confusion: list[list[int]], labels: list[str], path: Path) -> None:
    with figure(path, (3.6, 3.2)) as ax:
        ax.imshow(confusion, cmap="Blues")
        for r, row in enumerate(confusion):
            for c, value in enumerate(row):
                ax.text(c, r, str(value), ha="center", va="center")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")


def plot_per_type(per_type: dict[str, dict[str, float]], path: Path) -> None:
    kinds = sorted(per_type)
    with figure(path, (5, 3)) as ax:
        for k, metric in enumerate(("precision", "recall", "f1")):
            ax.bar([i + 0.27 * (k - 1) for i in range(len(kinds))],
                   [per_type[t][metric] for t in kinds], width=0.27, label=metric)
        ax.set_xticks(range(len(kinds)), kinds)
        ax.set_ylim(0, 1)
        ax.legend()


def run(cfg: dict[str, Any], inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    out = Path(out)
    pre = json.loads((Path(inputs["pretrain"]) / "metrics.json").read_text())
    fine = json.loads((Path(inputs["finetune"]) / "metrics.json").read_text())
    val_loss = pre["final_val_loss"]
    metrics: dict[str, Any] = {
        "pretrain": {"objective": pre["objective"], "steps": pre["steps"],
                     "params_non_embedding": pre["params_non_embedding"],
                     "final_train_loss": pre["final_loss"], "validation_loss": val_loss,
                     "tokens_per_s": pre["tokens_per_s"],
                     "data_wait_share": pre["data_wait_share"]},
    }
    if pre["objective"] == "causal" and val_loss is not None:
        metrics["pretrain"]["validation_perplexity"] = round(math.exp(val_loss), 3)
    lm_path = Path(inputs["evaluate"]) / "metrics.json" if "evaluate" in inputs else None
    lm = json.loads(lm_path.read_text()) if lm_path and lm_path.exists() else {}
    if "validation" in lm:  # measured over whole validation sequences, bytes per piece
        v = lm["validation"]
        metrics["pretrain"]["validation_bits_per_byte"] = v["bits_per_byte"]
        metrics["pretrain"]["validation_tokens_scored"] = v["tokens"]
    if "held_out" in lm:
        h = lm["held_out"]
        metrics["pretrain"]["held_out_bits_per_byte"] = h["bits_per_byte"]
        metrics["pretrain"]["held_out_bits_per_byte_ci95"] = h["bits_per_byte_ci95"]
        metrics["pretrain"]["held_out_documents"] = h["documents"]
    for task, result in fine.items():
        metrics[task] = result["test"]
    lines = [f"# Evaluation report: {cfg['recipe']}", "",
             "Generated by Sieve's report stage from the run's outputs; do not edit by hand.", "",
             "## Pretraining", "", "| metric | value |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in metrics["pretrain"].items()]
    if "held_out" in lm:
        files = ", ".join(Path(f).name for f in lm["held_out"]["files"])
        lines += ["", f"Held-out bits per byte: {lm['held_out']['documents']:,} documents "
                  f"({lm['held_out']['bytes']:,} bytes) of {files}, "
                  "text this build does not contain (the dedup stage drops any pretraining "
                  "document sharing a decontamination n-gram with it); the interval resamples "
                  "documents."]
    elif lm.get("skipped"):
        lines += ["", f"Bits per byte: {lm['skipped']}."]
    by_set = pre.get("final_val_loss_by_set") or {}
    if by_set:
        metrics["pretrain"]["validation_loss_by_set"] = by_set
        lines += ["", "Validation loss at the last step, on the whole validation split, per "
                  "source and on the neutral held-out set (a source no mixture weights):", "",
                  "| validation set | loss (nats/token) |", "|---|---:|"]
        lines += [f"| {name.removeprefix('source:')} | {loss} |"
                  for name, loss in by_set.items()]
    mixture = pre.get("mixture")
    if mixture:
        metrics["pretrain"]["mixture"] = mixture
        lines += ["", f"Mixture plan `{mixture['plan_id'][:12]}`: sequences read per source, "
                  f"counted by the ranks, against the plan's first {mixture['tokens']:,} tokens:",
                  "", "| source | read | planned |", "|---|---:|---:|"]
        lines += [f"| {n} | {k:,} | {mixture['planned_sequences_to_here'][n]:,} |"
                  for n, k in mixture["read_sequences"].items()]
    plot_loss(pre["history"], out / "loss.png")
    lines += ["", "![loss curves](loss.png)", ""]
    for task in fine:
        m = metrics[task]
        stem = _PLOT_STEMS.get(task, task)
        if "confusion" in m:  # sequence classification
            plot_confusion(m["confusion"], m["labels"], out / f"{stem}_confusion.png")
            lines += [f"## {_TITLES.get(task, task)} (test split)", "",
                      f"accuracy **{m['accuracy']}**, macro F1 **{m['macro_f1']}** on "
                      f"{m['n']:,} {_UNITS.get(task, 'examples')}", "",
                      "| class | precision | recall | F1 |", "|---|---:|---:|---:|"]
            lines += [f"| {c} | {v['precision']} | {v['recall']} | {v['f1']} |"
                      for c, v in m["per_class"].items()]
            lines += ["", *_baseline_rows(m, "accuracy"),
                      "", f"![confusion matrix]({stem}_confusion.png)", ""]
        else:  # token classification: entity level
            plot_per_type(m["per_type"], out / f"{stem}_f1.png")
            lines += [f"## {_TITLES.get(task, task)} (test split, entity level, conlleval "
                      "semantics)", "",
                      f"precision **{m['precision']}**, recall **{m['recall']}**, F1 "
                      f"**{m['f1']}**", "",
                      "| type | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
            lines += [f"| {t} | {v['precision']} | {v['recall']} | {v['f1']} | {v['support']} |"
                      for t, v in m["per_type"].items()]
            lines += ["", *_baseline_rows(m, "f1"), "", f"![per-type scores]({stem}_f1.png)", ""]
    keys = {stage: (read_manifest(Path(folder)) or {}).get("key") for stage, folder in
            inputs.items()}
    lines += ["## Lineage", "", "| stage | key |", "|---|---|"]
    lines += [f"| {s} | `{k}` |" for s, k in keys.items()]
    versions = _versions()
    lines += ["", "## Environment", "", f"device `{cfg['device']}`, code `{code_version()}`", "",
              ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    report = {"recipe": cfg["recipe"], "metrics": metrics, "inputs": keys,
              "versions": versions, "git_revision": code_version(), "device": cfg["device"]}
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    (out / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return {"in": len(inputs), "out": len(inputs)}
