"""`sieve serve` against a real Prefect server: a scheduled build deployment runs, and its
completion triggers the training deployment (a CPU-sized run)."""

import datetime as dt
import json
import subprocess
import time

import pytest

from .conftest import DEMO_RECIPE, REPO, SIEVE, api, run_sieve, start_prefect_server

pytestmark = pytest.mark.slow


def test_scheduled_build_runs_and_triggers_training(demo_build, tmp_path):
    root, _ = demo_build
    text = DEMO_RECIPE.read_text(encoding="utf-8")
    text = text.replace("max_steps = 120", "max_steps = 4").replace("steps = 300", "steps = 3")
    # The triggered run is what is tested, not its scores: one seed, a sample of the test sets.
    text = text.replace("[finetune]\n", "[finetune]\nseeds = 1\neval_limit = 200\n")
    recipe = REPO / "recipes" / f".test-serve-{tmp_path.name}.toml"
    recipe.write_text(text, encoding="utf-8")
    with start_prefect_server(tmp_path, services=True) as (url, env):
        log = (tmp_path / "serve.log").open("w")  # noqa: SIM115 (the server's lifetime)
        server = subprocess.Popen([*SIEVE, "serve", str(recipe), "--root", str(root)], cwd=REPO,
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 120
            names = {}
            while len(names) < 2:
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.time() < deadline, "deployments were not registered"
                names = {d["name"]: d["id"] for d in api(url, "/deployments/filter", {})}
                time.sleep(1)
            assert set(names) == {"build-demo", "train-demo"}
            soon = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)).isoformat()
            api(url, f"/deployments/{names['build-demo']}/create_flow_run",
                {"state": {"type": "SCHEDULED", "state_details": {"scheduled_time": soon}}})
            deadline = time.time() + 600
            while True:
                runs = api(url, "/flow_runs/filter", {})
                states = {(r["deployment_id"], r["state_type"]) for r in runs}
                if (names["train-demo"], "COMPLETED") in states:
                    break
                assert not any(s in ("FAILED", "CRASHED") for _, s in states), runs
                assert time.time() < deadline, f"training never completed: {states}"
                time.sleep(2)
            assert (names["build-demo"], "COMPLETED") in states
            train_run = next(r for r in runs if r["deployment_id"] == names["train-demo"])
            build_run = next(r for r in runs if r["deployment_id"] == names["build-demo"])
            assert train_run["parameters"]["build_flow_run"] == \
                f"prefect.flow-run.{build_run['id']}"
            listed = json.loads(run_sieve("runs", "--json", env=env).stdout)
            flows = {(r["flow"], r["state"]) for r in listed}
            assert {("build_dataset", "COMPLETED"), ("train_model", "COMPLETED")} <= flows
            build_listed = next(r for r in listed if r["flow"] == "build_dataset")
            assert {"ingest", "dedup", "shard", "card"} <= set(build_listed["stages"])
            artifacts = {a["key"]: a for a in api(url, "/artifacts/filter", {}) if a["key"]}
            assert "data-card" in artifacts and "README.md" in artifacts["data-card"]["data"]
            assert "| `in` |" in artifacts["dedup-counters"]["data"]
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
            recipe.unlink()
