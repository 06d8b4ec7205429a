"""Prefect: the pinned server starts (FastAPI pin), and a flow records its runs against it."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from .conftest import run_sieve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prefect_server(tmp_path):
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 (open for the server's lifetime)
    proc = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host",
                             "127.0.0.1", "--port", str(port), "--no-services"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"prefect server did not answer: {(tmp_path / 'server.log').read_text()}")
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_prefect_server_starts_and_records_a_build_flow_run(prefect_server, tmp_path, corpora):
    url, env = prefect_server
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(f'name = "tiny"\n[[ingest.sources]]\nkind = "conll2003"\n'
                      f'path = "{corpora}/conll2003/valid.txt"\n', encoding="utf-8")
    run_sieve("build", str(recipe), "--root", str(tmp_path / "root"), "--until", "dedup",
              env={**env, "PREFECT_API_URL": url})
    request = urllib.request.Request(f"{url}/flow_runs/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        runs = json.loads(resp.read())
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
    request = urllib.request.Request(f"{url}/artifacts/filter", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        keys = {a["key"] for a in json.loads(resp.read())}
    assert {"ingest-counters", "clean-counters", "dedup-counters"} <= keys
