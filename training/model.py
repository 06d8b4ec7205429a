"""Models built from transformers configs: a Llama-style decoder (causal LM) or a BERT-style
encoder (masked LM), sized by the recipe, with SDPA attention.

Contract: `build(cfg, vocab_size, seq_len) -> PreTrainedModel` for pretraining;
`for_sequence_classification(path, num_labels)` (mean-pooled, `MeanPoolClassifier`) /
`for_token_classification(path, num_labels)` load a pretrained checkpoint folder (config.json +
model.safetensors) with a fresh head.
`num_params(model)` excludes the embedding table (the N in 6N FLOPs per token).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import torch
from transformers import (
    AutoModel,
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


class MeanPoolClassifier(torch.nn.Module):
    """The pretrained body, the mean of its last hidden states over the real (non-pad) tokens,
    and a linear head. transformers' LlamaForSequenceClassification reads the last token
    only; with a small decoder that made the demo's IMDb accuracy 0.50, 0.75 and 0.66 over
    three seeds (300 steps), where the mean gave 0.763, 0.744 and 0.764."""

    def __init__(self, path: str, num_labels: int) -> None:
        super().__init__()
        self.body = AutoModel.from_pretrained(path, attn_implementation="sdpa")
        self.head = torch.nn.Linear(self.body.config.hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor | None = None) -> SimpleNamespace:
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        logits = self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1))
        loss = None if labels is None else torch.nn.functional.cross_entropy(
            logits.float(), labels)
        return SimpleNamespace(loss=loss, logits=logits)

    def save_pretrained(self, folder: str, safe_serialization: bool = True) -> None:
        """The body as a transformers folder, the head beside it (head.safetensors)."""
        from safetensors.torch import save_file

        self.body.save_pretrained(folder, safe_serialization=safe_serialization)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()},
                  f"{folder}/head.safetensors")


def for_sequence_classification(path: str, num_labels: int) -> MeanPoolClassifier:
    return MeanPoolClassifier(path, num_labels)


def for_token_classification(path: str, num_labels: int) -> PreTrainedModel:
    return AutoModelForTokenClassification.from_pretrained(
        path, num_labels=num_labels, attn_implementation="sdpa")


# The model types `build` makes: a Llama decoder (causal) or a BERT encoder (masked).
CAUSAL_MODEL_TYPES = {"llama"}


def is_causal(config: Any) -> bool:
    """Whether a model (its transformers config) is `build`'s causal decoder, where each
    position sees only the positions before it."""
    return config.model_type in CAUSAL_MODEL_TYPES


def num_params(model: torch.nn.Module, exclude_embeddings: bool = True) -> int:
    total = sum(p.numel() for p in model.parameters())
    if exclude_embeddings:
        total -= model.get_input_embeddings().weight.numel()
    return total
