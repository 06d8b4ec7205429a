"""The `build_dataset` flow: one Prefect task per stage, the Manifest deciding what is stale.

Contract: `build_dataset(recipe_path, root, until, runner, workers, rebuild_from)` runs the
stages in order (ingest -> clean -> dedup -> tokenizer -> shard -> mix -> tasks -> card), each
through `pipelines.manifest.materialize`, and returns
`{stage: {"key", "path", "counters", "cached"}}`.
Tasks use no Prefect result cache: a stage whose key already has a manifest is reused, anything
else is recomputed. Each task publishes its counters as a markdown artifact. Without
`PREFECT_API_URL` Prefect starts a local ephemeral server; with it, runs are recorded there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from data_cards import card
from pipelines import clean, dedup, ingest, mix, runners, shard, tasks
from pipelines.manifest import RunOptions, StageOutput, materialize
from pipelines.recipe import Recipe, load_recipe
from tokenizer import train as tokenizer_train


@dataclass(frozen=True)
class StageSpec:
    name: str
    module: ModuleType
    inputs: tuple[str, ...]


STAGES: tuple[StageSpec, ...] = (
    StageSpec("ingest", ingest, ()),
    StageSpec("clean", clean, ("ingest",)),
    StageSpec("dedup", dedup, ("clean",)),
    StageSpec("tokenizer", tokenizer_train, ("dedup",)),
    StageSpec("shard", shard, ("dedup", "tokenizer")),
    StageSpec("mix", mix, ("shard", "tokenizer")),
    StageSpec("tasks", tasks, ("ingest", "tokenizer")),
    StageSpec("card", card, ("ingest", "clean", "dedup", "tokenizer", "shard", "mix", "tasks")),
)
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_config(recipe: Recipe, name: str) -> Any:
    cfg = getattr(recipe, name)
    if name == "clean":  # per-source rules are keyed by source name or by kind
        cfg = cfg.model_copy(update={"source_kinds": {
            s.source_name: s.kind for s in recipe.ingest.sources}})
    if name == "tasks":  # a task dataset per labelled source
        cfg = cfg.model_copy(update={"task_sources": recipe.task_sources()})
    if name == "dedup" and recipe.evaluation.held_out:  # kept out of every build naming it
        cfg = cfg.model_copy(update={"held_out": sorted(
            set(cfg.held_out) | set(recipe.evaluation.held_out))})
    if name == "mix" and recipe.evaluation.held_out:  # the neutral validation set
        cfg = cfg.model_copy(update={"held_out": list(recipe.evaluation.held_out)})
    if name == "card" and cfg.pretty_name is None:
        cfg = cfg.model_copy(update={"pretty_name": recipe.name})
    return cfg


def counters_markdown(out: StageOutput) -> str:
    rows = "\n".join(f"| `{k}` | {v:,} |" for k, v in out.counters.items())
    state = "reused (cached)" if out.cached else "computed"
    return (f"### {out.stage} ({state})\n\nkey `{out.key}` at `{out.path}`\n\n"
            f"| counter | value |\n|---|---:|\n{rows}\n")


def run_stages(recipe: Recipe, root: str, options: RunOptions, until: str | None = None,
               rebuild_from: str | None = None,
               run_stage: Callable[..., StageOutput] = materialize,
               log: Callable[[str], None] | None = None,
               ) -> dict[str, StageOutput]:
    """Materialize every stage up to `until`, forcing `rebuild_from` and everything after it.
    Stage lines go to stderr (written, not printed: Prefect's log_prints would turn them into
    its own log records), none when the options say quiet."""
    if log is None:
        log = _stderr if options.show_progress else (lambda msg: None)
    for name in (until, rebuild_from):
        if name is not None and name not in STAGE_NAMES:
            raise ValueError(f"unknown stage {name!r}; stages are {', '.join(STAGE_NAMES)}")
    last = STAGE_NAMES.index(until) if until else len(STAGES) - 1
    first_forced = STAGE_NAMES.index(rebuild_from) if rebuild_from else len(STAGES)
    outputs: dict[str, StageOutput] = {}
    # `--runner portable`: one local job service and worker pool for all the stages.
    with runners.portable_services(options) as options:
        runners.beam_args(options)  # a runner that cannot run here fails before any stage
        for position, spec in enumerate(STAGES[: last + 1]):
            log(f"[sieve] {spec.name}: running")
            inputs = {name: outputs[name] for name in spec.inputs}
            out = run_stage(spec.module, stage_config(recipe, spec.name), inputs, root, options,
                            force=position >= first_forced)
            counters = out.counters
            log(f"[sieve] {spec.name}: {'cached' if out.cached else 'done'}  "
                f"in={counters['in']:,} out={counters['out']:,}  -> {out.path}")
            outputs[spec.name] = out
    return outputs


def _stderr(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


@task(name="stage", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2,
      retry_condition_fn=lambda task, run, state: _is_transient(state))
def stage_task(module: ModuleType, cfg: Any, inputs: dict[str, StageOutput], root: str,
               options: RunOptions, force: bool = False) -> StageOutput:
    out = materialize(module, cfg, inputs, root, options, force=force)
    create_markdown_artifact(counters_markdown(out), key=f"{out.stage}-counters",
                             description=f"{out.stage} counters")
    return out


def _is_transient(state: Any) -> bool:
    """Retry I/O hiccups; a data or config error fails the same way every time."""
    try:
        state.result()
    except (TimeoutError, ConnectionError, BlockingIOError, InterruptedError):
        return True
    except Exception:
        return False
    return False


def summarize(outputs: dict[str, StageOutput]) -> dict[str, dict[str, Any]]:
    return {name: {"key": o.key, "path": str(o.path), "counters": o.counters, "cached": o.cached}
            for name, o in outputs.items()}


@flow(name="build_dataset", log_prints=True)
def build_dataset(recipe_path: str, root: str = "out", until: str | None = None,
                  runner: str = "direct", workers: int = 1,
                  rebuild_from: str | None = None, quiet: bool = False,
                  beam_args: list[str] | None = None) -> dict[str, dict[str, Any]]:
    recipe = load_recipe(recipe_path)
    options = RunOptions(runner=runner, workers=workers, show_progress=not quiet,
                         beam_args=tuple(beam_args or ()))
    outputs = run_stages(recipe, str(Path(root).resolve()), options, until, rebuild_from,
                         run_stage=stage_task)
    if "card" in outputs:
        create_markdown_artifact(
            f"Data card for **{recipe.name}**: `{outputs['card'].path / 'README.md'}`",
            key="data-card", description="where the build's data card is")
    return summarize(outputs)
