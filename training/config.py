"""The training stages' recipe sections, importable without torch.

`pipelines.recipe` validates these when a recipe loads; every data stage (and every Beam worker)
imports the recipe, and importing torch and transformers for two dataclasses cost 3.6 s and
300 MB per process.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PretrainConfig:
    """The recipe's `[train]` section. Every knob says why it is there."""

    __pydantic_config__ = {"extra": "forbid"}  # a typo in the recipe fails at load

    objective: str = "causal"  # "causal" (Llama-style decoder) or "masked" (BERT-style encoder)
    hidden_size: int = 128  # width; ~110M parameters is 768 wide, 12 layers, 12 heads
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 512  # MLP width
    batch_size: int = 8  # sequences per micro-batch (per rank)
    grad_accum: int = 1  # micro-batches per optimizer step: a larger batch in the same memory
    max_steps: int = 60  # optimizer steps
    lr: float = 3e-3  # peak learning rate after warmup
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 10  # linear warmup: Adam's moments are noisy at first
    weight_decay: float = 0.1
    beta2: float = 0.95  # shorter second-moment memory, steadier at high learning rates
    grad_clip: float = 1.0  # clip the global gradient norm against loss spikes
    eval_every: int = 20  # steps between validation losses
    eval_batches: int = 4  # validation batches per evaluation
    checkpoint_every: int = 20  # steps between checkpoints (and the last step)
    mask_prob: float = 0.15  # masked LM: share of tokens to predict (BERT's 80/10/10 rule)
    seed: int = 0  # weights and data order
    compile: bool = True  # torch.compile on CUDA (not on CPU, where it costs more than it saves)

    def __post_init__(self) -> None:
        if self.objective not in ("causal", "masked"):
            raise ValueError(f"objective must be 'causal' or 'masked', not {self.objective!r}")
        for name in ("hidden_size", "layers", "heads", "intermediate_size", "batch_size",
                     "grad_accum", "max_steps", "eval_every", "eval_batches", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not a multiple of heads")
        if not (0 < self.lr < 1 and 0 <= self.min_lr_ratio <= 1 and 0 < self.mask_prob < 1):
            raise ValueError("lr, min_lr_ratio or mask_prob out of range")




@dataclass
class FinetuneConfig:
    """The recipe's `[finetune]` section."""

    __pydantic_config__ = {"extra": "forbid"}

    # Which task datasets to fine-tune on (their source names); empty: every one the build
    # made (the recipe checks the names against its labelled sources).
    tasks: tuple[str, ...] = ()
    steps: int = 150  # optimizer steps per task
    batch_size: int = 16
    lr: float = 1e-3
    max_length: int = 256  # tokens per example (the task datasets hold up to 512)
    eval_limit: int = 0  # test examples scored (0: all)
    seed: int = 0  # the first run's seed; the test rows scored and the intervals' resamples
    # Fine-tuning runs per task (seeds seed, seed + 1, ...): the report gives their mean and
    # spread beside the interval over test items, so training noise shows as such.
    seeds: int = 3

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ValueError("seeds must be at least 1")
        if self.steps < 1 or self.batch_size < 1 or self.max_length < 8 or not 0 < self.lr < 1:
            raise ValueError("steps, batch_size, max_length or lr out of range")


@dataclass
class EvaluationConfig:
    """The recipe's `[evaluation]` section: bits per byte of the pretrained model on the build's
    validation split and on a neutral held-out set (training/heldout.py) that the dedup stage
    keeps out of every build that names it."""

    __pydantic_config__ = {"extra": "forbid"}

    held_out: tuple[str, ...] = ()  # .json / .jsonl / .txt files, relative to the recipe
    held_out_documents: int = 0  # documents scored (0: all)
    validation_tokens: int = 262_144  # validation tokens scored (whole sequences)
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.held_out_documents < 0 or self.validation_tokens < 1 or self.batch_size < 1:
            raise ValueError("held_out_documents, validation_tokens or batch_size out of range")
