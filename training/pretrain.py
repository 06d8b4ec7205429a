"""Pretraining on Sieve's shards: read top to bottom (nanoGPT style).

Contract: `pretrain(cfg, shard_dir, out_dir, device) -> metrics`. Trains a Llama-style causal LM
or a BERT-style masked LM from scratch on the memory-mapped Arrow shards, checkpoints as
safetensors (model, optimizer, and a JSON state with the data order and the loss history),
resumes from the newest checkpoint in `out_dir` and reproduces the uninterrupted loss sequence,
and finally saves a `transformers` folder (`out_dir/final`) that fine-tuning loads.
Under `torchrun` it runs DDP (NCCL on CUDA, gloo on CPU), each rank on its own batches.
With a mixture plan (`mixture_dir`, the mix stage's output, not natural):
- the data is the plan's one global order (`training.mixture.GlobalOrder`), the same on any
  number of ranks: global batch `step` is plan positions `[step * B, (step + 1) * B)`, rank r
  reads its r-th slice in micro-batches of `batch_size` (so `grad_accum` follows the world
  size) and the run takes the plan's steps;
- a checkpoint records the tokens read and the plan; resume continues at that token on any
  number of ranks, and a changed plan resumes only where a new stage of it starts;
- sequences read are counted per source (`metrics["mixture"]["read_sequences"]`), and with
  `read_log` each rank writes `reads-rank<r>.jsonl`: per step the shard file and row of every
  sequence.
Validation loss is logged on the whole validation split and per source, and on the mix stage's
neutral set (`mixture_dir/neutral`) when the recipe names a held-out set.
Imports only torch, transformers, numpy, pyarrow and safetensors.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from training import model as models
from training.config import PretrainConfig
from training.data import Batches, PackedShards, sources
from training.mixture import GlobalOrder, MixtureError, check_resume, rank_rows

# ---- schedule and masking ----------------------------------------------------------------

def lr_at(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def mask_tokens(ids: torch.Tensor, mask_id: int, vocab_size: int, prob: float,
                generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's rule: choose `prob` of the tokens; of those 80% -> <mask>, 10% random, 10% kept."""
    labels = ids.clone()
    chosen = torch.rand(ids.shape, generator=generator) < prob
    labels[~chosen] = -100
    inputs = ids.clone()
    draw = torch.rand(ids.shape, generator=generator)
    inputs[chosen & (draw < 0.8)] = mask_id
    randomize = chosen & (draw >= 0.8) & (draw < 0.9)
    inputs[randomize] = torch.randint(4, vocab_size, ids.shape, generator=generator)[randomize]
    return inputs, labels


def make_batch(rows: np.ndarray, cfg: PretrainConfig, step: int, micro: int, mask_id: int | None,
               vocab_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.from_numpy(rows)
    if cfg.objective == "causal":
        return ids, ids  # transformers shifts the labels inside the model
    generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + micro)
    return mask_tokens(ids, mask_id, vocab_size, cfg.mask_prob, generator)


# ---- checkpoints -------------------------------------------------------------------------

def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any]) -> None:
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))
    opt_state = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in opt_state["state"].items()
               for k, v in s.items()}
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    state = {**state, "param_groups": opt_state["param_groups"]}
    (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
    if folder.exists():  # a rerun of the same step: the new one replaces it
        shutil.rmtree(folder)
    os.replace(tmp, folder)  # the rename is the commit: a .tmp folder is never resumed from


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    ) -> dict[str, Any]:
    load_model(model, str(folder / "model.safetensors"))
    state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "optimizer.safetensors"))
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        opt_state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    return state


def load_plan(mixture_dir: str | Path | None) -> dict[str, Any] | None:
    """The mix stage's plan, or None for natural proportions (no plan, or a natural one)."""
    if mixture_dir is None:
        return None
    plan = json.loads((Path(mixture_dir) / "mixture.json").read_text(encoding="utf-8"))
    return None if plan.get("natural") else plan


def validation_sets(shard_dir: str | Path, mixture_dir: str | Path | None
                    ) -> dict[str, PackedShards]:
    """The whole validation split, each source's, and the neutral held-out set if built."""
    sets = {"all": PackedShards(shard_dir, "validation")}
    for name in sources(shard_dir, "validation"):
        sets[f"source:{name}"] = PackedShards(shard_dir, "validation", name)
    if mixture_dir is not None and (Path(mixture_dir) / "neutral" / "index.json").exists():
        sets["neutral"] = PackedShards(Path(mixture_dir) / "neutral", "validation")
    return sets


