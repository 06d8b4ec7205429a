"""A build killed with SIGKILL in the middle of a stage, then run again, completes, reuses the
stages that had finished and gives the same outputs as an uninterrupted build."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flows.build import run_stages, summarize
from pipelines.manifest import RunOptions
from pipelines.recipe import load_recipe

from .conftest import DEMO_RECIPE, REPO, SIEVE, build_json

pytestmark = pytest.mark.slow


def files_of(summary: dict, stage: str) -> dict[str, str]:
    manifest = json.loads((Path(summary[stage]["path"]) / "manifest.json").read_text())
    return {name: f["sha256"] for name, f in manifest["files"].items()}


def test_sigkill_during_dedup_then_rerun_matches_an_uninterrupted_build(demo_build, tmp_path):
    _, reference = demo_build
    root = tmp_path / "root"
    proc = subprocess.Popen([*SIEVE, "build", str(DEMO_RECIPE), "--root", str(root),
                             "--until", "shard"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    try:
        while time.time() < deadline:  # wait until dedup is running: its attempt folder exists
            if (root / "dedup").exists() and list((root / "dedup").glob(".*.tmp-*")):
                break
            assert proc.poll() is None, "the build ended before dedup started"
            time.sleep(0.2)
        else:
            pytest.fail("dedup never started")
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (root / "ingest" / reference["ingest"]["key"] / "manifest.json").exists()
    assert not (root / "dedup" / reference["dedup"]["key"] / "manifest.json").exists()

    rerun = build_json(DEMO_RECIPE, root, "--until", "shard")
    assert rerun["ingest"]["cached"] and rerun["clean"]["cached"]
    assert not rerun["dedup"]["cached"]
    for stage in ("ingest", "clean", "dedup", "tokenizer", "shard"):
        assert rerun[stage]["key"] == reference[stage]["key"]
        assert files_of(rerun, stage) == files_of(reference, stage), stage
    assert not list((root / "dedup").glob(".*.tmp-*"))  # the killed attempt was cleaned up


SMALL = """name = "small"
[[ingest.sources]]
kind = "conll2003"
path = "{corpora}/conll2003/valid.txt"
[[ingest.sources]]
kind = "commoncrawl"
path = "{corpora}/web_warc_other"
[tokenizer]
vocab_size = 1000
[shard]
seq_len = 64
validation_fraction = 0.05
"""
STAGES = ["ingest", "clean", "dedup", "tokenizer", "shard", "mix", "tasks", "card"]


@pytest.fixture(scope="module")
def small_reference(corpora, tmp_path_factory):
    folder = tmp_path_factory.mktemp("small")
    recipe = folder / "small.toml"
    recipe.write_text(SMALL.format(corpora=corpora), encoding="utf-8")
    return recipe, build_json(recipe, folder / "root")


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_between_outputs_and_commit_of_each_stage(small_reference, tmp_path, stage):
    recipe, reference = small_reference
    root = tmp_path / "root"
    # Start from the finished build minus this stage and what follows it, so only they run.
    shutil.copytree(Path(reference["ingest"]["path"]).parent.parent, root)
    for name in STAGES[STAGES.index(stage):]:
        shutil.rmtree(root / name)
    # The stages without the Prefect layer (tested elsewhere): the same materialize calls.
    child = ("import sys; from flows.build import run_stages; from pipelines.manifest import "
             "RunOptions; from pipelines.recipe import load_recipe; "
             "run_stages(load_recipe(sys.argv[1]), sys.argv[2], RunOptions())")
    proc = subprocess.Popen([sys.executable, "-c", child, str(recipe), str(root)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "SIEVE_FAULT_PAUSE": stage},
                            start_new_session=True)
    deadline = time.time() + 300
    try:
        while not list((root / stage).glob(".*.tmp-*/.outputs-written")) if (
                root / stage).exists() else True:
            assert proc.poll() is None and time.time() < deadline, f"{stage} never paused"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (root / stage / reference[stage]["key"] / "manifest.json").exists()
    rerun = summarize(run_stages(load_recipe(recipe), str(root), RunOptions(),
                                 log=lambda msg: None))
    position = STAGES.index(stage)
    assert [s for s in STAGES if not rerun[s]["cached"]] == STAGES[position:]
    assert all(rerun[s]["cached"] for s in STAGES[:position])
    for name in STAGES:
        assert rerun[name]["key"] == reference[name]["key"]
        if name != "card":  # the card records each stage's seconds
            assert files_of(rerun, name) == files_of(reference, name), name
    assert not list((root / stage).glob(".*.tmp-*"))
