"""One way to draw the PNGs of cards and reports: `with figure(path, size) as ax: ...` opens an
Agg figure (`ncols` axes side by side) and saves it (tight layout, 110 dpi) when the block ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def figure(path: Path, size: tuple[float, float], ncols: int = 1) -> Iterator[Any]:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=size, dpi=110)
    try:
        yield ax
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