class MixedFeed:
    """The rows of one rank's micro-batches under a mixture plan."""

    def __init__(self, plan: dict[str, Any], shard_dir: str | Path, cfg: PretrainConfig,
                 rank: int, world: int, locate: bool = False) -> None:
        self.plan, self.rank, self.world, self.locate = plan, rank, world, locate
        self.names = plan["source_names"]
        per_rank, rest = divmod(int(plan["global_batch_sequences"]), world)
        if rest or per_rank % cfg.batch_size:
            raise MixtureError(
                f"a global batch of {plan['global_batch_sequences']} sequences does not split "
                f"into micro-batches of {cfg.batch_size} on {world} ranks: choose [train] "
                "batch_size to divide global_batch_tokens / seq_len / ranks")
        self.grad_accum = per_rank // cfg.batch_size
        self.batch_size = cfg.batch_size
        self.order = GlobalOrder(plan)
        self.feeds = {n: PackedShards(shard_dir, "train", n) for n in self.names
                      if plan["sources"][n]["planned_sequences"]}
        self.read = np.zeros(len(self.names), np.int64)

    def micro_batches(self, step: int) -> list[tuple[np.ndarray, list[list]]]:
        """(rows, [[source, shard file, row in file], ...]) per micro-batch of `step` (the
        second list only when `locate`, for the read log)."""
        positions = rank_rows(self.plan, step, self.rank, self.world)
        out = []
        for a in range(self.grad_accum):
            rows, where = [], []
            for p in positions[a * self.batch_size: (a + 1) * self.batch_size]:
                s, r = int(self.order.source[p]), int(self.order.row[p])
                feed = self.feeds[self.names[s]]
                rows.append(feed.row(r))
                if self.locate:
                    where.append([self.names[s], *feed.locate(r)])
                self.read[s] += 1
            out.append((np.stack(rows).astype(np.int64), where))
        return out


def latest_checkpoint(out_dir: Path) -> Path | None:
    done = sorted(p for p in out_dir.glob("step-*") if (p / "state.json").exists()
                  and not p.name.endswith(".tmp"))
    return done[-1] if done else None


# ---- the loop ----------------------------------------------------------------------------

