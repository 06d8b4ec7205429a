import hashlib
import json
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from pipelines.manifest import (
    MANIFEST,
    CountersMismatch,
    check_counters,
    describe_files,
    materialize,
    stage_key,
)


def fake_stage(counters: dict, version: int = 1, calls: list | None = None) -> types.ModuleType:
    module = types.ModuleType("fake")
    module.NAME, module.VERSION = "fake", version

    def run(cfg, inputs, out, options):
        if calls is not None:
            calls.append(out)
        (Path(out) / "data.txt").write_text(f"value={cfg['value']}\n", encoding="utf-8")
        return counters

    module.run = run
    return module


def test_key_changes_with_version_config_and_upstream_but_not_key_order():
    base = stage_key("s", 1, {"a": 1, "b": 2}, {"up": "k1"})
    assert base == stage_key("s", 1, {"b": 2, "a": 1}, {"up": "k1"})
    assert base != stage_key("s", 2, {"a": 1, "b": 2}, {"up": "k1"})
    assert base != stage_key("s", 1, {"a": 1, "b": 3}, {"up": "k1"})
    assert base != stage_key("s", 1, {"a": 1, "b": 2}, {"up": "k2"})


def test_counters_must_add_up():
    check_counters("s", {"in": 10, "out": 7, "dropped:short": 2, "error:io": 1, "tokens": 99})
    with pytest.raises(CountersMismatch, match="stage s: counters do not add up: in=10"):
        check_counters("s", {"in": 10, "out": 7, "dropped:short": 2})


def test_manifest_records_files_with_rows_bytes_sha256_and_a_second_call_is_cached(tmp_path):
    calls: list = []
    stage = fake_stage({"in": 3, "out": 3}, calls=calls)
    first = materialize(stage, {"value": 1}, {}, tmp_path)
    second = materialize(stage, {"value": 1}, {}, tmp_path)
    assert (first.cached, second.cached, len(calls)) == (False, True, 1)
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert manifest["counters"] == {"in": 3, "out": 3}
    assert manifest["files"]["data.txt"]["bytes"] == len("value=1\n")
    assert len(manifest["files"]["data.txt"]["sha256"]) == 64
    assert first.path == tmp_path / "fake" / first.key


def test_files_are_described_alike_by_one_or_several_threads(tmp_path):
    table = pa.table({"text": [f"row {i}" for i in range(1000)]})
    (tmp_path / "docs").mkdir()
    for i in range(5):
        pq.write_table(table.slice(0, 100 * (i + 1)), tmp_path / "docs" / f"part-{i}.parquet")
    with ipc.new_stream(tmp_path / "tokens.arrow", table.schema) as writer:
        writer.write_table(table.slice(0, 333), max_chunksize=50)
    (tmp_path / "notes.txt").write_text("plain", encoding="utf-8")
    one = describe_files(tmp_path, 1)
    assert one == describe_files(tmp_path, 3)
    assert one["docs/part-4.parquet"]["rows"] == 500
    assert (one["tokens.arrow"]["rows"], one["notes.txt"]["rows"]) == (333, None)
    for rel, facts in one.items():
        data = (tmp_path / rel).read_bytes()
        assert (facts["bytes"], facts["sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


def test_a_stage_whose_counters_do_not_add_up_fails_and_commits_nothing(tmp_path):
    stage = fake_stage({"in": 3, "out": 2})
    with pytest.raises(CountersMismatch):
        materialize(stage, {"value": 1}, {}, tmp_path)
    assert list((tmp_path / "fake").iterdir()) == []


def test_a_folder_without_manifest_is_an_interrupted_attempt_and_is_replaced(tmp_path):
    stage = fake_stage({"in": 1, "out": 1})
    key = materialize(stage, {"value": 1}, {}, tmp_path).key
    folder = tmp_path / "fake" / key
    (folder / MANIFEST).unlink()
    (folder / "partial.bin").write_bytes(b"half")
    again = materialize(stage, {"value": 1}, {}, tmp_path)
    assert not again.cached
    assert sorted(p.name for p in folder.iterdir()) == ["data.txt", MANIFEST]


def test_force_recomputes_a_committed_stage(tmp_path):
    calls: list = []
    stage = fake_stage({"in": 1, "out": 1}, calls=calls)
    materialize(stage, {"value": 1}, {}, tmp_path)
    forced = materialize(stage, {"value": 1}, {}, tmp_path, force=True)
    assert (forced.cached, len(calls)) == (False, 2)


def test_the_loser_of_a_concurrent_commit_reuses_the_winners_output(tmp_path):
    stage = fake_stage({"in": 1, "out": 1})
    winner = materialize(stage, {"value": 1}, {}, tmp_path)
    marker = winner.path / "winner"
    marker.write_text("x")

    def racing_run(cfg, inputs, out, options):  # the other build commits while this one runs
        (Path(out) / "data.txt").write_text("late\n")
        return {"in": 1, "out": 1}

    loser = types.ModuleType("fake")
    loser.NAME, loser.VERSION, loser.run = "fake", 1, racing_run
    (winner.path / MANIFEST).rename(winner.path / "m.bak")  # looks uncommitted when we start
    original_read = materialize.__globals__["read_manifest"]
    calls = {"n": 0}

    def read_manifest(folder):
        calls["n"] += 1
        if calls["n"] == 2:  # just before our commit, the winner's manifest appears
            (winner.path / "m.bak").rename(winner.path / MANIFEST)
        return original_read(folder)

    materialize.__globals__["read_manifest"] = read_manifest
    try:
        result = materialize(loser, {"value": 1}, {}, tmp_path)
    finally:
        materialize.__globals__["read_manifest"] = original_read
    assert result.cached and marker.exists()
    assert [p.name for p in (tmp_path / "fake").iterdir()] == [winner.key]
