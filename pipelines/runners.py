"""Beam runners: the one a build uses when none is named, and Beam's portable job API on one
machine, with workers in other processes, as a cluster runs them.

Contract:
- `beam_args(options) -> list[str]`: the Beam options of `RunOptions` (`runner`, `workers`,
  `beam_args`), with the runner named exactly:
  - `direct` (the default; `DirectRunner` is the same): Beam's in-process FnApiRunner by its class
    path, one process for one worker, multi-processing for more (its workers forked from a warm
    process: `pipelines.workers`). Beam 2.77's `DirectRunner` would
    try Prism first and fall back quietly, so a build with a network and one without could run
    on different engines; Sieve never lets it choose.
  - `prism`: Beam's Prism runner, only with a binary on this machine (`--prism_location` in the
    Beam arguments, or `prism` on PATH); refused with a clear error otherwise, never downloaded.
  - `portable`: Beam's PortableRunner against a job endpoint and an external worker pool
    (`--environment_type=EXTERNAL`); `portable_services` starts both locally, or the Beam
    arguments give them (`--job_endpoint`, `--environment_config`).
  - any other name (DataflowRunner, FlinkRunner, SparkRunner, ...) goes to Beam as given, with
    the Beam arguments the user passes (README, "Running on a cluster").
- `runner(options, pipeline_options)`: the runner object a pipeline runs on (the FnApiRunner for
  `direct`, given the options as Beam's DirectRunner gives them; None: Beam's from `--runner`).
- `describe(options) -> dict`: what ran, as the manifest and the card record it.
- `portable_services(options)`: a context manager for a build: with `runner="portable"` and no
  endpoints given, starts a local job service and a worker pool whose `workers` SDK worker
  processes run `sieve-beam-worker` (this package's entry point, the way a cluster's container
  runs its boot program) from a scratch directory, without the driver's `sys.path`, and stops
  them afterwards; yields the options every stage of the build uses.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.manifest import RunOptions

FN_API_RUNNER = "apache_beam.runners.portability.fn_api_runner.FnApiRunner"
DIRECT_NAMES = ("direct", "DirectRunner", "FnApiRunner", FN_API_RUNNER)
PORTABLE_NAMES = ("portable", "PortableRunner")
PRISM_NAMES = ("prism", "PrismRunner")
START_SECONDS = 120  # for the local job service and worker pool to answer


class RunnerUnavailable(RuntimeError):
    """The named runner cannot run on this machine (and Sieve will not fetch it)."""


def _arg(args: tuple[str, ...] | list[str], name: str) -> str | None:
    """The value of `--name=value` or `--name value` in Beam arguments."""
    for i, arg in enumerate(args):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}" and i + 1 < len(args):
            return args[i + 1]
    return None


def kind(options: RunOptions) -> str:
    if options.runner in DIRECT_NAMES:
        return "direct"
    if options.runner in PORTABLE_NAMES:
        return "portable"
    if options.runner in PRISM_NAMES:
        return "prism"
    return "other"


def beam_args(options: RunOptions) -> list[str]:
    extra = list(options.beam_args)
    which = kind(options)
    if which == "direct":
        if options.workers > 1:
            # Worker processes log at ERROR: their WARNINGs on a healthy build are Beam's own
            # (options a worker does not know, no semi-persistent directory on one machine).
            mode = ["--direct_running_mode=multi_processing",
                    f"--direct_num_workers={options.workers}",
                    "--default_sdk_harness_log_level=ERROR"]
        else:
            mode = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]
        return [f"--runner={FN_API_RUNNER}", *mode, *extra]
    if which == "prism":
        location = _arg(extra, "prism_location") or shutil.which("prism")
        if not location or not Path(location).exists():
            raise RunnerUnavailable(
                "runner prism: no Prism binary on this machine (give --prism_location=PATH in "
                "the Beam arguments, or put `prism` on PATH); Sieve does not download it")
        located = [] if _arg(extra, "prism_location") else [f"--prism_location={location}"]
        return ["--runner=PrismRunner", *located, *extra]
    if which == "portable":
        if not _arg(extra, "job_endpoint"):
            raise RunnerUnavailable(
                "runner portable: no --job_endpoint; run the build inside "
                "runners.portable_services (sieve build does), or give one")
        # The job service's runner splits each stage's work over this many SDK workers.
        workers = [] if _arg(extra, "direct_num_workers") else [
            f"--direct_num_workers={options.workers}"]
        return ["--runner=PortableRunner", *workers, *extra]
    return [f"--runner={options.runner}", *extra]


def runner(options: RunOptions, pipeline_options: object) -> object | None:
    """The runner object for `beam.Pipeline(runner=...)`: for `direct`, the FnApiRunner built as
    Beam's DirectRunner builds it, with the pipeline options in its provision info (so its
    worker processes see them: `--default_sdk_harness_log_level` among them); None for the
    others, which Beam makes from `--runner`. With several workers, they fork from the build's
    warm fork server (`pipelines.workers`) instead of starting Python and Beam afresh."""
    if kind(options) != "direct":
        return None
    if options.workers > 1:
        from pipelines import workers

        workers.register()
        workers.ensure_server()
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(pipeline_options.get_all_options())
    return fn_runner.FnApiRunner(provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def describe(options: RunOptions) -> dict[str, object]:
    """What ran a stage, for its manifest and the card."""
    which = kind(options)
    if which == "direct":
        return {"runner": "FnApiRunner", "mode": "in_memory" if options.workers == 1
                else "multi_processing", "workers": options.workers}
    if which == "portable":
        env = _arg(options.beam_args, "environment_type") or "DOCKER"
        return {"runner": "PortableRunner", "job_endpoint": _arg(options.beam_args,
                                                                 "job_endpoint"),
                "environment": env, "workers": options.workers}
    return {"runner": "PrismRunner" if which == "prism" else options.runner,
            "workers": options.workers}


def describe_text(runner: dict[str, object]) -> str:
    """`describe`'s record in a few words: "FnApiRunner (in_memory, 1 worker)"."""
    workers = runner.get("workers", 1)
    detail = runner.get("mode") or runner.get("environment")
    parts = [str(detail)] if detail else []
    parts.append(f"{workers} worker{'s' if workers != 1 else ''}")
    return f"{runner.get('runner')} ({', '.join(parts)})"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not listen on port {port} in {START_SECONDS} s:\n"
                               f"{_tail(log)}")
        time.sleep(0.2)


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text("utf-8", "replace")[-chars:]
    except OSError:
        return ""