def pretrain(cfg: PretrainConfig, shard_dir: str | Path, out_dir: str | Path,
             device: str = "cpu", stop_after: int | None = None,
             mask_id: int | None = None, time_budget_s: float | None = None,
             mixture_dir: str | Path | None = None, read_log: bool = False) -> dict[str, Any]:
    """Train, or resume, up to `cfg.max_steps` or the plan's steps (or `stop_after` steps, to
    test resumption; or until `time_budget_s` seconds have passed, checkpointing the step where
    it stops)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    if ddp:
        torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo")
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
        if device == "cuda":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dev = torch.device(f"cuda:{torch.cuda.current_device()}" if device == "cuda" else "cpu")
    torch.manual_seed(cfg.seed)

    plan = load_plan(mixture_dir)
    train = PackedShards(shard_dir, "train")
    val_sets = validation_sets(shard_dir, mixture_dir)
    feed = None
    if plan is not None:
        if int(plan["seq_len"]) != train.seq_len:
            raise MixtureError(f"{mixture_dir}: the plan's seq_len {plan['seq_len']} is not the "
                               f"shards' {train.seq_len}")
        feed = MixedFeed(plan, shard_dir, cfg, rank, world, locate=read_log)
        cfg = replace(cfg, grad_accum=feed.grad_accum, max_steps=int(plan["steps"]))
    if cfg.objective == "masked" and mask_id is None:
        raise ValueError("masked LM needs a <mask> token: add special_tokens = [\"<mask>\"] "
                         "to the recipe's [tokenizer] section")
    model = models.build(cfg, train.vocab_size, train.seq_len).to(dev)
    use_fused = dev.type == "cuda"
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay},
         {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, cfg.beta2), fused=use_fused)
    batches = Batches(len(train), cfg.batch_size, cfg.seed, rank, world)
    history: dict[str, Any] = {"step": [], "loss": [], "lr": [], "val_step": [], "val_loss": [],
                               "seconds": [], "data_seconds": [],
                               "val_loss_by_set": {name: [] for name in val_sets}}
    start_step = 0
    resumed_from = latest_checkpoint(out_dir)
    if resumed_from is not None:
        state = load_checkpoint(resumed_from, model, optimizer)
        batches.load_state_dict(state["batches"])
        history, start_step = state["history"], state["step"]
        if feed is not None and state.get("mixture"):
            check_resume(plan, feed.order, state)
            batch_tokens = int(plan["global_batch_tokens"])
            start_step = int(state["tokens"]) // batch_tokens
            if rank == 0:  # counted once: the other ranks add only what they read from here
                feed.read[:] = state["mixture"]["read_sequences"]
        elif (feed is None) != (not state.get("mixture")):
            was = "with" if state.get("mixture") else "without"
            now = "has one" if feed is not None else "has none"
            raise MixtureError(f"{resumed_from}: written {was} a mixture plan and this run "
                               f"{now}: start a new run (another out folder)")
    log = (out_dir / f"reads-rank{rank}.jsonl").open("a", encoding="utf-8") if (
        read_log and feed is not None) else None

    step_model: torch.nn.Module = model
    if dev.type == "cuda" and cfg.compile:
        step_model = torch.compile(model)
    if ddp:
        step_model = torch.nn.parallel.DistributedDataParallel(
            step_model, device_ids=[dev.index] if dev.type == "cuda" else None)
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                              enabled=dev.type == "cuda")
    iterator = iter(batches)
    data_seconds = step_seconds = 0.0
    tokens_seen = 0
    end_step = cfg.max_steps if stop_after is None else min(cfg.max_steps, start_step + stop_after)

    began = time.perf_counter()
    for step in range(start_step, end_step):
        started, data_before = time.perf_counter(), data_seconds
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        total = 0.0
        t0 = time.perf_counter()
        micro_batches = feed.micro_batches(step) if feed is not None else None
        data_seconds += time.perf_counter() - t0
        if log is not None:
            log.write(json.dumps({"step": step, "rank": rank, "world": world, "reads": [
                w for _, where in micro_batches for w in where]}) + "\n")
            log.flush()
        for micro in range(cfg.grad_accum):
            t0 = time.perf_counter()
            rows = (micro_batches[micro][0] if micro_batches is not None
                    else train.batch(next(iterator)))
            # The plan fixes the global batch: each rank's micro-batch loss is averaged over
            # every micro-batch of every rank (DDP averages over ranks).
            inputs, labels = make_batch(rows, cfg, step, micro, mask_id, train.vocab_size)
            inputs = inputs.to(dev, non_blocking=True)
            labels = labels.to(dev, non_blocking=True)
            data_seconds += time.perf_counter() - t0
            sync = not ddp or micro == cfg.grad_accum - 1
            context = step_model.no_sync() if not sync else contextlib.nullcontext()
            with context, autocast:
                loss = step_model(input_ids=inputs, labels=labels).loss / cfg.grad_accum
            loss.backward()
            total += loss.item()
            tokens_seen += inputs.numel() * world
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if dev.type == "cuda":
            torch.cuda.synchronize()  # honest step times: wait for the queued kernels
        step_seconds += time.perf_counter() - started
        history["seconds"].append(round(time.perf_counter() - started, 6))
        history["data_seconds"].append(round(data_seconds - data_before, 6))
        history["step"].append(step)
        history["loss"].append(round(total, 6))
        history["lr"].append(lr_at(step, cfg))

        last = step == cfg.max_steps - 1
        if (step + 1) % cfg.eval_every == 0 or last:
            history["val_step"].append(step)
            for name, subset in val_sets.items():
                loss_ = round(evaluate_loss(model, subset, cfg, dev, mask_id), 6)
                history["val_loss_by_set"].setdefault(name, []).append(loss_)
            history["val_loss"].append(history["val_loss_by_set"]["all"][-1])
        out_of_time = (time_budget_s is not None and not last
                       and time.perf_counter() - began > time_budget_s)
        if ddp and time_budget_s is not None:  # every rank stops at the same step
            flag = torch.tensor([float(out_of_time)], device=dev)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            out_of_time = bool(flag.item())
        checkpoint = ((step + 1) % cfg.checkpoint_every == 0 or last or step == end_step - 1
                      or out_of_time)
        mixture_state = None
        if checkpoint and feed is not None:
            mixture_state = {"plan_id": plan["plan_id"],
                             "prefix_sha256": feed.order.prefix_sha256(
                                 (step + 1) * int(plan["global_batch_sequences"])),
                             "read_sequences": all_ranks_sum(feed.read, ddp).tolist()}
        if rank == 0 and checkpoint:
            state = {"step": step + 1, "batches": batches.state_dict(), "history": history,
                     "config": asdict(cfg)}
            if mixture_state is not None:
                state["tokens"] = (step + 1) * int(plan["global_batch_tokens"])
                state["mixture"] = mixture_state
            save_checkpoint(out_dir / f"step-{step + 1:06d}", model, optimizer, state)
        if out_of_time:
            end_step = step + 1
            break

    if rank == 0 and end_step == cfg.max_steps:
        model.save_pretrained(str(out_dir / "final"), safe_serialization=True)
    read = None
    if feed is not None:
        total_read = all_ranks_sum(feed.read, ddp)
        read = {"read_sequences": dict(zip(feed.names, total_read.tolist(), strict=True)),
                "planned_sequences_to_here": dict(zip(feed.names, feed.order.counts(
                    end_step * int(plan["global_batch_sequences"])).tolist(), strict=True)),
                "tokens": end_step * int(plan["global_batch_tokens"]),
                "plan_id": plan["plan_id"]}
    if log is not None:
        log.close()
    if ddp:
        # DDP's reducer goes while its process group lives: destroyed after it, with the
        # function's locals, it now and then hung a rank at exit (gloo, 1 run in 3 here).
        step_model = context = None
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return {
        "max_steps": cfg.max_steps, "grad_accum": cfg.grad_accum, "mixture": read,
        "final_val_loss_by_set": {k: v[-1] for k, v in history.get(
            "val_loss_by_set", {}).items() if v},
        "objective": cfg.objective, "params_non_embedding": models.num_params(model),
        "steps": end_step, "resumed_from_step": start_step, "history": history,
        "final_loss": history["loss"][-1] if history["loss"] else None,
        "final_val_loss": history["val_loss"][-1] if history["val_loss"] else None,
        "tokens_per_s": round(tokens_seen / step_seconds) if step_seconds else None,
        "data_wait_share": round(data_seconds / step_seconds, 4) if step_seconds else None,
        "device": str(dev), "world_size": world,
    }


def all_ranks_sum(counts: np.ndarray, ddp: bool) -> np.ndarray:
    if not ddp:
        return counts.copy()
    tensor = torch.from_numpy(counts.copy())
    torch.distributed.all_reduce(tensor)  # gloo and NCCL both sum int64 on CPU / GPU
    return tensor.numpy()


@torch.no_grad()
def evaluate_loss(model: torch.nn.Module, val: PackedShards, cfg: PretrainConfig,
                  dev: torch.device, mask_id: int | None) -> float:
    model.eval()
    batch_size = min(cfg.batch_size, len(val))
    n_batches = min(cfg.eval_batches, len(val) // batch_size)
    # Sequences spread evenly over the split: its files are in source order, so the first ones
    # would score one source (the demo's first 32 validation sequences were all CoNLL's).
    picked = np.linspace(0, len(val) - 1, n_batches * batch_size).round().astype(np.int64)
    losses = []
    for k in range(n_batches):
        rows = val.batch(picked[k * batch_size: (k + 1) * batch_size])
        inputs, labels = make_batch(rows, cfg, step=-1 - k, micro=0, mask_id=mask_id,
                                    vocab_size=val.vocab_size)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                            enabled=dev.type == "cuda"):
            losses.append(model(input_ids=inputs.to(dev), labels=labels.to(dev)).loss.item())
    model.train()
    return float(np.mean(losses)) if losses else float("nan")


def main(argv: list[str] | None = None) -> None:
    """`torchrun --nproc_per_node N -m training.pretrain --shards DIR --out DIR [...]`."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--shards", required=True, help="a shard stage output (index.json)")
    parser.add_argument("--out", required=True, help="checkpoint folder (resumed if present)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--config", default="{}", help="PretrainConfig fields as JSON")
    parser.add_argument("--mask-id", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds: checkpoint and stop then; rerun the command to resume")
    parser.add_argument("--mixture", default=None,
                        help="a mix stage output (mixture.json): train on its plan")
    parser.add_argument("--stop-after", type=int, default=None, help="steps, then checkpoint")
    parser.add_argument("--read-log", action="store_true",
                        help="each rank writes reads-rank<r>.jsonl: what every step read")
    args = parser.parse_args(argv)
    metrics = pretrain(PretrainConfig(**json.loads(args.config)), args.shards, args.out,
                       device=args.device, mask_id=args.mask_id, time_budget_s=args.time_budget,
                       mixture_dir=args.mixture, stop_after=args.stop_after,
                       read_log=args.read_log)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in metrics.items() if k != "history"}))


if __name__ == "__main__":
    main()
