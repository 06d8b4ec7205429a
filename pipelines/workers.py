"""Beam's SDK workers for `--workers N` on one machine, forked from a warm process.

Beam's FnApiRunner, in its multi_processing mode, starts each stage's workers with the command
`python -m apache_beam.runners.worker.sdk_worker_main`: every worker of every stage imports
Python's and Beam's modules, then the stage's own (numba, pyarrow, the stage's kernels), again.
A build with 2 workers paid that at the start of each of its four Beam stages (about 1-1.5 s of
wall time each, measured on the 2,000-document build: `bench/results/scale.json`, stop 46).

Here one process, the fork server, imports them once per build, and each worker forks from it:
the same entry point (`sdk_worker_main.main`), the same environment variables, the same harness
and the same pipeline options as Beam's command would have; only the start is faster. It serves
Beam's own environment (`SubprocessSDKEnvironment` with that command): a worker handler
registered for it starts the worker through the server while one runs, and falls back to
Beam's subprocess otherwise (another command, or the server gone).

A worker that dies mid-stage hangs the stage as Beam's own subprocess worker does (measured: a
killed worker, either way, left the runner waiting); if the server dies, its running workers go
on as orphans and later workers start as Beam's subprocesses.

Contract:
- `register()`: install the worker handler (once per process); `runners.runner` calls it for
  the direct runner with more than one worker, with `ensure_server()`.
- `ensure_server() -> ForkServer | None`: the process's fork server, started on first use; None
  where os.fork is missing or the server has exited. Stopped when the process exits.
- `ForkServer.run_worker(env) -> int`: fork a worker with environment `env`, wait for it, return
  its exit status; `ServerGone` if the server exited before forking it.
- `python -m pipelines.workers FD`: the server itself, serving requests on socket FD.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

WORKER_MODULE = "apache_beam.runners.worker.sdk_worker_main"
# What a worker of any stage imports; the server imports it before it forks.
PRELOAD = (WORKER_MODULE, "pipelines.ingest", "pipelines.clean", "pipelines.dedup",
           "pipelines.shard")


def _send(sock: socket.socket, message: dict) -> None:
    data = json.dumps(message).encode("utf-8")
    sock.sendall(struct.pack("!I", len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket) -> dict | None:
    header = _recv_exact(sock, 4)
    if header is None:
        return None
    data = _recv_exact(sock, struct.unpack("!I", header)[0])
    return None if data is None else json.loads(data)


def _tell(sock: socket.socket, message: dict) -> bool:
    """Send from the server; False when the build's end is gone (the server then ends)."""
    try:
        _send(sock, message)
    except OSError:
        return False
    return True


def _reap(sock: socket.socket, running: dict[int, int]) -> bool:
    """Report each worker that has ended; False when the build's end is gone."""
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            break
        if not _tell(sock, {"id": running.pop(pid), "status": os.waitstatus_to_exitcode(status)}):
            return False
    return True