def worker_executable() -> str:
    """`sieve-beam-worker` beside this interpreter (the package's entry point)."""
    found = Path(sys.executable).parent / "sieve-beam-worker"
    if not found.exists():
        raise RunnerUnavailable(f"runner portable: {found} is missing; install the project "
                                "(`pip install -e .`, which `make` does)")
    return str(found)


@contextlib.contextmanager
def portable_services(options: RunOptions) -> Iterator[RunOptions]:
    """The options a build's stages run with; for `portable` without endpoints, a local job
    service and worker pool for the duration of the build."""
    if kind(options) != "portable" or _arg(options.beam_args, "job_endpoint"):
        yield options
        return
    scratch = Path(tempfile.mkdtemp(prefix="sieve-portable-"))
    # Workers start in a directory of their own with no PYTHONPATH: they import what is
    # installed, as on a cluster, never the driver's working directory.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    procs: list[subprocess.Popen] = []
    try:
        job_port, pool_port = _free_port(), _free_port()
        job_log, pool_log = scratch / "job_service.log", scratch / "worker_pool.log"
        with open(job_log, "w") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                 f"--port={job_port}", f"--staging_dir={scratch / 'staging'}"],
                cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT))
        with open(pool_log, "w") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
                 f"--service_port={pool_port}",
                 f"--container_executable={worker_executable()}"],
                cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT))
        _wait_for(job_port, procs[0], "Beam job service", job_log)
        _wait_for(pool_port, procs[1], "Beam worker pool", pool_log)
        yield dataclasses.replace(options, beam_args=(
            f"--job_endpoint=localhost:{job_port}", "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool_port}", *options.beam_args))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def worker_main(argv: list[str] | None = None) -> None:
    """`sieve-beam-worker`: one SDK worker for Beam's external worker pool, called with the
    container boot arguments (--id, --control_endpoint, ...). Its standard output goes to
    standard error: the pool pipes a worker's stdout and never reads it, so a DoFn that printed
    64 KB would block there."""
    parser = argparse.ArgumentParser(description=worker_main.__doc__.split("\n")[0])
    parser.add_argument("--id", required=True)
    parser.add_argument("--control_endpoint", required=True)
    for name in ("logging_endpoint", "artifact_endpoint", "provision_endpoint",
                 "semi_persistent_directory"):
        parser.add_argument(f"--{name}")
    args = parser.parse_args(argv)
    sys.stdout.flush()
    os.dup2(2, 1)
    from apache_beam.runners.worker.sdk_worker import SdkHarness

    SdkHarness(args.control_endpoint, worker_id=args.id, state_cache_size=0,
               data_buffer_time_limit_ms=0).run()
