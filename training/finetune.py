"""Fine-tuning a pretrained checkpoint on the task datasets: sequence classification (IMDb,
ChnSentiCorp, any `classification` source) and token classification (CoNLL-2003, Weibo NER,
any `conll` source); each returns its test-split metrics.

Contract: `finetune(task, cfg, pretrained_dir, tasks_dir, out_dir, device) -> metrics`, where
`tasks_dir` is the tasks stage's output (`imdb/`, `conll2003/` saved by `datasets`, read here
with pyarrow alone). IMDb: `input_ids` -> `label`, scored with accuracy, macro F1 and a confusion
matrix. CoNLL: `input_ids` with word-aligned `labels` (-100 on continuation pieces), scored at
entity level with conlleval semantics, one prediction per word: at its first piece for an
encoder, at its last piece for a causal decoder (`word_targets`). The fine-tuned model is saved
as safetensors under `out_dir`. Batches are padded with <pad> and masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig

from training import baselines
from training import model as models
from training.baselines import accuracy_interval, f1_interval
from training.config import FinetuneConfig
from training.data import label_names, read_task_split
from training.evaluate import classification_metrics, entity_counts, entity_metrics

IGNORE_INDEX = -100  # no target at this position (pipelines/tasks.py's)


def pad(sequences: list[list[int]], value: int, max_length: int) -> torch.Tensor:
    width = min(max_length, max(len(s) for s in sequences))
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for i, seq in enumerate(sequences):
        seq = seq[:width]
        out[i, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def _batches(n: int, batch_size: int, steps: int, seed: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    position = 0
    for _ in range(steps):
        if position + batch_size > n:
            order, position = rng.permutation(n), 0
        yield order[position: position + batch_size]
        position += batch_size


def finetune(task: str, cfg: FinetuneConfig, pretrained_dir: str | Path, tasks_dir: str | Path,
             out_dir: str | Path, device: str = "cpu") -> dict[str, Any]:
    """Fine-tune `cfg.seeds` times (seeds `cfg.seed`, `cfg.seed + 1`, ...) and score each run on
    the same test rows. `test` holds the first seed's full metrics and interval over test items,
    the baselines, and `seeds`: the headline metric per seed with its mean, sample standard
    deviation and range (spread over seeds is training noise; the interval is test-set noise)."""
    dev = torch.device(device)
    folder = Path(tasks_dir) / task
    train, test = read_task_split(folder, "train"), read_task_split(folder, "test")
    token_task = "ner_tags" in train.column_names  # token classification (NER)
    names = label_names(folder, "train", "ner_tags" if token_task else "label")
    ids = train.column("input_ids").to_pylist()
    targets = train.column("labels" if token_task else "label").to_pylist()
    if token_task:
        causal = models.is_causal(AutoConfig.from_pretrained(str(pretrained_dir)))
        targets = [word_targets(labels, words, cfg.max_length, causal) for labels, words
                   in zip(targets, train.column("word_ids").to_pylist(), strict=True)]
    runs = [train_one(ids, targets, test, token_task, names, cfg, cfg.seed + k, pretrained_dir,
                      Path(out_dir) / task if k == 0 else None, dev)
            for k in range(cfg.seeds)]
    metrics = runs[0]["test"]
    metrics["seeds"] = seed_summary([r["test"] for r in runs], "f1" if token_task else "accuracy",
                                    [cfg.seed + k for k in range(cfg.seeds)])
    metrics["baselines"] = baseline_scores(train, test, token_task, names, cfg)
    return {"task": task, "train_examples": train.num_rows, "steps": cfg.steps,
            "loss": runs[0]["loss"], "loss_by_seed": [r["loss"] for r in runs], "test": metrics}


def word_targets(labels: list[int], word_ids: list[int], width: int, causal: bool
                 ) -> list[int]:
    """A row's token-classification targets over its first `width` positions: one tag per word,
    -100 elsewhere. The task datasets put each word's tag on its first piece (the Hugging Face
    convention, right for an encoder, which sees the whole sentence from every position). A
    causal decoder at a word's first piece has seen only that piece and what came before it:
    at "▁" of Weibo NER's "▁", "张" it has not seen the character at all. For a decoder the tag
    moves to the word's last piece within `width`, the first position that has seen the whole
    word. (On the zh build's Weibo NER, 300 steps, three seeds: entity F1 0.032 with first
    pieces, 0.116 with last pieces. CoNLL-2003's words are mostly one piece: 0.307 and 0.319 on
    the demo build, 0.325 and 0.308 on the mix build, within the seeds' spread.)"""
    labels = labels[:width]
    if not causal:
        return labels
    word_ids = word_ids[:width]
    out = [IGNORE_INDEX] * len(labels)
    tag = IGNORE_INDEX
    for k, label in enumerate(labels):
        if label != IGNORE_INDEX:  # a word's first piece
            tag = label
        if tag != IGNORE_INDEX and (k + 1 == len(labels) or word_ids[k + 1] != word_ids[k]):
            out[k], tag = tag, IGNORE_INDEX
    return out


def seed_summary(results: list[dict[str, Any]], metric: str, seeds: list[int]
                 ) -> dict[str, Any]:
    values = [float(r[metric]) for r in results]
    return {"metric": metric, "seeds": seeds, "values": values,
            "mean": round(float(np.mean(values)), 4),
            "sd": round(float(np.std(values, ddof=1)), 4) if len(values) > 1 else None,
            "min": min(values), "max": max(values)}


def train_one(ids: list[list[int]], targets: list, test, token_task: bool, names: list[str],
              cfg: FinetuneConfig, seed: int, pretrained_dir: str | Path, save_to: Path | None,
              dev: torch.device) -> dict[str, Any]:
    """One fine-tuning run on the training split's inputs and targets: weights of the head,
    batch order (and dropout) from `seed`."""
    torch.manual_seed(seed)
    build = models.for_token_classification if token_task else models.for_sequence_classification
    model = build(str(pretrained_dir), len(names)).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                              enabled=dev.type == "cuda")
    losses = []
    model.train()
    for step, rows in enumerate(_batches(len(ids), cfg.batch_size, cfg.steps, seed)):
        for group in optimizer.param_groups:  # linear decay
            group["lr"] = cfg.lr * (1 - step / cfg.steps)
        inputs = pad([ids[i] for i in rows], models.PAD_ID, cfg.max_length).to(dev)
        if token_task:
            labels = pad([targets[i] for i in rows], -100, cfg.max_length).to(dev)
        else:
            labels = torch.tensor([targets[i] for i in rows], device=dev)
        with autocast:
            loss = model(input_ids=inputs, attention_mask=inputs != models.PAD_ID,
                         labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
    metrics = score(model, test, token_task, names, cfg, dev)
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(save_to), safe_serialization=True)
    return {"loss": losses, "test": metrics}


