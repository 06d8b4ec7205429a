"""`sieve compare RECIPE_A RECIPE_B`: does curation make a better model? Paired runs, one
decision rule stated before anything runs, and the result reported whatever it is.

Contract: `compare(recipe_a, recipe_b, root, seeds, device)` builds each arm (every stage through
the Manifest, so stages the arms share, such as ingest, are built once, and a rerun reuses every
finished run), then for each seed k pretrains the same model configuration on each arm with
seed `train.seed + k` and the same token budget, scores bits per byte on the same neutral
held-out set (`[evaluation] held_out`, the same in both recipes), and fine-tunes each task with
seed `finetune.seed + k`. Runs are keyed by arm and seed like every stage. It returns (and
writes as `comparison.json` and `comparison.md` with a plot under `out`):
- per arm and metric: the values per seed, mean and sample standard deviation;
- per metric, the paired difference B - A per seed, its mean and a 95% Student-t interval over
  seeds (training noise); for held-out bits per byte also a 95% paired bootstrap interval over
  documents (test-set noise, the seeds' bits averaged per document);
- the verdict of the rule in `RULE`.
The recipes must differ only in what is compared: the same labelled sources, `[train]`,
`[finetune]`, `[shard] seq_len`, `[evaluation]` and training tokens (two `[mix]` sections may
differ in weights, not in budget), or it refuses with the difference.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
from prefect import flow

from data_cards.plots import figure
from flows.build import run_stages, stage_task
from flows.train import train_stages
from pipelines.manifest import RunOptions
from pipelines.recipe import Recipe, RecipeError, load_recipe
from training.bpb import bootstrap_bpb

RULE = ("B is better than A when the 95% interval (Student t over seeds) of the paired "
        "difference in held-out bits per byte (B - A) lies below zero, worse when it lies above "
        "zero, and otherwise not distinguishable with these seeds. Task metrics are reported "
        "with the same intervals, higher is better, and do not change the verdict.")
# Two-sided 95% Student t quantiles by degrees of freedom (beyond 30: the normal's 1.96).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
       9: 2.262, 10: 2.228, 12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df: int) -> float:
    if df >= 30:
        return 1.96 if df > 30 else T95[30]
    return T95[max(k for k in T95 if k <= df)]  # the next smaller df: a wider interval


def token_budget(recipe: Recipe) -> int:
    """Tokens one pretraining run reads (on one rank without a mixture)."""
    mix, train = recipe.mix, recipe.train
    if mix.sources:
        return mix.total_tokens // mix.global_batch_tokens * mix.global_batch_tokens
    return train.max_steps * train.batch_size * train.grad_accum * recipe.shard.seq_len


def check_comparable(a: Recipe, b: Recipe) -> None:
    """The arms may differ in their data sections only."""
    problems = []
    for section in ("train", "finetune", "evaluation"):
        if getattr(a, section) != getattr(b, section):
            problems.append(f"[{section}] differs")
    if a.shard.seq_len != b.shard.seq_len:
        problems.append(f"[shard] seq_len {a.shard.seq_len} vs {b.shard.seq_len}")
    if token_budget(a) != token_budget(b):  # two mixtures compare at the same budget only
        problems.append(f"training tokens {token_budget(a):,} vs {token_budget(b):,} (a [mix] "
                        "sets them: total_tokens in whole global batches)")
    if a.task_sources() != b.task_sources():
        problems.append(f"labelled sources {sorted(a.task_sources())} vs "
                        f"{sorted(b.task_sources())}")
    if not a.evaluation.held_out:
        problems.append("no [evaluation] held_out set: bits per byte need text neither arm has")
    if problems:
        raise RecipeError(f"cannot compare {a.name} with {b.name}: " + "; ".join(problems))


def paired(a: list[float], b: list[float]) -> dict[str, Any]:
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    out: dict[str, Any] = {"per_seed": [round(float(d), 5) for d in diff],
                           "mean": round(float(diff.mean()), 5)}
    if len(diff) > 1:
        half = t95(len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
        out["ci95"] = [round(float(diff.mean() - half), 5), round(float(diff.mean() + half), 5)]
    else:
        out["ci95"] = None
    return out


def summary(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    return {"per_seed": [round(float(v), 5) for v in arr], "mean": round(float(arr.mean()), 5),
            "sd": round(float(arr.std(ddof=1)), 5) if len(arr) > 1 else None}


def verdict(interval: list[float] | None) -> str:
    if interval is None:
        return "undecided: one seed gives no interval over seeds"
    if interval[1] < 0:
        return "B is better (lower held-out bits per byte)"
    if interval[0] > 0:
        return "B is worse (higher held-out bits per byte)"
    return "no distinguishable difference with these seeds (the interval contains zero)"


def run_arm(recipe: Recipe, root: str, options: RunOptions, seeds: int) -> dict[str, Any]:
    built = run_stages(recipe, root, options, run_stage=stage_task)
    runs = []
    for k in range(seeds):
        train = dataclasses.replace(recipe.train, seed=recipe.train.seed + k)
        tune = dataclasses.replace(recipe.finetune, seed=recipe.finetune.seed + k, seeds=1)
        pre, lm, fine = train_stages(train, tune, recipe.evaluation, built, root, options)
        runs.append({
            "seed": train.seed, "pretrain": str(pre.path), "cached": pre.cached,
            "lm": json.loads((lm.path / "metrics.json").read_text()),
            "tasks": json.loads((fine.path / "metrics.json").read_text()),
        })
    shard = built["shard"].counters
    return {"recipe": recipe.name, "stages": {n: o.key for n, o in built.items()},
            "pretraining_documents": built["dedup"].counters.get("out", 0),
            "train_tokens_available": shard.get("tokens", 0), "runs": runs}


def task_metric(result: dict[str, Any]) -> tuple[str, float]:
    test = result["test"]
    return ("f1", test["f1"]) if "f1" in test and "accuracy" not in test else (
        "accuracy", test["accuracy"])


@flow(name="compare", log_prints=True)
def compare(recipe_a: str, recipe_b: str, root: str = "out", seeds: int = 3,
            device: str = "cpu", out: str | None = None, runner: str = "direct",
            workers: int = 1) -> dict[str, Any]:
    if seeds < 1:
        raise ValueError("seeds must be at least 1")
    a, b = load_recipe(recipe_a), load_recipe(recipe_b)
    check_comparable(a, b)
    root = str(Path(root).resolve())
    options = RunOptions(runner=runner, workers=workers, device=device)
    arms = {"A": run_arm(a, root, options, seeds), "B": run_arm(b, root, options, seeds)}
    metrics: dict[str, Any] = {}

    def add(name: str, per_arm: dict[str, list[float]], lower_is_better: bool) -> None:
        metrics[name] = {"lower_is_better": lower_is_better,
                         "A": summary(per_arm["A"]), "B": summary(per_arm["B"]),
                         "difference_b_minus_a": paired(per_arm["A"], per_arm["B"])}

    lm = {arm: [r["lm"] for r in info["runs"]] for arm, info in arms.items()}
    if any("held_out" not in m for ms in lm.values() for m in ms):
        raise RecipeError("bits per byte need causal models: [train] objective = \"causal\"")
    add("held_out_bits_per_byte", {arm: [m["held_out"]["bits_per_byte"] for m in ms]
                                   for arm, ms in lm.items()}, True)
    add("validation_bits_per_byte", {arm: [m["validation"]["bits_per_byte"] for m in ms]
                                     for arm, ms in lm.items()}, True)
    metrics["validation_bits_per_byte"]["note"] = (
        "each arm's own validation split: not the same text, so not a paired comparison")
    bits = {arm: np.mean([m["held_out"]["document_bits"] for m in ms], axis=0)
            for arm, ms in lm.items()}
    nbytes = np.asarray(lm["A"][0]["held_out"]["document_bytes"], dtype=float)
    # Test-set noise: documents resampled, each one's bits averaged over the seeds first.
    metrics["held_out_bits_per_byte"]["difference_b_minus_a"]["documents_ci95"] = \
        bootstrap_bpb(bits["B"] - bits["A"], nbytes, resamples=2000)
    for task in sorted(arms["A"]["runs"][0]["tasks"]):
        name = task_metric(arms["A"]["runs"][0]["tasks"][task])[0]
        add(f"{task}_{name}", {arm: [task_metric(r["tasks"][task])[1] for r in info["runs"]]
                               for arm, info in arms.items()}, False)
    interval = metrics["held_out_bits_per_byte"]["difference_b_minus_a"]["ci95"]
    result = {"rule": RULE, "A": a.name, "B": b.name, "seeds": seeds, "device": device,
              "held_out": list(a.evaluation.held_out),
              "held_out_documents": lm["A"][0]["held_out"]["documents"],
              "tokens_per_run": a.train.max_steps * a.train.batch_size * a.train.grad_accum
              * a.shard.seq_len,
              "verdict": verdict(interval), "metrics": metrics,
              "arms": {arm: {k: v for k, v in info.items() if k != "runs"} | {
                  "runs": [{k: r[k] for k in ("seed", "pretrain", "cached")}
                           for r in info["runs"]]} for arm, info in arms.items()}}
    folder = Path(out) if out else Path(root) / "compare" / f"{a.name}-vs-{b.name}"
    write_report(result, folder)
    result["path"] = str(folder)
    return result


def write_report(result: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "comparison.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    m = result["metrics"]
    lines = [f"# Comparison: {result['A']} (A) vs {result['B']} (B)", "",
             "Generated by `sieve compare`; do not edit by hand.", "",
             f"**Decision rule, fixed before the runs:** {result['rule']}", "",
             f"**Verdict: {result['verdict']}.**", "",
             f"{result['seeds']} seeds per arm, the same model configuration and "
             f"{result['tokens_per_run']:,} training tokens per run, on `{result['device']}`. "
             f"Held-out set: {result['held_out_documents']:,} documents of "
             f"{', '.join(Path(f).name for f in result['held_out'])}, which neither arm "
             "contains (dedup drops any pretraining document sharing a decontamination n-gram "
             "with it).", "",
             "| metric | A mean (sd) | B mean (sd) | B - A | 95% interval over seeds | "
             "95% interval over documents |", "|---|---:|---:|---:|---|---|"]
    for name, row in m.items():
        d = row["difference_b_minus_a"]
        docs = d.get("documents_ci95")
        lines.append(
            f"| {name}{' (lower is better)' if row['lower_is_better'] else ''} | "
            f"{row['A']['mean']} ({row['A']['sd']}) | {row['B']['mean']} ({row['B']['sd']}) | "
            f"{d['mean']} | {d['ci95'][0] if d['ci95'] else '-'} - "
            f"{d['ci95'][1] if d['ci95'] else '-'} | "
            f"{f'{docs[0]} - {docs[1]}' if docs else '-'} |")
    lines += ["", "Validation bits per byte are each arm's own validation split (not the same "
              "text), so they are shown, not compared.", "", "## Per seed", "",
              "| metric | arm | " + " | ".join(f"seed {k}" for k in range(result["seeds"]))
              + " |", "|---|---|" + "---:|" * result["seeds"]]
    for name, row in m.items():
        for arm in ("A", "B"):
            lines.append(f"| {name} | {arm} | " + " | ".join(map(str, row[arm]["per_seed"]))
                         + " |")
    lines += ["", "![held-out bits per byte per seed](comparison.png)", "",
              "## Arms", "", "| arm | recipe | pretraining documents | train tokens built |",
              "|---|---|---:|---:|"]
    for arm, info in result["arms"].items():
        lines.append(f"| {arm} | {info['recipe']} | {info['pretraining_documents']:,} | "
                     f"{info['train_tokens_available']:,} |")
    (folder / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    names = [n for n in m if n != "validation_bits_per_byte"]
    with figure(folder / "comparison.png", (3.2 * len(names), 3.2), ncols=len(names)) as axes:
        for ax, name in zip(np.atleast_1d(axes), names, strict=True):
            for x, arm in enumerate(("A", "B")):
                values = m[name][arm]["per_seed"]
                ax.plot([x] * len(values), values, "o", alpha=0.7)
                ax.plot([x - 0.2, x + 0.2], [m[name][arm]["mean"]] * 2, "k-")
            ax.set_xticks([0, 1], [result["A"], result["B"]])
            ax.set_xlim(-0.5, 1.5)
            ax.set_title(name, fontsize=9)
