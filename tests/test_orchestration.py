"""Rebuild on demand, concurrent builds of one recipe, and which errors Prefect retries."""

import json
import subprocess
from pathlib import Path

import pytest

from flows.build import _is_transient

from .conftest import DEMO_RECIPE, REPO, SIEVE, build_json

pytestmark = pytest.mark.slow


def test_rebuild_from_forces_that_stage_and_downstream_with_identical_bytes(demo_build):
    root, first = demo_build
    again = build_json(DEMO_RECIPE, root, "--rebuild-from", "shard", "--until", "tasks")
    assert [s for s, info in again.items() if not info["cached"]] == ["shard", "mix", "tasks"]
    assert again["shard"]["key"] == first["shard"]["key"]
    index = json.loads((Path(again["shard"]["path"]) / "index.json").read_text())
    assert index["shards"] == json.loads(
        (Path(first["shard"]["path"]) / "index.json").read_text())["shards"]


def test_two_builds_of_one_recipe_at_once_commit_each_stage_once(tmp_path):
    root = tmp_path / "root"
    command = [*SIEVE, "build", str(DEMO_RECIPE), "--root", str(root), "--until", "clean",
               "--json"]
    procs = [subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outputs]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    for stage in ("ingest", "clean"):
        assert summaries[0][stage]["key"] == summaries[1][stage]["key"]
        entries = sorted(p.name for p in (root / stage).iterdir())
        assert entries == [summaries[0][stage]["key"]], entries  # one output, no leftovers
        assert (root / stage / entries[0] / "manifest.json").exists()


class _State:
    def __init__(self, exc: BaseException | None) -> None:
        self.exc = exc

    def result(self):
        if self.exc:
            raise self.exc


def test_io_hiccups_are_retried_and_data_errors_are_not():
    assert _is_transient(_State(ConnectionError("reset by peer")))
    assert _is_transient(_State(TimeoutError("slow disk")))
    assert not _is_transient(_State(ValueError("bad recipe")))
    assert not _is_transient(_State(None))
