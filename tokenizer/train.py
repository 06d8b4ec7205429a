"""Tokenizer stage: SentencePiece trained on the deduplicated training text.

Contract: `run(cfg: TokenizerConfig, {"dedup": folder}, out, options) -> counters`. Reads the
dedup stage's documents in their stored order, keeps those whose split is in `cfg.splits`, feeds
their non-empty lines to SentencePiece and writes `out/tokenizer.model` and `out/stats.json`
(vocabulary size, bytes per token and unknown rate on the training text), and `out/hf/`, which
`transformers.AutoTokenizer.from_pretrained` loads with bos/eos/pad/unk set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pipelines.io import read_rows
from pipelines.manifest import RunOptions
from pipelines.recipe import TokenizerConfig
from tokenizer import spm

NAME = "tokenizer"
VERSION = 2  # 2: transformers export


def run(cfg: TokenizerConfig, inputs: dict[str, os.PathLike], out: os.PathLike,
        options: RunOptions) -> dict[str, int]:
    counters = {"in": 0, "out": 0, "dropped:not_training_split": 0}
    texts: list[str] = []
    for row in read_rows(str(inputs["dedup"]), columns=["id", "split", "text"]):
        counters["in"] += 1
        if row["split"] in cfg.splits:
            counters["out"] += 1
            texts.append(row["text"])
        else:
            counters["dropped:not_training_split"] += 1
    if not texts:
        raise ValueError(f"tokenizer: no documents in splits {cfg.splits} to train on")
    sentences = [line for text in texts for line in text.split("\n") if line.strip()]
    model = spm.train_model(sentences, cfg)
    out = Path(out)
    (out / "tokenizer.model").write_bytes(model)
    spm.export_transformers(str(out / "tokenizer.model"), str(out / "hf"))

    sp = spm.load(str(out / "tokenizer.model"))
    sample = texts[:: max(1, len(texts) // 2000)]
    ids = sp.encode(sample)
    n_tokens = sum(len(x) for x in ids)
    n_bytes = sum(len(t.encode("utf-8")) for t in sample)
    unknown = sum(x.count(spm.UNK_ID) for x in ids)
    stats = {"vocab_size": sp.get_piece_size(), "sentences": len(sentences),
             "sample_docs": len(sample), "bytes_per_token": round(n_bytes / max(n_tokens, 1), 4),
             "unk_rate": round(unknown / max(n_tokens, 1), 6)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True), "utf-8")
    counters["sentences"] = len(sentences)
    return counters
