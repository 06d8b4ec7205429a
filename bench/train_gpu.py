"""Pretraining throughput and MFU on a GPU, through Sieve's own loader and training loop.

    python bench/train_gpu.py [--shards DIR] [--steps 60] [--batch-size 16]   # on an H100/H200
    python bench/train_gpu.py --tiny --device cpu --steps 6                    # a dry run

Model: Llama-style, 768 wide, 12 layers, 12 heads, MLP 2048, vocabulary 32,000 (~110M
parameters with embeddings), sequence length 1024, bf16 autocast, SDPA attention,
torch.compile, fused AdamW. Without --shards it writes random token shards in Sieve's format
(index.json + Arrow), so the GPU machine needs no Beam, Prefect or datasets.
Reports, over the steps after --warmup: tokens/s; MFU = tokens/s x (6N + 12 L d T) FLOPs per
token / the bf16 matmul rate measured here on this GPU (8192^3 matmuls); and the share of step
time spent waiting for data. Writes bench/results/train_gpu.json when run on CUDA.
"""

from __future__ import annotations

import os
import sys

# Import from the repository root, not bench/ (bench/tokenize.py would shadow the stdlib module).
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from training import model as models  # noqa: E402
from training.pretrain import PretrainConfig, pretrain  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def random_shards(folder: Path, rows: int, seq_len: int, vocab: int) -> Path:
    rng = np.random.default_rng(0)
    shards = []
    for split, n in (("train", rows), ("validation", max(64, rows // 50))):
        (folder / split).mkdir(parents=True)
        values = rng.integers(4, vocab, size=n * seq_len, dtype=np.uint16)
        offsets = np.arange(0, n * seq_len + 1, seq_len, dtype=np.int32)
        table = pa.table({"input_ids": pa.ListArray.from_arrays(pa.array(offsets),
                                                                pa.array(values))})
        path = folder / split / "part-00000-0000.arrow"
        with pa.ipc.new_stream(str(path), table.schema) as writer:
            writer.write_table(table)
        shards.append({"path": f"{split}/{path.name}", "split": split, "rows": n,
                       "tokens": n * seq_len, "bytes": path.stat().st_size,
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    (folder / "index.json").write_text(json.dumps({
        "seq_len": seq_len, "vocab_size": vocab, "dtype": "uint16", "shards": shards}))
    return folder


def matmul_tflops(device: str) -> float:
    if device != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    start, n = time.perf_counter(), 50
    for _ in range(n):
        a @ b
    torch.cuda.synchronize()
    return 2 * 8192**3 * n / (time.perf_counter() - start) / 1e12


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shards", help="a Sieve shard folder (default: random tokens)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10, help="steps left out (compilation)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="a small model, for a dry run")
    args = parser.parse_args()
    size = ({"hidden_size": 64, "layers": 2, "heads": 4, "intermediate_size": 128}
            if args.tiny else
            {"hidden_size": 768, "layers": 12, "heads": 12, "intermediate_size": 2048})
    seq_len, vocab = (128, 4000) if args.tiny else (1024, 32000)
    cfg = PretrainConfig(**size, batch_size=args.batch_size, max_steps=args.steps,
                         warmup_steps=min(10, args.steps), eval_every=10**9,
                         checkpoint_every=10**9, compile=not args.no_compile, lr=6e-4)
    with tempfile.TemporaryDirectory() as tmp:
        shards = Path(args.shards) if args.shards else random_shards(
            Path(tmp) / "shards", rows=args.batch_size * (args.steps + 2), seq_len=seq_len,
            vocab=vocab)
        index = json.loads((shards / "index.json").read_text())
        seq_len, vocab = index["seq_len"], index["vocab_size"]
        peak = matmul_tflops(args.device)
        metrics = pretrain(cfg, shards, Path(tmp) / "run", device=args.device)
    n_params = models.num_params(models.build(cfg, vocab, seq_len), exclude_embeddings=False)
    n_non_embedding = metrics["params_non_embedding"]
    hist = metrics["history"]
    steps = slice(args.warmup, None) if len(hist["seconds"]) > args.warmup else slice(None)
    seconds = sum(hist["seconds"][steps])
    data = sum(hist["data_seconds"][steps])
    tokens = len(hist["seconds"][steps]) * args.batch_size * seq_len
    tokens_per_s = tokens / seconds
    flops_per_token = 6 * n_params + 12 * cfg.layers * cfg.hidden_size * seq_len
    mfu = tokens_per_s * flops_per_token / (peak * 1e12) if peak == peak else float("nan")
    name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    result = {"bench": "train_gpu", "device": name, "params": n_params,
              "params_non_embedding": n_non_embedding, "seq_len": seq_len,
              "batch_size": args.batch_size, "steps_measured": len(hist["seconds"][steps]),
              "tokens_per_s": round(tokens_per_s), "flops_per_token": flops_per_token,
              "matmul_bf16_tflops": round(peak, 1), "mfu": round(mfu, 4),
              "data_wait_share": round(data / seconds, 5), "compile": cfg.compile,
              "torch": torch.__version__, "final_loss": metrics["final_loss"],
              "command": "python " + " ".join(sys.argv)}
    print(f"{'device':<22} {name}")
    for key in ("params", "tokens_per_s", "matmul_bf16_tflops", "mfu", "data_wait_share"):
        print(f"{key:<22} {result[key]:,}" if isinstance(result[key], int) else
              f"{key:<22} {result[key]}")
    if args.device == "cuda":
        out = REPO / "bench" / "results" / "train_gpu.json"
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
