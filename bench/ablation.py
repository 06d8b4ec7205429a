"""Does Sieve's curation make a better model? Raw against curated, paired, whatever the result.

    python bench/ablation.py                      # CPU configuration, about 15 minutes here
    python bench/ablation.py --seeds 2 --steps 40 # a quicker look (not the recorded result)
    python bench/ablation.py --config gpu --prepare  # build the GPU arms' shards here (CPU)
    python bench/ablation.py --config gpu --run --budget 480   # on the GPU machine

CPU: `sieve compare recipes/ablation_raw.toml recipes/ablation_curated.toml --seeds 3`: both
arms built from the same real sources (the raw one without cleaning rules and dedup, both
decontaminated), the recipes' tiny Llama (0.5M non-embedding parameters, 983,040 tokens per
run) pretrained with 3 seeds per arm, held-out bits per byte on Scrapinghub's 181 article
bodies, and IMDb and CoNLL-2003 fine-tuned per seed. Prints the comparison table and writes
`bench/results/ablation.json` (with the command, machine and wall time) and
`bench/results/ablation/comparison.{md,png}`.

GPU (`--config gpu`): the ~110M-parameter model of bench/train_gpu.py (768 wide, 12 layers,
12 heads, MLP 2048) at sequence length 1024, 1B tokens per arm and seed (30,517 steps of
32 x 1024), 3 seeds per arm. The device machine has no Beam or Prefect, so `--prepare` builds
both arms here with `[shard] seq_len = 1024` and copies their shards, tokenizer models and the
held-out file under `bench/.ablation-gpu/` (carry that folder to the device); `--run` then
pretrains each arm and seed there with `training.pretrain` (resuming from its newest
checkpoint in `bench/.ablation-gpu/runs/`, stopping with a checkpoint after `--budget`
seconds in all) and scores held-out bits per byte of every finished run. Expected time: at the
goal of 520k tokens/s (50% of the H200's measured bf16 rate, bench/train_gpu.py) 1B tokens
take 32 minutes, so the 6 runs take about 3.2 hours of device time: about 13 sessions of 15
minutes, each resuming where the last stopped, which needs `bench/.ablation-gpu/runs/` (one
1.3 GB checkpoint per unfinished run, older ones are deleted) to persist between sessions: a
GPU box with its own disk, not this project's device machine, which starts bare and carries
64 MiB. Fine-tuning is not part of the GPU configuration (the task datasets need `datasets` to
build, which the device lacks). The shared samples give each arm about 2.4M tokens, so 1B
tokens would repeat them about 420 times; `--prepare` warns, and the recipes' sources should
point at a real crawl of about a billion tokens first.
"""

from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
ARMS = {"raw": REPO / "recipes" / "ablation_raw.toml",
        "curated": REPO / "recipes" / "ablation_curated.toml"}
RESULTS = REPO / "bench" / "results"
GPU_DIR = REPO / "bench" / ".ablation-gpu"
GPU_TRAIN = {"objective": "causal", "hidden_size": 768, "layers": 12, "heads": 12,
             "intermediate_size": 2048, "batch_size": 32, "max_steps": 30_517, "lr": 6e-4,
             "warmup_steps": 500, "eval_every": 1000, "eval_batches": 8,
             "checkpoint_every": 2000, "seed": 0}  # a checkpoint (1.3 GB) about every 2 minutes


def variant(recipe: Path, folder: Path, *, steps: int | None = None,
            seq_len: int | None = None) -> Path:
    """A copy of an arm's recipe beside the original (its paths stay valid) with the given
    overrides, for the quick look and the GPU shards."""
    text = recipe.read_text(encoding="utf-8")
    if steps is not None:
        text = re.sub(r"(?m)^max_steps = \d+", f"max_steps = {steps}", text)
        text = re.sub(r"(?m)^eval_every = \d+", f"eval_every = {max(1, steps // 3)}", text)
        text = re.sub(r"(?m)^checkpoint_every = \d+", f"checkpoint_every = {max(1, steps // 3)}",
                      text)
    if seq_len is not None:
        text = re.sub(r"(?m)^seq_len = \d+", f"seq_len = {seq_len}", text)
    name = f".{folder.name}-{recipe.stem}.toml"
    path = recipe.parent / name
    path.write_text(text, encoding="utf-8")
    return path


def sieve(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "sieve"), *args], cwd=REPO,
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"sieve {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc


