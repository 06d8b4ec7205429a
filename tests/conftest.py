"""Shared fixtures: paths to the real corpora and one demo build reused by the end-to-end tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPORA = (REPO.parent / "shared" / "corpora").resolve()
DEMO_RECIPE = REPO / "recipes" / "demo.toml"
SIEVE = [sys.executable, "-m", "flows.cli"]


def run_sieve(*args: str, env: dict[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*SIEVE, *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"sieve {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def build_json(recipe: Path, root: Path, *extra: str) -> dict:
    proc = run_sieve("build", str(recipe), "--root", str(root), "--json", *extra)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def corpora() -> Path:
    if not CORPORA.is_dir():
        pytest.fail(f"real corpora not found at {CORPORA}: clone with ../shared beside the repo")
    return CORPORA


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory, corpora: Path) -> tuple[Path, dict]:
    """The demo recipe built once through the real CLI (Prefect flow, Beam DirectRunner)."""
    root = tmp_path_factory.mktemp("demo-root")
    return root, build_json(DEMO_RECIPE, root)
