"""Bits per byte of a causal LM: on the build's validation sequences and on the neutral held-out
set. Bytes, not tokens, are the unit, so models with different tokenizers (or trained on
different data) compare on the same text.

Contract:
- `token_bytes(sp) -> int64[vocab]`: the UTF-8 bytes each piece stands for ("▁" is a space,
  byte pieces one byte, control pieces none).
- `validation_bpb(model, shards, piece_bytes, max_tokens, batch_size, dev)`: whole validation
  sequences up to `max_tokens`; every token after a sequence's first is predicted, and its bytes
  come from `token_bytes` (EOS predictions cost bits and carry no bytes, as in the corpus).
- `held_out_bpb(model, sp, texts, seq_len, batch_size, dev)`: each document encoded after an
  EOS (the corpus's document separator) and followed by one; windows of `seq_len` that overlap
  by one token, so every token is predicted exactly once. The denominator is the document's
  own UTF-8 length. Returns the total and, per document, bits and bytes, from which
  `bootstrap_bpb` makes a 95% interval over documents (and `flows/compare.py` a paired one).
Imports torch, numpy and sentencepiece only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from training.model import EOS_ID, PAD_ID

LN2 = math.log(2)


def token_bytes(sp) -> np.ndarray:
    out = np.zeros(sp.get_piece_size(), dtype=np.int64)
    for i in range(len(out)):
        if sp.is_control(i) or sp.is_unknown(i):
            continue
        out[i] = 1 if sp.is_byte(i) else len(sp.id_to_piece(i).replace("\u2581", " ").encode())
    return out


@torch.no_grad()
def _nll_sums(model: torch.nn.Module, windows: list[np.ndarray], owners: np.ndarray,
              n_owners: int, batch_size: int, dev: torch.device,
              piece_bytes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) of every token after each window's first, per owner; and, with
    `piece_bytes`, the bytes of those tokens per owner."""
    nll = np.zeros(n_owners)
    nbytes = np.zeros(n_owners, dtype=np.int64)
    model.eval()
    for start in range(0, len(windows), batch_size):
        chunk = windows[start: start + batch_size]
        width = max(len(w) for w in chunk)
        ids = torch.full((len(chunk), width), PAD_ID, dtype=torch.long)
        for row, w in enumerate(chunk):
            ids[row, : len(w)] = torch.from_numpy(w.astype(np.int64))
        ids = ids.to(dev)
        valid = ids != PAD_ID
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                            enabled=dev.type == "cuda"):
            logits = model(input_ids=ids, attention_mask=valid).logits
        targets = ids[:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1),
            reduction="none").reshape(targets.shape)
        losses = (losses * valid[:, 1:]).sum(1).double().cpu().numpy()
        np.add.at(nll, owners[start: start + len(chunk)], losses)
        if piece_bytes is not None:
            b = piece_bytes[targets.cpu().numpy()] * valid[:, 1:].cpu().numpy()
            np.add.at(nbytes, owners[start: start + len(chunk)], b.sum(1))
    model.train()
    return nll, nbytes


def validation_bpb(model: torch.nn.Module, shards, piece_bytes: np.ndarray, max_tokens: int,
                   batch_size: int, dev: torch.device) -> dict[str, Any]:
    n = max(1, min(len(shards), max_tokens // shards.seq_len))
    windows = [shards.row(i) for i in range(n)]
    nll, nbytes = _nll_sums(model, windows, np.arange(n), n, batch_size, dev, piece_bytes)
    tokens = n * (shards.seq_len - 1)
    return {"sequences": n, "tokens": tokens, "bytes": int(nbytes.sum()),
            "loss": round(float(nll.sum()) / tokens, 6),
            "bits_per_byte": round(float(nll.sum()) / LN2 / max(1, int(nbytes.sum())), 5)}


def held_out_bpb(model: torch.nn.Module, sp, texts: list[str], seq_len: int, batch_size: int,
                 dev: torch.device) -> dict[str, Any]:
    windows, owners = [], []
    for d, text in enumerate(texts):
        ids = np.asarray([EOS_ID, *sp.encode(text), EOS_ID], dtype=np.int64)
        for first in range(0, len(ids) - 1, seq_len - 1):
            windows.append(ids[first: first + seq_len])
            owners.append(d)
    nll, _ = _nll_sums(model, windows, np.asarray(owners, dtype=np.int64), len(texts),
                       batch_size, dev)
    bits = nll / LN2
    nbytes = np.asarray([len(t.encode("utf-8")) for t in texts], dtype=np.int64)
    return {"documents": len(texts), "bytes": int(nbytes.sum()),
            "bits_per_byte": round(float(bits.sum() / nbytes.sum()), 5),
            "bits_per_byte_ci95": bootstrap_bpb(bits, nbytes),
            "document_bits": [round(float(b), 3) for b in bits],
            "document_bytes": nbytes.tolist()}


def bootstrap_bpb(bits: np.ndarray, nbytes: np.ndarray, seed: int = 0,
                  resamples: int = 1000) -> list[float]:
    """95% percentile interval of total bits / total bytes over documents resampled with
    replacement; with `bits` the per-document difference of two models' bits, the paired
    interval of their difference in bits per byte."""
    bits, nbytes = np.asarray(bits, dtype=float), np.asarray(nbytes, dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(bits), size=(resamples, len(bits)))
    ratios = bits[draws].sum(1) / nbytes[draws].sum(1)
    return [round(float(np.percentile(ratios, q)), 5) for q in (2.5, 97.5)]


def evaluate(cfg, model_dir, shard_dir, tokenizer_model, device: str = "cpu") -> dict[str, Any]:
    """The evaluation stage's metrics for a pretrained folder (`cfg`: EvaluationConfig)."""
    import sentencepiece as spm
    from transformers import AutoConfig, AutoModelForCausalLM

    from training.data import PackedShards
    from training.heldout import read_held_out

    if AutoConfig.from_pretrained(str(model_dir)).model_type == "bert":
        return {"skipped": "bits per byte needs a causal LM; this run trained a masked LM"}
    dev = torch.device(device)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), attn_implementation="sdpa")
    model = model.to(dev)
    sp = spm.SentencePieceProcessor(model_file=str(tokenizer_model))
    val = PackedShards(shard_dir, "validation")
    out: dict[str, Any] = {"validation": validation_bpb(
        model, val, token_bytes(sp), cfg.validation_tokens, cfg.batch_size, dev)}
    if cfg.held_out:
        texts = read_held_out(cfg.held_out, cfg.held_out_documents)
        out["held_out"] = {"files": list(cfg.held_out),
                           **held_out_bpb(model, sp, texts, val.seq_len, cfg.batch_size, dev)}
    return out