def _worker(env: dict[str, str]) -> int:
    """In the forked child: Beam's worker entry point, as `python -m` would run it (its
    environment, its argv, Ctrl-C interrupting it)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(env)
    from apache_beam.runners.worker import sdk_worker_main

    sys.argv = [sdk_worker_main.__file__]
    try:
        sdk_worker_main.main([])
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 (reported, and the status says it failed)
        traceback.print_exc()
        return 1
    return 0


def serve(sock: socket.socket) -> None:
    """The server: import PRELOAD, then fork a worker for each request; report each fork (its
    pid) and each worker's end (its exit status). Ends, killing its workers, when the build's
    end of the socket closes (not on Ctrl-C: the build's end does, and its workers take it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOAD:
        importlib.import_module(name)
    _send(sock, {"ready": True})
    running: dict[int, int] = {}  # pid -> request id
    while True:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            request = _recv(sock)
            if request is None:
                break
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                sock.close()
                code = 1
                try:
                    code = _worker(request["env"])
                finally:
                    with contextlib.suppress(Exception):
                        sys.stdout.flush()
                        sys.stderr.flush()
                    os._exit(code)
            running[pid] = request["id"]
            if not _tell(sock, {"id": request["id"], "pid": pid}):
                break
        if not _reap(sock, running):
            break
    for pid in running:
        with contextlib.suppress(OSError):
            os.kill(pid, 9)


class ServerGone(RuntimeError):
    """The fork server exited before it forked the worker asked for."""


class ForkServer:
    """The build's end of the fork server: starts it, asks it for workers, and waits for them
    (from any thread)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen([sys.executable, "-m", "pipelines.workers",
                                       str(theirs.fileno())], pass_fds=[theirs.fileno()])
        theirs.close()
        self._sock = ours
        self._lock = threading.Lock()
        self._next = 0
        self._pids: dict[int, int] = {}
        self._done: dict[int, int] = {}
        self._events: dict[int, threading.Event] = {}
        self._gone = False
        self.forked = 0  # workers the server has started
        # Requests wait in the socket while the server imports PRELOAD: starting it early lets
        # that overlap with the build's own start.
        self._reader = threading.Thread(target=self._read, name="fork-server", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        return not self._gone and self._proc.poll() is None

    def _read(self) -> None:
        while True:
            message = _recv(self._sock)
            with self._lock:
                if message is None:  # the server is gone: wake every waiting worker
                    self._gone = True
                    for event in self._events.values():
                        event.set()
                    return
                if "ready" in message:
                    continue
                if "pid" in message:
                    self._pids[message["id"]] = message["pid"]
                    self.forked += 1
                else:
                    self._done[message["id"]] = message["status"]
                event = self._events.get(message["id"])
            if event is not None:
                event.set()

    def run_worker(self, env: dict[str, str]) -> int:
        """Fork a worker with environment `env`; its exit status once it ends. ServerGone if the
        server exited before it forked it (nothing of the worker runs)."""
        with self._lock:
            if self._gone:
                raise ServerGone("the worker fork server has exited")
            self._next += 1
            request = self._next
            event = self._events[request] = threading.Event()
            try:
                _send(self._sock, {"id": request, "env": env})
            except OSError as exc:
                del self._events[request]
                raise ServerGone(f"the worker fork server has exited ({exc})") from None
        while True:
            event.wait()
            with self._lock:
                event.clear()
                if request in self._done:
                    del self._events[request]
                    self._pids.pop(request, None)
                    return self._done.pop(request)
                if self._gone:
                    del self._events[request]
                    pid = self._pids.pop(request, None)
                    break
        if pid is None:
            raise ServerGone("the worker fork server exited before it started the worker")
        while _exists(pid):  # an orphan now, no longer ours to wait for
            time.sleep(0.1)
        raise RuntimeError(f"the worker fork server exited while worker {pid} ran; its exit "
                           "status is unknown")

    def stop(self) -> None:
        # shutdown, not only close: the reader thread blocked in recv holds the socket open,
        # and the server would wait for its end of it (10 s lost at every build's exit).
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        if self._proc.poll() is None:
            self._proc.kill()


def _exists(pid: int) -> bool:
    """Whether process `pid` still runs (a zombie no parent reaps does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


_SERVER: ForkServer | None = None
_SERVER_LOCK = threading.Lock()
_REGISTERED = False


def ensure_server() -> ForkServer | None:
    """The process's fork server, started on first use; None where os.fork is missing or the
    server has exited (workers then start as Beam's subprocesses, and it is not restarted:
    a server that failed once, for example on an import, would fail again)."""
    global _SERVER
    if not hasattr(os, "fork"):
        return None
    with _SERVER_LOCK:
        if _SERVER is None:
            _SERVER = ForkServer()
            atexit.register(_SERVER.stop)
        return _SERVER if _SERVER.alive else None


def beam_command() -> str:
    """The command Beam's FnApiRunner starts a multi_processing worker with."""
    return f"{sys.executable} -m {WORKER_MODULE}"


def register() -> None:
    """Serve Beam's subprocess environment in this process through the fork server (once)."""
    global _REGISTERED
    with _SERVER_LOCK:
        if _REGISTERED:
            return
        _REGISTERED = True
    import grpc
    from apache_beam.portability import python_urns
    from apache_beam.portability.api import beam_fn_api_pb2_grpc, endpoints_pb2
    from apache_beam.runners.portability import local_job_service
    from apache_beam.runners.portability.fn_api_runner import worker_handlers
    from apache_beam.runners.portability.local_job_service import BeamFnLoggingServicer
    from apache_beam.utils import thread_pool_executor
    from google.protobuf import json_format, text_format

    @worker_handlers.WorkerHandler.register_environment(python_urns.SUBPROCESS_SDK, bytes)
    class ForkedSdkWorkerHandler(worker_handlers.SubprocessSdkWorkerHandler):
        """Beam's handler, with the worker forked from the fork server when the command is
        Beam's own; the environment the worker gets is the one `SubprocessSdkWorker.run`
        (apache_beam/runners/portability/local_job_service.py) gives its subprocess."""

        def start_worker(self) -> None:
            command = self._worker_command_line
            if isinstance(command, bytes):
                command = command.decode("utf-8")
            server = ensure_server() if command == beam_command() else None
            if server is None:
                super().start_worker()
                return
            self.worker_thread = threading.Thread(target=self._run_forked, args=(server,),
                                                  name="run_worker")
            self.worker_thread.start()

        def _run_forked(self, server: ForkServer) -> None:
            logging_server = grpc.server(thread_pool_executor.shared_unbounded_instance(),
                                         options=[("grpc.http2.max_pings_without_data", 0),
                                                  ("grpc.http2.max_ping_strikes", 0)])
            port = logging_server.add_insecure_port("[::]:0")
            logging_server.start()
            beam_fn_api_pb2_grpc.add_BeamFnLoggingServicer_to_server(BeamFnLoggingServicer(),
                                                                     logging_server)
            env = dict(os.environ,
                       CONTROL_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                           endpoints_pb2.ApiServiceDescriptor(url=self.control_address)),
                       LOGGING_API_SERVICE_DESCRIPTOR=text_format.MessageToString(
                           endpoints_pb2.ApiServiceDescriptor(url=f"localhost:{port}")),
                       PIPELINE_OPTIONS=json_format.MessageToJson(
                           self.provision_info.provision_info.pipeline_options))
            if self.worker_id:
                env["WORKER_ID"] = self.worker_id
            try:
                status = server.run_worker(env)
            except ServerGone as exc:
                print(f"[sieve] {exc}: Beam's worker starts as a subprocess", file=sys.stderr,
                      flush=True)
                local_job_service.SubprocessSdkWorker(
                    self._worker_command_line, self.control_address, self.provision_info,
                    self.worker_id).run()
                return
            finally:
                logging_server.stop(0)
            if status:
                raise RuntimeError(f"Worker subprocess exited with return code {status}")


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # nothing to tear down: skip the interpreter's teardown of PRELOAD
