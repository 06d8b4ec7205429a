"""Shared fixtures: paths to the real corpora and one demo build reused by the end-to-end tests."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

# `make test` runs two pytest processes (pytest-xdist). Each gets its own Prefect home, so the
# ephemeral API's SQLite database is never shared by two concurrent builds.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="sieve-test-prefect-")
atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the one demo build share a process (`--dist loadgroup`): it is built once,
    and the tests that rebuild into its root never race another process reading it."""
    for item in items:
        if "demo_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("demo_build"))


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(url: str, path: str, body: dict | None = None) -> object:
    """POST (with a body) or GET one Prefect API path on the loopback server."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


@contextlib.contextmanager
def start_prefect_server(tmp_path: Path, services: bool) -> Iterator[tuple[str, dict]]:
    """A real `prefect server start` on loopback with SQLite in tmp_path; stopped afterwards."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
               "--port", str(port)] + ([] if services else ["--no-services"])
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}/api"
        try:
            deadline = time.time() + 120
            while True:
                if proc.poll() is not None:
                    raise AssertionError(f"prefect server exited: {log_path.read_text()}")
                try:
                    api(url, "/health")
                    break
                except OSError:
                    if time.time() > deadline:
                        raise AssertionError(f"no answer: {log_path.read_text()}") from None
                    time.sleep(0.5)
            yield url, {**env, "PREFECT_API_URL": url}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
