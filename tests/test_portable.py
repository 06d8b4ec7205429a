"""Beam's portable job API on one machine (issue 17): a local job service and an external worker
pool whose SDK workers are other processes, started from a scratch directory without the
driver's sys.path, as a cluster's are. The in-process runner hides what a cluster shows first;
these tests run the same build on both."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.internal.cloudpickle import cloudpickle  # the copy Beam pickles with

from pipelines import io, runners
from pipelines.manifest import RunOptions
from tests.conftest import REPO, build_json, run_sieve

pytestmark = pytest.mark.slow

SMOKE = REPO / "recipes" / "smoke.toml"  # a small file of every real source kind
BEAM_STAGES = ("ingest", "clean", "dedup", "shard")


def manifest(summary: dict, stage: str) -> dict:
    return json.loads((Path(summary[stage]["path"]) / "manifest.json").read_text("utf-8"))


def test_smoke_recipe_on_the_portable_runner_with_two_workers_gives_the_in_process_bytes(
        corpora: Path, tmp_path: Path):
    direct = build_json(SMOKE, tmp_path / "direct")
    portable = build_json(SMOKE, tmp_path / "portable", "--runner", "portable", "--workers", "2")
    assert set(portable) == set(direct) and "card" in direct
    for stage, result in direct.items():
        # Same key, same counters (which add up: the build checks them), same files by name,
        # rows, bytes and sha256.
        assert portable[stage]["key"] == result["key"], stage
        assert portable[stage]["counters"] == result["counters"], stage
        if stage == "card":  # its text names the runner and the seconds each stage took
            continue
        assert manifest(portable, stage)["files"] == manifest(direct, stage)["files"], stage
    assert direct["ingest"]["counters"]["in"] > 1000
    assert {s.split(":")[1] for s in direct["clean"]["counters"] if s.startswith("source:")} \
        == {"wikipedia", "commoncrawl", "web_warc", "imdb", "conll2003"}
    for stage in BEAM_STAGES:
        assert manifest(portable, stage)["runner"] == {
            "runner": "PortableRunner", "environment": "EXTERNAL", "workers": 2,
            "job_endpoint": manifest(portable, stage)["runner"]["job_endpoint"]}
        assert manifest(direct, stage)["runner"] == {
            "runner": "FnApiRunner", "mode": "in_memory", "workers": 1}
    card = (Path(portable["card"]["path"]) / "README.md").read_text("utf-8")
    assert "on PortableRunner (EXTERNAL, 2 workers)" in card


class ReadsDriverState(beam.DoFn):
    """The bug a cluster shows first: state a driver step set in a module's globals."""

    def process(self, element: int):
        from pipelines import io as module

        yield element + module._set_by_the_driver


class Total(beam.DoFn):
    """The elements' sum as a Beam counter: what comes back to the driver from any runner."""

    def process(self, element: int):
        beam.metrics.Metrics.counter("test_portable", "total").inc(element)


def run_total(options: RunOptions, step: beam.DoFn) -> int:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        with runners.portable_services(options) as options:
            return io.run_pipeline(lambda p: p | beam.Create([1, 2, 3]) | beam.ParDo(step)
                                   | beam.ParDo(Total()), options, "test_portable")["total"]
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_driver_only_state_passes_in_process_and_fails_on_the_portable_runner(monkeypatch):
    monkeypatch.setattr(io, "_set_by_the_driver", 10, raising=False)
    # The DoFn travels by value (this test module is not installed); the module it reads,
    # pipelines.io, is imported afresh by each worker, without the driver's assignment.
    assert run_total(RunOptions(), ReadsDriverState()) == 36
    with pytest.raises(Exception, match="_set_by_the_driver"):
        run_total(RunOptions(runner="portable", workers=2), ReadsDriverState())


class PrintsALot(beam.DoFn):
    def process(self, element: int):
        print("x" * 200_000)  # beyond the 64 KB pipe a worker pool gives a worker's stdout
        yield element


def test_a_worker_that_prints_a_lot_does_not_hang_the_portable_runner():
    assert run_total(RunOptions(runner="portable", workers=1), PrintsALot()) == 6


def test_runner_names_are_explicit_and_prism_is_never_fetched(monkeypatch):
    args = runners.beam_args(RunOptions())
    assert args[0] == f"--runner={runners.FN_API_RUNNER}"  # never Beam's Prism-first choice
    assert runners.beam_args(RunOptions(runner="DirectRunner")) == args
    two = runners.beam_args(RunOptions(workers=2))
    assert "--direct_running_mode=multi_processing" in two and "--direct_num_workers=2" in two
    monkeypatch.setenv("PATH", os.defpath)
    with pytest.raises(runners.RunnerUnavailable, match="no Prism binary"):
        runners.beam_args(RunOptions(runner="prism"))
    with pytest.raises(runners.RunnerUnavailable, match="no --job_endpoint"):
        runners.beam_args(RunOptions(runner="portable"))
    dataflow = runners.beam_args(RunOptions(runner="DataflowRunner",
                                            beam_args=("--project=p", "--region=r")))
    assert dataflow == ["--runner=DataflowRunner", "--project=p", "--region=r"]


def test_a_runner_that_cannot_run_here_fails_the_build_before_any_stage(tmp_path):
    proc = run_sieve("build", str(SMOKE), "--root", str(tmp_path), "--runner", "prism",
                     env={"PATH": os.path.dirname(sys.executable) + os.pathsep + os.defpath},
                     check=False)
    assert proc.returncode == 2 and "sieve: runner prism: no Prism binary" in proc.stderr
    assert not (tmp_path / "ingest").exists()


def test_the_worker_fork_server_reports_a_workers_status_and_its_own_end():
    from pipelines import workers

    server = workers.ForkServer()
    try:
        # No control endpoint in the environment: Beam's entry point fails, and the status
        # says so (a worker handler raises on it, as Beam's does for its subprocess).
        assert server.run_worker({"PATH": os.environ.get("PATH", "")}) == 1
        assert server.forked == 1 and server.alive
    finally:
        server._proc.kill()
        server._proc.wait()
    # Gone before it forked: the handler then starts Beam's own subprocess instead.
    with pytest.raises(workers.ServerGone):
        server.run_worker({"PATH": os.environ.get("PATH", "")})
    assert not server.alive and server.forked == 1
