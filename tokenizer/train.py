"""Tokenizer stage: SentencePiece trained on the deduplicated training text.

Contract: `run(cfg: TokenizerConfig, {"dedup": folder}, out, options) -> counters`. Reads the
dedup stage's documents in their stored order, keeps those whose split is in `cfg.splits`, feeds
their non-empty lines to SentencePiece (which samples `input_sentence_size` of them with the
recipe's seed) and writes:
- `out/tokenizer.model` (SentencePiece) and `out/hf/` (loads with
  `transformers.AutoTokenizer.from_pretrained`, bos/eos/pad/unk set);
- `out/stats.json`: per source, on up to `stats_docs_per_source` documents of every split, bytes
  per token, unknown-token and byte-fallback rates, and the share of the vocabulary used.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipelines.io import read_rows
from pipelines.manifest import RunOptions
from pipelines.recipe import TokenizerConfig
from tokenizer import spm

NAME = "tokenizer"
VERSION = 2  # 2: transformers export, per-source statistics


def source_stats(model_path: str, samples: dict[str, list[str]]) -> dict[str, dict]:
    sp = spm.load(model_path)
    vocab_size = sp.get_piece_size()
    byte_piece = np.array([sp.is_byte(i) for i in range(vocab_size)])
    used_all = np.zeros(vocab_size, dtype=bool)
    stats = {}
    for source, texts in sorted(samples.items()):
        ids = np.concatenate([np.asarray(x, dtype=np.int64) for x in sp.encode(texts)] or
                             [np.zeros(0, dtype=np.int64)])
        n_bytes = sum(len(t.encode("utf-8")) for t in texts)
        used = np.zeros(vocab_size, dtype=bool)
        used[ids] = True
        used_all |= used
        stats[source] = {
            "docs": len(texts), "bytes": n_bytes, "tokens": int(len(ids)),
            "bytes_per_token": round(n_bytes / max(len(ids), 1), 4),
            "unk_rate": round(float(np.mean(ids == spm.UNK_ID)) if len(ids) else 0.0, 6),
            "byte_fallback_rate": round(float(np.mean(byte_piece[ids])) if len(ids) else 0.0, 6),
            "vocab_used": round(float(used.mean()), 4),
        }
    stats["all"] = {"vocab_size": vocab_size, "vocab_used": round(float(used_all.mean()), 4)}
    return stats


def run(cfg: TokenizerConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    counters = {"in": 0, "out": 0, "dropped:not_training_split": 0}
    texts: list[str] = []
    samples: dict[str, list[str]] = defaultdict(list)
    for row in read_rows(str(inputs["dedup"]), columns=["id", "source", "split", "text"]):
        counters["in"] += 1
        if len(samples[row["source"]]) < cfg.stats_docs_per_source:
            samples[row["source"]].append(row["text"])
        if row["split"] in cfg.splits:
            counters["out"] += 1
            texts.append(row["text"])
        else:
            counters["dropped:not_training_split"] += 1
    if not texts:
        raise ValueError(f"tokenizer: no documents in splits {cfg.splits} to train on")
    sentences = [line for text in texts for line in text.split("\n") if line.strip()]
    out = Path(out)
    model_path = out / "tokenizer.model"
    model_path.write_bytes(spm.train_model(sentences, cfg))
    spm.export_transformers(str(model_path), str(out / "hf"), cfg.model_type,
                            cfg.user_defined_symbols, cfg.special_tokens)
    stats = {"model_type": cfg.model_type, "training_sentences": len(sentences),
             "sources": source_stats(str(model_path), samples)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True), "utf-8")
    counters["sentences"] = len(sentences)
    return counters
