"""Prefect: the pinned server starts (FastAPI pin), and a flow records its runs against it."""

import json
import urllib.request

import pytest

from .conftest import run_sieve, start_prefect_server


@pytest.fixture
def prefect_server(tmp_path):
    with start_prefect_server(tmp_path, services=False) as server:
        yield server


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