def run_cpu(args: argparse.Namespace) -> None:
    recipes = dict(ARMS)
    if args.steps:
        recipes = {arm: variant(path, Path("quick"), steps=args.steps)
                   for arm, path in recipes.items()}
    out = RESULTS / "ablation" if not args.steps else REPO / "bench" / ".ablation" / "quick"
    command = ["compare", str(recipes["raw"]), str(recipes["curated"]), "--seeds",
               str(args.seeds), "--root", str(args.root), "--out", str(out), "--json"]
    started = time.time()
    try:
        result = json.loads(sieve(*command).stdout.strip().splitlines()[-1])
    finally:
        for arm, path in recipes.items():
            if path != ARMS[arm]:
                path.unlink(missing_ok=True)
    wall = time.time() - started
    print(f"\n{result['A']} (A) vs {result['B']} (B), {result['seeds']} seeds, "
          f"{result['tokens_per_run']:,} tokens per run, {wall:.0f} s\n")
    print(f"{'metric':<34} {'A mean':>9} {'B mean':>9} {'B - A':>9}  95% over seeds"
          "        95% over documents")
    for name, row in result["metrics"].items():
        d = row["difference_b_minus_a"]
        ci = d["ci95"] or ["-", "-"]
        docs = d.get("documents_ci95") or ["", ""]
        print(f"{name:<34} {row['A']['mean']:>9} {row['B']['mean']:>9} {d['mean']:>9}  "
              f"{ci[0]} .. {ci[1]:<10} {docs[0]} {'..' if docs[0] != '' else ''} {docs[1]}")
    print(f"\nverdict: {result['verdict']}")
    if args.steps:
        return
    record = {"benchmark": "ablation", "config": "cpu", "command": "python bench/ablation.py "
              f"(sieve {' '.join(command[:5])} ...)", "wall_seconds": round(wall, 1),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "result": result}
    (RESULTS / "ablation.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    print(f"wrote {RESULTS / 'ablation.json'} and {out}/comparison.md")


def prepare_gpu(args: argparse.Namespace) -> None:
    """Build both arms at seq_len 1024 here and copy what the device needs."""
    GPU_DIR.mkdir(parents=True, exist_ok=True)
    plan = {"train": GPU_TRAIN, "seeds": args.seeds, "arms": {}}
    for arm, recipe in ARMS.items():
        path = variant(recipe, Path("gpu"), seq_len=1024)
        try:
            summary = json.loads(sieve("build", str(path), "--root", str(args.root), "--until",
                                       "shard", "--json", "--quiet").stdout.splitlines()[-1])
        finally:
            path.unlink(missing_ok=True)
        target = GPU_DIR / arm
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(summary["shard"]["path"], target / "shard")
        shutil.copyfile(Path(summary["tokenizer"]["path"]) / "tokenizer.model",
                        target / "tokenizer.model")
        plan["arms"][arm] = {"shard_key": summary["shard"]["key"],
                             "tokens": summary["shard"]["counters"].get("tokens")}
    from pipelines.recipe import load_recipe

    held = load_recipe(ARMS["raw"]).evaluation.held_out
    plan["held_out"] = [Path(h).name for h in held]
    for h in held:
        shutil.copyfile(h, GPU_DIR / Path(h).name)
    budget = GPU_TRAIN["max_steps"] * GPU_TRAIN["batch_size"] * 1024
    for info in plan["arms"].values():
        info["epochs"] = round(budget / max(1, info["tokens"] or 0), 1)
    (GPU_DIR / "plan.json").write_text(json.dumps(plan, indent=2), encoding="utf-8")
    print(json.dumps(plan, indent=2))
    if max(info["epochs"] for info in plan["arms"].values()) > 4:
        print(f"warning: {budget:,} tokens per run repeat these arms' shards "
              f"{max(i['epochs'] for i in plan['arms'].values())} times: point the ablation "
              "recipes at a corpus of about a billion tokens before spending GPU time on it",
              file=sys.stderr)


def run_gpu(args: argparse.Namespace) -> None:
    """On the device: every arm and seed, resumed, within `--budget` seconds in all."""
    from training.bpb import evaluate
    from training.config import EvaluationConfig

    plan = json.loads((GPU_DIR / "plan.json").read_text())
    deadline = time.time() + args.budget
    results = {}
    for seed in range(plan["seeds"]):
        for arm in plan["arms"]:
            run = GPU_DIR / "runs" / f"{arm}-seed{seed}"
            done = run / "final" / "model.safetensors"
            left = deadline - time.time()
            if not done.exists() and left > 60:
                cfg = json.dumps({**plan["train"], "seed": seed})
                subprocess.run([sys.executable, "-m", "training.pretrain", "--shards",
                                str(GPU_DIR / arm / "shard"), "--out", str(run), "--device",
                                args.device, "--config", cfg, "--time-budget", str(left - 60)],
                               cwd=REPO, check=True)
                for old in sorted(run.glob("step-*"))[:-1]:  # the newest is all a resume needs
                    shutil.rmtree(old)
            if done.exists() and not (run / "bpb.json").exists():
                cfg = EvaluationConfig(held_out=tuple(str(GPU_DIR / h) for h in plan["held_out"]))
                metrics = evaluate(cfg, run / "final", GPU_DIR / arm / "shard",
                                   GPU_DIR / arm / "tokenizer.model", device=args.device)
                (run / "bpb.json").write_text(json.dumps(metrics), encoding="utf-8")
            if (run / "bpb.json").exists():
                results[f"{arm}-seed{seed}"] = json.loads((run / "bpb.json").read_text())[
                    "held_out"]["bits_per_byte"]
    print(json.dumps({"finished_runs": results}, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, help="CPU: fewer pretraining steps (a quick look)")
    parser.add_argument("--root", default=str(REPO / "bench" / ".ablation"))
    parser.add_argument("--prepare", action="store_true", help="gpu: build the shards here")
    parser.add_argument("--run", action="store_true", help="gpu: train on the device")
    parser.add_argument("--budget", type=float, default=480.0, help="gpu --run: seconds")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    if args.config == "cpu":
        run_cpu(args)
    elif args.prepare:
        prepare_gpu(args)
    elif args.run:
        run_gpu(args)
    else:
        parser.error("--config gpu needs --prepare (here) or --run (on the device)")


if __name__ == "__main__":
    main()
