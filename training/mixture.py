"""Data mixtures: the plan a build writes (`mixture.json`) and the one global order training reads.

Contract:
- `make_plan(available, mix, seq_len) -> plan` turns the recipe's `[mix]` section (a plain dict:
  `total_tokens`, `global_batch_tokens`, `seed`, `sources = {name: {weight, max_repeat,
  max_fraction}}`, `stages = [{from_tokens, weights}]`) and each source's train sequences into a
  plan: the steps, the sequences per global batch, per source the target and planned tokens,
  epochs and repeats, per stage its span and counts, and `order_sha256` / `plan_id`. A mixture
  that cannot be met raises `MixtureError` naming the source, what it has and what it would need;
  nothing repeats beyond `max_repeat`, nothing is read beyond `max_fraction`.
- `GlobalOrder(plan)`: `.source[i]` (index into `plan["source_names"]`) and `.row[i]` (that
  source's train sequence) of the i-th sequence of the run, for every i. It depends on the plan
  alone, never on the number of ranks.
- `rank_rows(plan, step, rank, world)`: the positions of one global batch a rank reads (rank r
  reads the r-th slice of every global batch).
- `check_resume(plan, order, state)`: a checkpoint written under another plan resumes only where
  a new stage of this plan starts and the order before it is the same; else `MixtureError`.

The order, built from the seed and stable hashes only (no process ids, no salted `hash()`):
- interleave: the largest deficit. Within a stage, position i goes to the source whose
  `weight * (i + 1) - taken` is largest (exact integer arithmetic; ties to the first name). This
  is online: a stage cut short keeps its prefix, so a new stage can start at any global batch.
- per source: the k-th draw is row `permutation(seed, source, epoch)[k % n]` with
  `epoch = k // n`, a fresh seeded permutation per epoch; repeats happen only past an epoch.
Imports only numpy and the standard library (it runs on the GPU machine).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

FORMAT = "sieve-mixture-1"
_WEIGHT_SCALE = 10**9  # weights as integers: the interleave is exact and the same everywhere


class MixtureError(ValueError):
    """A mixture that cannot be met, or a resume that would change what was already read."""


def _source_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8,
                                          person=b"sieve-mix").digest(), "big")


def permutation(seed: int, source: str, epoch: int, n: int) -> np.ndarray:
    return np.random.default_rng([seed, _source_key(source), epoch]).permutation(n)


def _interleave(weights: list[int], length: int) -> np.ndarray:
    """Source index per position of one stage: the largest deficit `w_s * (i + 1) - t_s * W`."""
    total = sum(weights)
    taken = [0] * len(weights)
    out = np.empty(length, np.uint16)
    live = [s for s, w in enumerate(weights) if w > 0]
    for i in range(length):
        best, best_deficit = live[0], None
        for s in live:
            deficit = weights[s] * (i + 1) - taken[s] * total
            if best_deficit is None or deficit > best_deficit:
                best, best_deficit = s, deficit
        taken[best] += 1
        out[i] = best
    return out


def _sources_in_order(names: list[str], spans: list[tuple[int, int, dict[str, float]]]
                      ) -> np.ndarray:
    """Source index per position of the run: each stage's (first, end, weights) interleaved."""
    return np.concatenate([_interleave([round(w[n] * _WEIGHT_SCALE) for n in names], b - a)
                           for a, b, w in spans])


def _stage_weights(mix: dict, names: list[str]) -> list[tuple[int, dict[str, float]]]:
    """(first token, weights) per stage: the sources' weights, then each `[[mix.stages]]`."""
    stages = [(0, {n: float(mix["sources"][n].get("weight", 0.0)) for n in names})]
    for stage in mix.get("stages", []):
        stages.append((int(stage["from_tokens"]),
                       {n: float(stage["weights"].get(n, 0.0)) for n in names}))
    return stages


