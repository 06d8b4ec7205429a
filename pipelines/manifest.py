"""Manifest: the only cache, and the commit record of a stage's output.

Contract: `materialize(stage, cfg, inputs, root, options)` returns the stage's output at
`<root>/<stage>/<key>/`, where `key` hashes the stage VERSION, its config section, any fingerprint
the stage adds (`stage.fingerprint(cfg)`, e.g. the source files' sizes and mtimes) and the
upstream keys: a Merkle chain, so a change recomputes exactly the stages downstream of it.

A stage runs into a temporary sibling folder; `manifest.json` (files with bytes, rows and sha256;
counters; config; inputs; code version) is written last, then the folder is renamed into place.
The rename is the commit: a folder without a manifest is an interrupted attempt and is replaced,
and of two concurrent builds the loser discards its own output and reuses the winner's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from pydantic import BaseModel

from pipelines import languages, progress, runners

MANIFEST = "manifest.json"


class CountersMismatch(RuntimeError):
    """A stage's counters do not add up: something was lost or double counted."""


@dataclass(frozen=True)
class RunOptions:
    """How to run Beam jobs; not part of any key (the output must not depend on them)."""

    runner: str = "direct"  # pipelines/runners.py: direct, portable, prism or a Beam runner
    workers: int = 1
    beam_args: tuple[str, ...] = ()
    device: str = "cpu"  # training stages: "cpu" or "cuda"
    show_progress: bool = True  # False: `--quiet`
    # Set by `materialize` for the running stage: where its workers report progress
    # (pipelines/progress.py).
    progress_dir: str | None = None


@dataclass
class StageOutput:
    stage: str
    key: str
    path: Path
    manifest: dict[str, Any] = field(repr=False)
    cached: bool

    @property
    def counters(self) -> dict[str, int]:
        return self.manifest["counters"]


def stage_key(name: str, version: int, config: Mapping[str, Any], upstream: Mapping[str, str],
              fingerprint: Any = None) -> str:
    payload = json.dumps(
        {"stage": name, "version": version, "config": config, "upstream": dict(upstream),
         "fingerprint": fingerprint},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def check_counters(stage: str, counters: Mapping[str, int]) -> None:
    """`in == out + sum(dropped:*) + sum(error:*)`, or raise."""
    if "in" not in counters or "out" not in counters:
        raise CountersMismatch(f"stage {stage}: counters lack 'in' or 'out': {dict(counters)}")
    lost = sum(v for k, v in counters.items() if k.startswith(("dropped:", "error:")))
    if counters["in"] != counters["out"] + lost:
        raise CountersMismatch(
            f"stage {stage}: counters do not add up: in={counters['in']} but "
            f"out={counters['out']} + dropped/errors={lost} = {counters['out'] + lost}: "
            f"{dict(counters)}"
        )


def held_out_fingerprint(paths) -> dict[str, Any] | None:
    """The held-out files' content, for the keys of the stages that read them (dedup,
    evaluate): an edited held-out set decontaminates and scores again."""
    return {"held_out_sha256": {p: sha256_file(Path(p)) for p in paths}} if paths else None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_rows(path: Path) -> int | None:
    if path.suffix == ".parquet":
        return pq.read_metadata(path).num_rows
    if path.suffix == ".arrow":
        with ipc.open_stream(str(path)) as reader:
            return sum(batch.num_rows for batch in reader)
    return None


# Facts computed while the running stage's outputs are final, by path and the stat that would
# change with the file's contents: the shard stage's index and the manifest after it describe
# the same files. `materialize` empties it before and after each stage, so a file is only
# taken as unchanged between its stage's last write and its manifest.
# One get or set at a time, each atomic, from the hashing threads: a lost entry is hashed again.
_FACTS: dict[tuple, dict[str, Any]] = {}


def _file_facts(path: Path) -> dict[str, Any]:
    st = path.stat()
    mark = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    facts = _FACTS.get(mark)
    if facts is None:
        facts = {"bytes": st.st_size, "rows": count_rows(path), "sha256": sha256_file(path)}
        _FACTS[mark] = facts
    return dict(facts)


def file_facts(paths: Iterable[Path], workers: int = 1) -> list[dict[str, Any]]:
    """Bytes, rows and sha256 of each file, in order; `workers` files at a time (hashlib and
    Arrow's readers release the GIL, so a stage's tail is not one core hashing its output)."""
    paths = list(paths)
    if workers <= 1 or len(paths) <= 1:
        return [_file_facts(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_file_facts, paths))


def describe_files(folder: Path, workers: int = 1) -> dict[str, dict[str, Any]]:
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST
                   and p.name != ".outputs-written")
    return {path.relative_to(folder).as_posix(): facts
            for path, facts in zip(paths, file_facts(paths, workers), strict=True)}


