"""Models built from transformers configs: a Llama-style decoder (causal LM) or a BERT-style
encoder (masked LM), sized by the recipe, with SDPA attention.

Contract: `build(cfg, vocab_size, seq_len) -> PreTrainedModel` for pretraining;
`for_sequence_classification(path, num_labels)` / `for_token_classification(path, num_labels)`
load a pretrained checkpoint folder (config.json + model.safetensors) with a fresh head.
`num_params(model)` excludes the embedding table (the N in 6N FLOPs per token).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForMaskedLM,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

PAD_ID, BOS_ID, EOS_ID = 3, 1, 2  # tokenizer/spm.py's layout


def build(cfg: Any, vocab_size: int, seq_len: int) -> PreTrainedModel:
    common = {"vocab_size": vocab_size, "hidden_size": cfg.hidden_size,
              "num_hidden_layers": cfg.layers, "num_attention_heads": cfg.heads,
              "intermediate_size": cfg.intermediate_size, "pad_token_id": PAD_ID}
    if cfg.objective == "causal":
        config = LlamaConfig(**common, max_position_embeddings=seq_len, bos_token_id=BOS_ID,
                             eos_token_id=EOS_ID, tie_word_embeddings=True,
                             attention_dropout=0.0, rms_norm_eps=1e-5)
        config._attn_implementation = "sdpa"
        return LlamaForCausalLM(config)
    config = BertConfig(**common, max_position_embeddings=max(seq_len, 512),
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    config._attn_implementation = "sdpa"
    return BertForMaskedLM(config)


def for_sequence_classification(path: str, num_labels: int) -> PreTrainedModel:
    return AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=num_labels, attn_implementation="sdpa")


def for_token_classification(path: str, num_labels: int) -> PreTrainedModel:
    return AutoModelForTokenClassification.from_pretrained(
        path, num_labels=num_labels, attn_implementation="sdpa")


def num_params(model: torch.nn.Module, exclude_embeddings: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        total -= model.get_input_embeddings().weight.numel()
    return total