@torch.no_grad()
def score(model: torch.nn.Module, test, token_task: bool, names: list[str],
          cfg: FinetuneConfig, dev: torch.device) -> dict[str, Any]:
    model.eval()
    keep = eval_rows(test.num_rows, cfg)
    n = len(keep)
    ids = [test.column("input_ids")[int(i)].as_py() for i in keep]
    gold_col = [test.column("labels" if token_task else "label")[int(i)].as_py() for i in keep]
    if token_task:
        causal = models.is_causal(model.config)
        gold_col = [word_targets(labels, test.column("word_ids")[int(i)].as_py(),
                                 cfg.max_length, causal) for labels, i
                    in zip(gold_col, keep, strict=True)]
    gold_tags, pred_tags, gold_labels, pred_labels = [], [], [], []
    for start in range(0, n, 64):
        chunk = list(range(start, min(start + 64, n)))
        inputs = pad([ids[i] for i in chunk], models.PAD_ID, cfg.max_length).to(dev)
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16,
                            enabled=dev.type == "cuda"):
            logits = model(input_ids=inputs, attention_mask=inputs != models.PAD_ID).logits
        predicted = logits.argmax(-1).cpu()
        for row, i in enumerate(chunk):
            if token_task:
                labels = gold_col[i][: inputs.shape[1]]
                words = [k for k, lab in enumerate(labels) if lab != -100]
                gold_tags.append([names[labels[k]] for k in words])
                pred_tags.append([names[int(predicted[row, k])] for k in words])
            else:
                gold_labels.append(gold_col[i])
                pred_labels.append(int(predicted[row]))
    model.train()
    if token_task:
        metrics = entity_metrics(gold_tags, pred_tags)
        metrics["f1_ci95"] = f1_interval(entity_counts(gold_tags, pred_tags), cfg.seed)
        return metrics
    metrics = classification_metrics(gold_labels, pred_labels, names)
    metrics["accuracy_ci95"] = accuracy_interval(gold_labels, pred_labels, cfg.seed)
    return metrics


def eval_rows(n_test: int, cfg: FinetuneConfig) -> np.ndarray:
    """The test rows scored: all, or a seeded sample when `eval_limit` is set (the split is
    stored sorted by id, i.e. by label for IMDb)."""
    n = n_test if not cfg.eval_limit else min(cfg.eval_limit, n_test)
    return np.sort(np.random.default_rng(cfg.seed).permutation(n_test)[:n])


def baseline_scores(train, test, token_task: bool, names: list[str], cfg: FinetuneConfig
                    ) -> dict[str, Any]:
    """Baselines on the same test rows as the model, trained on the same training split:
    majority class and a bag-of-pieces logistic regression for classification, the most
    frequent tag per word for NER (all its words: the model is scored on the words that fit
    `max_length`)."""
    keep = [int(i) for i in eval_rows(test.num_rows, cfg)]
    out: dict[str, Any] = {}
    if token_task:
        tags_of = [[names[t] for t in row] for row in train.column("ner_tags").to_pylist()]
        tokens = test.column("tokens").to_pylist()
        gold = [[names[t] for t in test.column("ner_tags")[i].as_py()] for i in keep]
        predicted = baselines.most_frequent_tag(train.column("tokens").to_pylist(), tags_of,
                                                [tokens[i] for i in keep])
        metrics = entity_metrics(gold, predicted)
        out["most_frequent_tag"] = {k: metrics[k] for k in ("precision", "recall", "f1")} | {
            "f1_ci95": f1_interval(entity_counts(gold, predicted), cfg.seed)}
        return out
    gold = [test.column("label")[i].as_py() for i in keep]
    labels = train.column("label").to_pylist()
    test_ids = test.column("input_ids").to_pylist()
    for name, predicted in (
            ("majority", baselines.majority(labels, len(keep))),
            ("bag_of_pieces_logreg", baselines.bag_of_pieces(
                train.column("input_ids").to_pylist(), labels, [test_ids[i] for i in keep],
                len(names), cfg.seed))):
        metrics = classification_metrics(gold, predicted, names)
        out[name] = {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                     "accuracy_ci95": accuracy_interval(gold, predicted, cfg.seed)}
    return out
