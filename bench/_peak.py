"""Peak resident memory of this process (Linux), measured from a chosen moment.

`ru_maxrss` is no good for a bench child: a forked process starts with its parent's high-water
mark, so a child of a parent holding 1 GB reported 1 GB whatever it did itself.
"""


def reset_peak_rss() -> None:
    """Start the high-water mark again from the current RSS (`/proc/self/clear_refs`, mode 5)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:  # not Linux, or not allowed: the peak then counts from process start
        pass


def peak_rss_mb() -> float:
    """VmHWM: the most resident memory since the process started or `reset_peak_rss()`."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0
