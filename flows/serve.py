"""`sieve serve`: Prefect deployments for recipes, and `sieve runs`: what they did.

Contract:
- `deployments(recipe_paths, root, device)` -> for each recipe a `build-<name>` deployment of
  `build_dataset` (on the recipe's `[schedule]` cron when it has one) and a `train-<name>`
  deployment of `train_model` with a Prefect event trigger: it runs when a flow run of
  `build-<name>` completes, with the recipe, the root and the triggering run's id as parameters
  (the build's outputs are found again by their keys, so nothing is copied).
- `serve_recipes(...)` registers them with the Prefect server at `PREFECT_API_URL` and serves them
  from this process until it is stopped.
- `recent_runs(limit)` -> recent flow runs with their state and the stage counters they
  published as artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import serve
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger

from flows.build import build_dataset
from flows.train import train_model
from pipelines.recipe import load_recipe


def deployments(recipe_paths: list[str], root: str, device: str = "cpu") -> list[Any]:
    made = []
    root = str(Path(root).resolve())
    for path in recipe_paths:
        recipe = load_recipe(path)
        path = str(Path(path).resolve())
        schedule = recipe.schedule
        build_name = f"build-{recipe.name}"
        made.append(build_dataset.to_deployment(
            name=build_name, cron=schedule.cron if schedule else None,
            parameters={"recipe_path": path, "root": root},
            description=f"Build the {recipe.name} dataset from {path}", tags=["sieve"]))
        if schedule is None or schedule.train_on_build:
            trigger = DeploymentEventTrigger(
                name=f"train {recipe.name} when its build completes",
                expect={"prefect.flow-run.Completed"},
                match_related={"prefect.resource.role": "deployment",
                               "prefect.resource.name": build_name},
                parameters={"recipe_path": path, "root": root, "device": device,
                            "build_flow_run": "{{ event.resource.id }}"})
            made.append(train_model.to_deployment(
                name=f"train-{recipe.name}", triggers=[trigger], tags=["sieve"],
                parameters={"recipe_path": path, "root": root, "device": device},
                description=f"Pretrain, fine-tune and report on {recipe.name}"))
    return made


def serve_recipes(recipe_paths: list[str], root: str, device: str = "cpu") -> None:
    serve(*deployments(recipe_paths, root, device), print_starting_message=True)


def recent_runs(limit: int = 10) -> list[dict[str, Any]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.client.schemas.sorting import FlowRunSort

    rows = []
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(limit=limit, sort=FlowRunSort.START_TIME_DESC):
            artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
            stages = sorted(a.key.removesuffix("-counters") for a in artifacts
                            if a.key and a.key.endswith("-counters"))
            flow_name = client.read_flow(run.flow_id).name
            rows.append({"id": str(run.id), "flow": flow_name, "name": run.name,
                         "state": run.state_type.value if run.state_type else None,
                         "start": run.start_time.isoformat() if run.start_time else None,
                         "parameters": run.parameters, "stages": stages})
    return rows