def make_plan(available: dict[str, int], mix: dict, seq_len: int,
              shard_index_sha256: str = "") -> dict[str, Any]:
    """The plan for `mix` over `available` train sequences per source (see the module doc)."""
    names = sorted(mix["sources"])
    weighted = {n for n in names if mix["sources"][n].get("weight", 0.0) > 0} | {
        n for stage in mix.get("stages", []) for n, w in stage["weights"].items() if w > 0}
    missing = sorted(n for n in weighted if not available.get(n))
    available = {n: int(available.get(n, 0)) for n in names}
    if missing:
        raise MixtureError(f"mix: sources {missing} have no train shards; the build has "
                           f"{sorted(available)}")
    batch_tokens = int(mix["global_batch_tokens"])
    if batch_tokens % seq_len:
        raise MixtureError(f"mix: global_batch_tokens {batch_tokens:,} is not a multiple of "
                           f"seq_len {seq_len}")
    per_batch = batch_tokens // seq_len
    steps = int(mix["total_tokens"]) // batch_tokens
    if steps < 1:
        raise MixtureError(f"mix: total_tokens {mix['total_tokens']:,} is less than one global "
                           f"batch ({batch_tokens:,} tokens)")
    total = steps * per_batch
    stages = _stage_weights(mix, names)
    spans = []
    for t, (first_token, weights) in enumerate(stages):
        end_token = stages[t + 1][0] if t + 1 < len(stages) else steps * batch_tokens
        if first_token % batch_tokens or not first_token < end_token:
            raise MixtureError(f"mix: stage {t} starts at token {first_token:,}: stages start at "
                               f"increasing multiples of global_batch_tokens ({batch_tokens:,}) "
                               f"below the budget ({steps * batch_tokens:,})")
        spans.append((first_token // seq_len, end_token // seq_len, weights))

    choices = _sources_in_order(names, spans)
    planned = np.bincount(choices, minlength=len(names))
    sources: dict[str, Any] = {}
    for s, name in enumerate(names):
        spec = mix["sources"][name]
        n, want = int(available[name]), int(planned[s])
        max_repeat = float(spec.get("max_repeat", 1.0))
        max_fraction = spec.get("max_fraction")
        cap = n * max_repeat if max_fraction is None else n * min(max_repeat, float(max_fraction))
        target = sum(w[name] * (b - a) for a, b, w in spans) * seq_len
        if want > cap + 1e-9:
            limit = (f"max_fraction {float(max_fraction):g} of them" if max_fraction is not None
                     and float(max_fraction) < max_repeat else f"max_repeat {max_repeat:g}")
            raise MixtureError(
                f"mix: insufficient tokens for source {name!r}: it has {n:,} train sequences "
                f"({n * seq_len:,} tokens); its share of the {total * seq_len:,}-token budget "
                f"needs {want:,} sequences ({want * seq_len:,} tokens, "
                f"{want / n if n else float('inf'):.2f} epochs), more than {limit} allows; "
                "lower its weight or the budget, or raise the cap")
        sources[name] = {
            "available_sequences": n, "available_tokens": n * seq_len,
            "weight": float(spec.get("weight", 0.0)), "max_repeat": max_repeat,
            "max_fraction": None if max_fraction is None else float(max_fraction),
            "target_tokens": round(target, 3), "planned_sequences": want,
            "planned_tokens": want * seq_len, "epochs": round(want / n, 6) if n else 0.0,
            "repeated_sequences": max(0, want - n), "distinct_sequences": min(want, n),
            "target_share": round(target / (total * seq_len), 9),
            "planned_share": round(want / total, 9),
        }
    plan: dict[str, Any] = {
        "format": FORMAT, "seed": int(mix["seed"]), "seq_len": seq_len,
        "global_batch_tokens": batch_tokens, "global_batch_sequences": per_batch,
        "steps": steps, "total_sequences": total, "total_tokens": total * seq_len,
        "interleave": "largest-deficit", "source_names": names, "sources": sources,
        "stages": [{"from_sequence": a, "to_sequence": b, "from_tokens": a * seq_len,
                    "weights": w, "sequences": {n: int(np.count_nonzero(
                        choices[a:b] == s)) for s, n in enumerate(names)}}
                   for a, b, w in spans],
        "shard_index_sha256": shard_index_sha256,
    }
    order = GlobalOrder(plan, choices)
    plan["order_sha256"] = order.prefix_sha256(total)
    plan["plan_id"] = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
    return plan


class GlobalOrder:
    """Which source and which of its train sequences each position of the run reads."""

    def __init__(self, plan: dict[str, Any], source: np.ndarray | None = None) -> None:
        names, seed = plan["source_names"], int(plan["seed"])
        self.names = names
        if source is None:
            source = _sources_in_order(names, [(st["from_sequence"], st["to_sequence"],
                                                st["weights"]) for st in plan["stages"]])
        self.source = source
        self.row = np.zeros(len(self.source), np.int64)
        for s, name in enumerate(names):
            at = np.flatnonzero(self.source == s)
            n = int(plan["sources"][name]["available_sequences"])
            if not len(at):
                continue
            epochs = (len(at) - 1) // n + 1
            rows = np.concatenate([permutation(seed, name, e, n) for e in range(epochs)])
            self.row[at] = rows[: len(at)]

    def __len__(self) -> int:
        return len(self.source)

    def counts(self, end: int) -> np.ndarray:
        """Sequences per source among the first `end` positions."""
        return np.bincount(self.source[:end], minlength=len(self.names))

    def prefix_sha256(self, end: int) -> str:
        """The order's first `end` positions, hashed: what a run that far has read."""
        h = hashlib.sha256()
        h.update(self.source[:end].astype("<u2").tobytes())
        h.update(self.row[:end].astype("<i8").tobytes())
        return h.hexdigest()


def rank_rows(plan: dict[str, Any], step: int, rank: int, world: int) -> np.ndarray:
    """Positions of global batch `step` that rank `rank` of `world` reads (its slice)."""
    per_batch = int(plan["global_batch_sequences"])
    if per_batch % world:
        raise MixtureError(f"a global batch of {per_batch} sequences does not split over "
                           f"{world} ranks")
    share = per_batch // world
    first = step * per_batch + rank * share
    return np.arange(first, first + share)


def check_resume(plan: dict[str, Any], order: GlobalOrder, state: dict[str, Any]) -> None:
    """Refuse to resume a checkpoint written under another plan, unless this plan starts a new
    stage exactly where the checkpoint stopped and agrees on everything read before it."""
    old = state.get("mixture")
    if not old or old["plan_id"] == plan["plan_id"]:
        return
    position = int(state["tokens"]) // int(plan["seq_len"])
    starts = {s["from_sequence"] for s in plan["stages"][1:]}
    if position in starts and order.prefix_sha256(position) == old["prefix_sha256"]:
        return
    raise MixtureError(
        f"the mixture changed since this checkpoint ({state['tokens']:,} tokens read under plan "
        f"{old['plan_id'][:12]}, now {plan['plan_id'][:12]}): to change it there, keep the "
        f"earlier [mix] settings and add a [[mix.stages]] with from_tokens = {state['tokens']}")
