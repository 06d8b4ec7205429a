"""The `train_model` flow: build what is missing, then pretrain, fine-tune and report.

Contract: `train_model(recipe_path, root, device, runner, workers)` runs `build_dataset` up to the
tasks stage (cached stages are reused), then three more stages through the Manifest, so a rerun
reuses a finished pretraining run and a changed `[train]` section retrains:
- pretrain (inputs: shard, mix, tokenizer): `training.pretrain.pretrain` -> checkpoints,
  `final/`, `metrics.json`; with a `[mix]` plan it reads the plan's order and checks that the
  sequences it read per source are the plan's;
- evaluate (inputs: pretrain, shard, tokenizer): `training.bpb.evaluate` -> `metrics.json`, bits
  per byte on the validation split and on the recipe's `[evaluation] held_out` set;
- finetune (inputs: pretrain, tasks): `training.finetune.finetune` per task and seed ->
  `metrics.json`;
- report (inputs: every stage): `data_cards.report` -> `report.json`, `report.md`, plots.
Returns `{stage: {"key", "path", "counters", "cached"}}` with the metrics under "report".
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prefect import flow

from data_cards import report
from flows.build import run_stages, stage_task, summarize
from pipelines.manifest import RunOptions, StageOutput, held_out_fingerprint
from pipelines.recipe import load_recipe


def _mask_id(tokenizer_dir: Path) -> int | None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "tokenizer.model"))
    piece = sp.piece_to_id("<mask>")
    return None if piece == sp.unk_id() else piece


BUDGET_ENV = "SIEVE_TRAIN_BUDGET_S"  # seconds of pretraining per run before it checkpoints


class TrainingStopped(RuntimeError):
    """Pretraining checkpointed and stopped at its time budget; a rerun resumes it."""


def resumable_folder(cfg, inputs: dict[str, os.PathLike], out: os.PathLike) -> Path:
    """Where a pretraining run's checkpoints live until it finishes: beside the attempt folder
    `out` (which a failed attempt loses), named by the run's config and inputs as its stage
    key is, so a stopped or killed run resumes from its newest checkpoint."""
    from dataclasses import asdict

    from pipelines.schema import stable_hash

    identity = json.dumps([asdict(cfg), str(inputs["shard"]), str(inputs["tokenizer"]),
                           str(inputs.get("mix", ""))], sort_keys=True)
    return Path(out).parent / ".resumable" / f"{stable_hash(identity):016x}"


def _run_pretrain(cfg, inputs: dict[str, os.PathLike], out: os.PathLike,
                  options: RunOptions) -> dict[str, int]:
    from training.pretrain import pretrain

    work = resumable_folder(cfg, inputs, out)
    budget = float(os.environ[BUDGET_ENV]) if os.environ.get(BUDGET_ENV) else None
    metrics = pretrain(cfg, inputs["shard"], work, device=options.device,
                       mask_id=_mask_id(Path(inputs["tokenizer"])), time_budget_s=budget,
                       mixture_dir=inputs.get("mix"))
    if metrics["steps"] < metrics["max_steps"]:
        raise TrainingStopped(
            f"pretraining stopped at step {metrics['steps']} of {metrics['max_steps']} after its "
            f"{BUDGET_ENV}={budget:g} s budget; its checkpoint is in {work}: run the same "
            "command again to resume there")
    os.replace(work / "final", Path(out) / "final")
    shutil.rmtree(work)  # the checkpoints: `final` is what fine-tuning and evaluation read
    (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    sequences = metrics["steps"] * cfg.batch_size * metrics["grad_accum"] * metrics["world_size"]
    mixture = metrics.get("mixture")
    if mixture is not None and mixture["read_sequences"] != mixture["planned_sequences_to_here"]:
        raise RuntimeError(f"pretraining read {mixture['read_sequences']} sequences per source, "
                           f"the plan has {mixture['planned_sequences_to_here']}")
    return {"in": sequences, "out": sequences, "steps": metrics["steps"]}


def _run_finetune(cfg, inputs: dict[str, os.PathLike], out: os.PathLike,
                  options: RunOptions) -> dict[str, int]:
    from training.finetune import finetune

    tasks = cfg.tasks or tuple(sorted(p.name for p in Path(inputs["tasks"]).iterdir()
                                      if (p / "dataset_dict.json").exists()))
    results = {task: finetune(task, cfg, Path(inputs["pretrain"]) / "final", inputs["tasks"],
                              out, device=options.device) for task in tasks}
    (Path(out) / "metrics.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    examples = sum(r["test"].get("n", r["test"].get("support", 0)) for r in results.values())
    return {"in": len(results), "out": len(results), "test_examples_scored": examples}


def _run_evaluate(cfg, inputs: dict[str, os.PathLike], out: os.PathLike,
                  options: RunOptions) -> dict[str, int]:
    from training.bpb import evaluate

    metrics = evaluate(cfg, Path(inputs["pretrain"]) / "final", inputs["shard"],
                       Path(inputs["tokenizer"]) / "tokenizer.model", device=options.device)
    (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    held = metrics.get("held_out", {}).get("documents", 0)
    scored = metrics.get("validation", {}).get("sequences", 0)
    return {"in": scored + held, "out": scored + held, "validation_sequences": scored,
            "held_out_documents": held}


# 2: resumable; 3: a mixture plan, validation loss per source and on the neutral set; 4: the
# validation sequences scored spread over the split (the first ones were one source's)
PRETRAIN = SimpleNamespace(NAME="pretrain", VERSION=4, run=_run_pretrain)
# finetune 2: baselines, intervals; 3: seeds; 4: a causal decoder's NER targets on each word's
# last piece
FINETUNE = SimpleNamespace(NAME="finetune", VERSION=4, run=_run_finetune)
EVALUATE = SimpleNamespace(NAME="evaluate", VERSION=1, run=_run_evaluate,  # bits per byte
                           fingerprint=lambda cfg: held_out_fingerprint(cfg.held_out))
REPORT = SimpleNamespace(NAME="report", VERSION=report.VERSION, run=report.run)


def train_stages(train, finetune, evaluation, built: dict[str, StageOutput], root: str,
                 options: RunOptions) -> tuple[StageOutput, StageOutput, StageOutput]:
    """Pretrain on a build, score its bits per byte, fine-tune its tasks: each a stage through
    the Manifest (`sieve train` once, `sieve compare` once per arm and seed)."""
    pre = stage_task(PRETRAIN, train, {"shard": built["shard"], "mix": built["mix"],
                                       "tokenizer": built["tokenizer"]}, root, options)
    lm = stage_task(EVALUATE, evaluation, {"pretrain": pre, "shard": built["shard"],
                                           "tokenizer": built["tokenizer"]}, root, options)
    fine = stage_task(FINETUNE, finetune, {"pretrain": pre, "tasks": built["tasks"]}, root,
                      options)
    return pre, lm, fine


@flow(name="train_model", log_prints=True)
def train_model(recipe_path: str, root: str = "out", device: str = "cpu",
                runner: str = "direct", workers: int = 1,
                build_flow_run: str | None = None,
                beam_args: list[str] | None = None, quiet: bool = False) -> dict[str, Any]:
    """`build_flow_run`: the build that triggered this run (a serve deployment), for lineage;
    `quiet`: no progress and no stage lines (`sieve train --quiet`)."""
    recipe = load_recipe(recipe_path)
    root = str(Path(root).resolve())
    options = RunOptions(runner=runner, workers=workers, device=device,
                         show_progress=not quiet, beam_args=tuple(beam_args or ()))
    built = run_stages(recipe, root, options, run_stage=stage_task)
    pre, lm, fine = train_stages(recipe.train, recipe.finetune, recipe.evaluation, built, root,
                                 options)
    rep = stage_task(REPORT, {"recipe": recipe.name, "device": device},
                     {**built, "pretrain": pre, "evaluate": lm, "finetune": fine}, root, options)
    summary = summarize({**built, "pretrain": pre, "evaluate": lm, "finetune": fine,
                         "report": rep})
    summary["report"]["metrics"] = json.loads((rep.path / "report.json").read_text())["metrics"]
    summary["triggered_by"] = build_flow_run
    return summary