@functools.cache
def code_version() -> str:
    """The checkout's commit when this process first asks: the code it imported. Asked before
    a stage runs, not after: `git` starts as a fork of the build, and a fork taken after a
    stage shows the stage's whole RSS a second time to a sampler of the process tree
    (bench/scale.py read 100k ingest's peak as 1,137 MB, two 471 MB build processes, where
    its steady peak is 669 MB)."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=Path(__file__).parent,
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _config_dict(cfg: Any) -> dict[str, Any]:
    if isinstance(cfg, BaseModel):
        return cfg.model_dump(mode="json")
    if dataclasses.is_dataclass(cfg):  # training configs: plain dataclasses (no pydantic there)
        return json.loads(json.dumps(dataclasses.asdict(cfg)))
    return dict(cfg)


def _identity(stage: ModuleType, cfg: Any, inputs: Mapping[str, StageOutput]
              ) -> tuple[dict[str, Any], Any, str]:
    """(config, fingerprint, key) of a stage's output for this config and these inputs."""
    config = _config_dict(cfg)
    fingerprint = stage.fingerprint(cfg) if hasattr(stage, "fingerprint") else None
    key = stage_key(stage.NAME, stage.VERSION, config, {k: v.key for k, v in inputs.items()},
                    fingerprint)
    return config, fingerprint, key


def key_of(stage: ModuleType, cfg: Any, inputs: Mapping[str, StageOutput]) -> str:
    """The key a stage's output has for this config and these inputs (`materialize` builds it
    under `<root>/<stage>/<key>`; `sieve inspect` finds it there)."""
    return _identity(stage, cfg, inputs)[2]


def materialize(stage: ModuleType, cfg: Any,
                inputs: Mapping[str, StageOutput], root: str | os.PathLike[str],
                options: RunOptions = RunOptions(), force: bool = False) -> StageOutput:
    """Return the stage's committed output, computing it only if its key has no manifest."""
    name, version = stage.NAME, stage.VERSION
    config, fingerprint, key = _identity(stage, cfg, inputs)
    final = Path(root) / name / key
    version_of_code = code_version()

    existing = read_manifest(final)
    if existing is not None and not force:
        return StageOutput(name, key, final, existing, cached=True)

    _remove_abandoned_attempts(final.parent, key)
    tmp = final.parent / f".{key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    _FACTS.clear()
    try:
        started = time.time()
        # Named like an attempt folder, so a killed build's is removed with its attempt.
        progress_dir = f"{tmp}.progress"
        source = getattr(stage, "PROGRESS_INPUT", None)
        total = inputs[source].counters.get("out") if source in inputs else None
        try:
            with progress.watch(progress_dir, name, total_docs=total,
                                enabled=options.show_progress):
                counters = stage.run(cfg, {k: v.path for k, v in inputs.items()}, tmp,
                                     dataclasses.replace(options, progress_dir=progress_dir))
        finally:  # what one stage loaded is not carried through the next ones
            languages.release_splitters()
        counters = {k: int(v) for k, v in sorted(counters.items())}
        if os.environ.get("SIEVE_FAULT_PAUSE") == name:  # crash tests: widen the window between
            (tmp / ".outputs-written").touch()          # outputs written and commit, to kill in
            time.sleep(600)                             # it (tests/test_crash.py)
        check_counters(name, counters)
        manifest = {
            "stage": name, "version": version, "key": key, "config": config,
            "fingerprint": fingerprint,
            "inputs": {k: {"stage": v.stage, "key": v.key} for k, v in inputs.items()},
            "counters": counters, "files": describe_files(tmp, options.workers),
            "code_version": version_of_code, "seconds": round(time.time() - started, 3),
            "runner": runners.describe(options),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True), "utf-8")
        won = _commit(tmp, final, force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        _FACTS.clear()
    committed = read_manifest(final)
    assert committed is not None, f"{final}: committed without a manifest"
    # A concurrent build that committed first has the same key, so the same output: reuse it.
    return StageOutput(name, key, final, committed, cached=not won)


def _remove_abandoned_attempts(folder: Path, key: str) -> None:
    """Delete temporary folders of this key left by a process that no longer runs (killed)."""
    if not folder.exists():
        return
    for tmp in folder.glob(f".{key}.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[1].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _commit(tmp: Path, final: Path, force: bool) -> bool:
    """Rename `tmp` into place; False when a concurrent build's output already stands there."""
    if final.exists():
        if read_manifest(final) is not None and not force:
            shutil.rmtree(tmp)  # lost the race: the winner's output stands
            return False
        # An interrupted attempt (no manifest), or a forced rebuild: move it aside, then replace.
        trash = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if read_manifest(final) is None:
            raise
        shutil.rmtree(tmp)  # another build committed between our check and our rename
        return False
    return True
