"""Progress of a running stage: documents, bytes, rate and elapsed time, from every worker.

Contract:
- Worker side: `Reporter(directory)` in a DoFn (or any loop); `advance(docs, nbytes, files)`
  adds to its totals and, at most every `FLUSH_SECONDS`, writes them to
  `<directory>/<random>.json` (atomically: a reader never sees half a file); `flush()` writes
  now (call it when a bundle or file ends).
- Driver side: `watch(directory, label, total_docs, total_files)` is a context manager that
  sums every reporter's file on a thread and shows it: a tqdm bar on a terminal, otherwise one
  line every `SIEVE_PROGRESS_SECONDS` seconds (default 10) for logs and CI; nothing when
  `enabled` is false (`--quiet`).

Why a side channel: Beam's metrics reach the driver only when a job ends on the in-process and
portable runners, and the workers of `--workers 2` are other processes. A folder that every worker
writes its own file into needs no coordination and works for any runner whose workers share the
driver's disk; on a cluster (no shared disk) the stage simply shows no progress.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TextIO

FLUSH_SECONDS = 0.5


class Reporter:
    def __init__(self, directory: str | None) -> None:
        self.directory = directory
        self.path = (os.path.join(directory, f"{uuid.uuid4().hex}.json")
                     if directory else None)
        self.docs = self.bytes = self.files = 0
        self._last = 0.0

    def advance(self, docs: int = 0, nbytes: int = 0, files: int = 0) -> None:
        self.docs += docs
        self.bytes += nbytes
        self.files += files
        if self.path is not None and time.monotonic() - self._last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.path is None:
            return
        self._last = time.monotonic()
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"docs": self.docs, "bytes": self.bytes, "files": self.files}, fh)
            os.replace(tmp, self.path)
        except OSError:  # the folder is gone (the stage ended) or not shared: no progress
            self.path = None


def read_totals(directory: str) -> dict[str, int]:
    totals = {"docs": 0, "bytes": 0, "files": 0, "reporters": 0}
    try:
        names = os.listdir(directory)
    except OSError:
        return totals
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as fh:
                values = json.load(fh)
        except (OSError, ValueError):
            continue
        totals["reporters"] += 1
        for key in ("docs", "bytes", "files"):
            totals[key] += int(values.get(key, 0))
    return totals


def format_line(label: str, totals: dict[str, int], elapsed: float, total_docs: int | None,
                total_files: int | None) -> str:
    if not totals.get("reporters", 1):  # no worker has reported (yet, or at all: the stage
        return f"[sieve] {label}:  {elapsed:,.0f} s"  # counts nothing as it goes)
    docs, mb = totals["docs"], totals["bytes"] / 1e6
    rate = docs / elapsed if elapsed > 0 else 0.0
    parts = [f"[sieve] {label}:"]
    if total_docs:
        parts.append(f"{docs:,}/{total_docs:,} docs ({100 * docs / total_docs:.0f}%)")
    else:
        parts.append(f"{docs:,} docs")
    if total_files:
        parts.append(f"{totals['files']:,}/{total_files:,} files")
    parts.append(f"{mb:,.1f} MB  {rate:,.0f} docs/s  {mb / elapsed if elapsed > 0 else 0:.1f} "
                 f"MB/s  {elapsed:,.0f} s")
    return "  ".join(parts)


@contextlib.contextmanager
def watch(directory: str, label: str, total_docs: int | None = None,
          total_files: int | None = None, enabled: bool = True,
          stream: TextIO | None = None, interval: float | None = None) -> Iterator[str]:
    """Create `directory`, show progress while the body runs, remove the folder afterwards."""
    os.makedirs(directory, exist_ok=True)
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    if interval is None:
        interval = 0.5 if tty else float(os.environ.get("SIEVE_PROGRESS_SECONDS", "10"))
    stop = threading.Event()
    started = time.monotonic()

    def show_lines() -> None:
        while not stop.wait(interval):
            line = format_line(label, read_totals(directory), time.monotonic() - started,
                               total_docs, total_files)
            print(line, file=stream, flush=True)

    def show_bar() -> None:
        from tqdm import tqdm

        bar = tqdm(total=total_docs or None, desc=f"[sieve] {label}", unit=" docs",
                   unit_scale=True, file=stream, dynamic_ncols=True, leave=False)
        shown = 0
        while not stop.wait(interval):
            totals = read_totals(directory)
            elapsed = time.monotonic() - started
            bar.set_postfix_str(f"{totals['bytes'] / 1e6:,.0f} MB, "
                                f"{totals['bytes'] / 1e6 / max(elapsed, 1e-9):.1f} MB/s"
                                + (f", {totals['files']}/{total_files} files"
                                   if total_files else ""), refresh=False)
            bar.update(totals["docs"] - shown)
            shown = totals["docs"]
        bar.close()

    thread = None
    if enabled:
        thread = threading.Thread(target=show_bar if tty else show_lines, daemon=True,
                                  name=f"progress-{label}")
        thread.start()
    try:
        yield directory
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=5)
        for name in os.listdir(directory):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
        with contextlib.suppress(OSError):
            os.rmdir(directory)
