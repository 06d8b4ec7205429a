"""A build killed with SIGKILL in the middle of a stage, then run again, completes, reuses the
stages that had finished and gives the same outputs as an uninterrupted build."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

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
