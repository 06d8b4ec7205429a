"""The `train_model` flow: build what is missing, then pretrain, fine-tune and report.

Contract: `train_model(recipe_path, root, device, runner, workers)` runs `build_dataset` up to the
tasks stage (cached stages are reused), then three more stages through the Manifest, so a rerun
reuses a finished pretraining run and a changed `[train]` section retrains:
- pretrain (inputs: shard, tokenizer): `training.pretrain.pretrain` -> checkpoints, `final/`,
  `metrics.json`;
- finetune (inputs: pretrain, tasks): `training.finetune.finetune` per task -> `metrics.json`;
- report (inputs: every stage): `data_cards.report` -> `report.json`, `report.md`, plots.
Returns `{stage: {"key", "path", "counters", "cached"}}` with the metrics under "report".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from prefect import flow

from data_cards import report
from flows.build import run_stages, stage_task, summarize
from pipelines.manifest import RunOptions
from pipelines.recipe import load_recipe


def _mask_id(tokenizer_dir: Path) -> int | None:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_dir / "tokenizer.model"))
    piece = sp.piece_to_id("<mask>")
    return None if piece == sp.unk_id() else piece


def _run_pretrain(cfg, inputs: dict[str, os.PathLike], out: os.PathLike,
                  options: RunOptions) -> dict[str, int]:
    from training.pretrain import pretrain

    metrics = pretrain(cfg, inputs["shard"], out, device=options.device,
                       mask_id=_mask_id(Path(inputs["tokenizer"])))
    (Path(out) / "metrics.json").write_text(json.dumps(metrics, indent=1), encoding="utf-8")
    sequences = metrics["steps"] * cfg.batch_size * cfg.grad_accum * metrics["world_size"]
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


PRETRAIN = SimpleNamespace(NAME="pretrain", VERSION=1, run=_run_pretrain)
FINETUNE = SimpleNamespace(NAME="finetune", VERSION=2, run=_run_finetune)  # 2: baselines, intervals
REPORT = SimpleNamespace(NAME="report", VERSION=1, run=report.run)


@flow(name="train_model", log_prints=True)
def train_model(recipe_path: str, root: str = "out", device: str = "cpu",
                runner: str = "direct", workers: int = 1,
                build_flow_run: str | None = None,
                beam_args: list[str] | None = None) -> dict[str, Any]:
    """`build_flow_run`: the build that triggered this run (a serve deployment), for lineage."""
    recipe = load_recipe(recipe_path)
    root = str(Path(root).resolve())
    options = RunOptions(runner=runner, workers=workers, device=device,
                         beam_args=tuple(beam_args or ()))
    built = run_stages(recipe, root, options, run_stage=stage_task)
    pre = stage_task(PRETRAIN, recipe.train, {"shard": built["shard"],
                                              "tokenizer": built["tokenizer"]}, root, options)
    fine = stage_task(FINETUNE, recipe.finetune, {"pretrain": pre, "tasks": built["tasks"]},
                      root, options)
    rep = stage_task(REPORT, {"recipe": recipe.name, "device": device},
                     {**built, "pretrain": pre, "finetune": fine}, root, options)
    summary = summarize({**built, "pretrain": pre, "finetune": fine, "report": rep})
    summary["report"]["metrics"] = json.loads((rep.path / "report.json").read_text())["metrics"]
    summary["triggered_by"] = build_flow_run
    return summary
