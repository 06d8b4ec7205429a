"""Mix stage: the mixture plan training follows, from the shard stage's per-source index.

Contract: `run(cfg: MixConfig, {"shard": dir, "tokenizer": dir}, out, options) -> counters`.
- With `[mix] sources`, `training.mixture.make_plan` turns the recipe's budget and weights and
  each source's train sequences (`index.json`'s "sources") into `out/mixture.json`: the steps and
  global batch, per source the target and planned tokens, epochs and repeats, per stage its span,
  and the order's sha256. A mixture that cannot be met fails here, naming the source, what it has
  and what it would need. Without sources the plan says `"natural": true`: training reads every
  train sequence once, in a seeded order, as before mixtures existed.
- With `held_out` (the recipe's `[evaluation] held_out` files), those documents are tokenized and
  packed into `out/neutral/` (an `index.json` and Arrow file as the shard stage writes them): the
  neutral validation set, a source no mixture weights, so that validation losses compare across
  mixtures.
Counters: in = train sequences of every source; out = distinct sequences the plan reads; dropped:
unweighted_source (sources the mixture gives no weight) and not_sampled (sequences of weighted
sources it never reads, under max_fraction or a small share); planned and repeated sequences.
No Beam job: the plan is a few numbers per source and a seeded permutation rule.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipelines.manifest import RunOptions, held_out_fingerprint, sha256_file
from pipelines.recipe import MixConfig
from pipelines.shard import _write_stream, token_dtype
from tokenizer import spm
from training.heldout import read_held_out
from training.mixture import make_plan

NAME = "mix"
VERSION = 1
NEUTRAL = "neutral"


def fingerprint(cfg: MixConfig):
    return held_out_fingerprint(cfg.held_out)


def available_sequences(index: dict) -> dict[str, int]:
    """Train sequences per source, from the shard stage's index.json."""
    return {source: splits["train"]["sequences"]
            for source, splits in sorted(index.get("sources", {}).items()) if "train" in splits}


def pack_neutral(paths: list[str], model_path: Path, seq_len: int, out: Path) -> dict:
    """The held-out documents, tokenized, EOS after each, cut into `seq_len` sequences."""
    sp = spm.load(str(model_path))
    dtype = token_dtype(sp.get_piece_size())
    docs = read_held_out(paths)
    encoded = sp.encode(docs)
    stream = np.fromiter((t for ids in encoded for t in (*ids, spm.EOS_ID)), np.int64)
    n_seq = len(stream) // seq_len
    if n_seq == 0:
        raise ValueError(f"mix: the held-out set {paths} has {len(stream)} tokens, less than one "
                         f"sequence of {seq_len}")
    values = pa.array(stream[: n_seq * seq_len].astype(dtype))
    offsets = pa.array(np.arange(0, n_seq * seq_len + 1, seq_len, dtype=np.int32))
    table = pa.table({"input_ids": pa.ListArray.from_arrays(offsets, values)})
    folder = out / NEUTRAL
    (folder / "validation").mkdir(parents=True)
    path = folder / "validation" / "part-neutral-0000.arrow"
    with pa.OSFile(str(path), "wb") as sink:
        _write_stream(sink, table)
    index = {"format": "arrow-ipc-stream", "column": "input_ids", "seq_len": seq_len,
             "dtype": dtype.name, "vocab_size": sp.get_piece_size(), "eos_id": spm.EOS_ID,
             "shards": [{"path": "validation/part-neutral-0000.arrow", "split": "validation",
                         "source": NEUTRAL, "rows": n_seq, "tokens": n_seq * seq_len,
                         "bytes": path.stat().st_size, "sha256": sha256_file(path)}],
             "held_out": paths}
    (folder / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True), "utf-8")
    return {"documents": len(docs), "sequences": n_seq, "tokens": n_seq * seq_len,
            "tokens_dropped_tail": len(stream) - n_seq * seq_len, "path": NEUTRAL}


def run(cfg: MixConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    out, shard_dir = Path(out), Path(inputs["shard"])
    index_path = shard_dir / "index.json"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    seq_len = int(index["seq_len"])
    available = available_sequences(index)
    if cfg.sources:
        plan = make_plan(available, cfg.model_dump(), seq_len, sha256_file(index_path))
    else:
        plan = {"format": "sieve-mixture-1", "natural": True, "seq_len": seq_len,
                "sources": {n: {"available_sequences": k, "planned_sequences": k,
                                "planned_tokens": k * seq_len} for n, k in available.items()},
                "shard_index_sha256": sha256_file(index_path)}
    if cfg.held_out:
        plan["neutral"] = pack_neutral(list(cfg.held_out), Path(inputs["tokenizer"])
                                       / "tokenizer.model", seq_len, out)
    (out / "mixture.json").write_text(json.dumps(plan, indent=1, sort_keys=True), "utf-8")

    weighted = plan["sources"]
    counters = {"in": sum(available.values()),
                "out": sum(s.get("distinct_sequences", s["planned_sequences"])
                           for s in weighted.values()),
                "dropped:unweighted_source": sum(k for n, k in available.items()
                                                 if n not in weighted),
                "planned_sequences": sum(s["planned_sequences"] for s in weighted.values()),
                "repeated_sequences": sum(s.get("repeated_sequences", 0)
                                          for s in weighted.values())}
    counters["dropped:not_sampled"] = (sum(s["available_sequences"] for s in weighted.values())
                                       - counters["out"])
    if "neutral" in plan:
        counters["neutral_sequences"] = plan["neutral"]["sequences"]
    return counters
