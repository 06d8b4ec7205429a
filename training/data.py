"""Training data: Sieve's Arrow shards and task datasets, memory-mapped, with resumable order.

Contract:
- `PackedShards(shard_dir, split, source=None)` memory-maps every `<split>/part-*.arrow` listed
  in the shard stage's `index.json` (only `source`'s files when given); `rows[i]` is one packed
  sequence of `seq_len` token ids (numpy view, no copy). `verify()` checks each file's sha256
  against the index. `sources(shard_dir, split)` lists the sources the index has for a split.
- `Batches(num_rows, batch_size, seed, rank, world)` yields row indices in a seeded order that is
  reshuffled every epoch; its whole state is `{"epoch", "step"}`, so a resumed run continues with
  exactly the batches an uninterrupted run would have seen. Under DDP each rank takes every
  `world`-th batch.
- `read_task_split(folder, split)` reads one split of a task dataset written by
  `datasets.save_to_disk` (Arrow stream files) with pyarrow alone.
Imports only numpy and pyarrow, so it runs on a GPU machine without Beam, Prefect or datasets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa


def sources(shard_dir: str | Path, split: str) -> list[str]:
    index = json.loads((Path(shard_dir) / "index.json").read_text(encoding="utf-8"))
    return sorted({s["source"] for s in index["shards"] if s["split"] == split and "source" in s})


class PackedShards:
    def __init__(self, shard_dir: str | Path, split: str, source: str | None = None) -> None:
        self.dir = Path(shard_dir)
        index_path = self.dir / "index.json"
        if not index_path.exists():
            raise FileNotFoundError(f"{index_path}: not a Sieve shard folder (no index.json)")
        self.index = json.loads(index_path.read_text(encoding="utf-8"))
        self.seq_len = int(self.index["seq_len"])
        self.vocab_size = int(self.index["vocab_size"])
        self.entries = [s for s in self.index["shards"] if s["split"] == split
                        and (source is None or s.get("source") == source)]
        if not self.entries:
            which = f"{split!r}" if source is None else f"{split!r} {source!r}"
            raise ValueError(f"{self.dir}: no {which} shards in index.json")
        self._rows: list[np.ndarray] = []
        for entry in self.entries:
            source = pa.memory_map(str(self.dir / entry["path"]))
            table = pa.ipc.open_stream(source).read_all()
            values = table.column("input_ids").combine_chunks().flatten()
            flat = values.to_numpy(zero_copy_only=True)
            self._rows.append(flat.reshape(-1, self.seq_len))
        self.offsets = np.cumsum([0] + [len(r) for r in self._rows])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def row(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self._rows[shard][i - self.offsets[shard]]

    def locate(self, i: int) -> tuple[str, int]:
        """The shard file (relative to the shard folder) and row in it of row `i`."""
        shard = int(np.searchsorted(self.offsets, i, side="right") - 1)
        return self.entries[shard]["path"], int(i - self.offsets[shard])

    def batch(self, indices: np.ndarray) -> np.ndarray:
        return np.stack([self.row(int(i)) for i in indices]).astype(np.int64)

    def verify(self) -> None:
        for entry in self.entries:
            digest = hashlib.sha256((self.dir / entry["path"]).read_bytes()).hexdigest()
            if digest != entry["sha256"]:
                raise ValueError(f"{self.dir / entry['path']}: sha256 differs from index.json")


class Batches:
    """Seeded, epoch-reshuffled batches of row indices with a two-number state."""

    def __init__(self, num_rows: int, batch_size: int, seed: int, rank: int = 0,
                 world: int = 1) -> None:
        if num_rows < batch_size * world:
            raise ValueError(f"{num_rows} rows cannot fill one batch of {batch_size} x {world}")
        self.num_rows, self.batch_size, self.seed = num_rows, batch_size, seed
        self.rank, self.world = rank, world
        self.epoch, self.step = 0, 0
        self.per_epoch = num_rows // (batch_size * world)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.step = int(state["epoch"]), int(state["step"])

    def _order(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            order = self._order(self.epoch)
            while self.step < self.per_epoch:
                first = (self.step * self.world + self.rank) * self.batch_size
                self.step += 1
                yield order[first: first + self.batch_size]
            self.epoch, self.step = self.epoch + 1, 0


def read_task_split(folder: str | Path, split: str) -> pa.Table:
    split_dir = Path(folder) / split
    files = sorted(split_dir.glob("data-*.arrow"))
    if not files:
        raise FileNotFoundError(f"{split_dir}: no data-*.arrow files (not a saved task dataset)")
    return pa.concat_tables(pa.ipc.open_stream(pa.memory_map(str(f))).read_all() for f in files)


def label_names(folder: str | Path, split: str, column: str) -> list[str]:
    """Class names from the `datasets` features stored beside the data (ClassLabel)."""
    info = json.loads((Path(folder) / split / "dataset_info.json").read_text(encoding="utf-8"))
    feature = info["features"][column]
    while "names" not in feature:  # Sequence(ClassLabel) nests the label under "feature"
        feature = feature["feature"]
    return list(feature["names"])
