"""Evaluation metrics: classification accuracy/F1 with a confusion matrix, and CoNLL entity-level
precision/recall/F1 with the semantics of the original conlleval script.

Contract:
- `classification_metrics(gold, predicted, names)` -> accuracy, macro F1, per-class P/R/F1 and
  the confusion matrix (rows gold, columns predicted).
- `entity_spans(tags)` -> the chunks of one sentence as (type, start, end) following conlleval's
  startOfChunk / endOfChunk rules, so IOB1 and IOB2 input, an I- tag that opens an entity (after O
  or after another type) and a type change inside a span are all handled as conlleval does.
- `entity_metrics(gold_sentences, predicted_sentences)` -> micro P/R/F1 over exact chunk matches,
  and per type.
Reference: https://www.clips.uantwerpen.be/conll2000/chunking/conlleval.txt
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def classification_metrics(gold: list[int], predicted: list[int],
                           names: list[str]) -> dict[str, object]:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    k = len(names)
    confusion = [[0] * k for _ in range(k)]
    for g, p in zip(gold, predicted, strict=True):
        confusion[g][p] += 1
    per_class = {}
    for c, name in enumerate(names):
        tp = confusion[c][c]
        fp = sum(confusion[r][c] for r in range(k)) - tp
        fn = sum(confusion[c]) - tp
        per_class[name] = _prf(tp, fp, fn)
    accuracy = sum(confusion[c][c] for c in range(k)) / max(len(gold), 1)
    macro_f1 = sum(m["f1"] for m in per_class.values()) / k
    return {"accuracy": round(accuracy, 4), "macro_f1": round(macro_f1, 4),
            "per_class": per_class, "confusion": confusion, "labels": names, "n": len(gold)}


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "support": tp + fn}


def _split(tag: str) -> tuple[str, str]:
    if tag in ("O", ""):
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind else ("I", prefix)  # a bare type counts as I-type


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """conlleval's endOfChunk: does a chunk end between the previous token and this one?"""
    return ((prev_tag, tag) in {("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"), ("E", "E"),
                                ("E", "I"), ("E", "O")}
            or (prev_tag not in ("O", ".") and prev_type != kind)
            or prev_tag in ("[", "]"))


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, kind: str) -> bool:
    """conlleval's startOfChunk: does a chunk start at this token?"""
    return ((prev_tag, tag) in {("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"), ("E", "E"),
                                ("E", "I"), ("O", "E")}
            or (tag not in ("O", ".") and prev_type != kind)
            or tag in ("[", "]"))


def entity_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """Chunks as (type, start, end exclusive), scanning with conlleval's two rules."""
    spans = set()
    prev_tag, prev_type, start = "O", "", None
    for i, raw in enumerate([*tags, "O"]):  # a final O closes the last chunk
        tag, kind = _split(raw)
        if start is not None and _end_of_chunk(prev_tag, tag, prev_type, kind):
            spans.add((prev_type, start, i))
            start = None
        if _start_of_chunk(prev_tag, tag, prev_type, kind):
            start = i
        prev_tag, prev_type = tag, kind
    return spans


def entity_metrics(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, object]:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    tp, fp, fn = Counter(), Counter(), Counter()
    for g_tags, p_tags in zip(gold, predicted, strict=True):
        if len(g_tags) != len(p_tags):
            raise ValueError("a predicted sentence differs in length from its gold sentence")
        g, p = entity_spans(g_tags), entity_spans(p_tags)
        for span in g & p:
            tp[span[0]] += 1
        for span in p - g:
            fp[span[0]] += 1
        for span in g - p:
            fn[span[0]] += 1
    kinds = sorted(set(tp) | set(fp) | set(fn))
    overall = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    return {**overall, "per_type": {k: _prf(tp[k], fp[k], fn[k]) for k in kinds}}


def entity_counts(gold: list[list[str]], predicted: list[list[str]]) -> np.ndarray:
    """int64[sentences, 3]: each sentence's (tp, fp, fn) chunks, for intervals over sentences."""
    rows = np.zeros((len(gold), 3), dtype=np.int64)
    for k, (g_tags, p_tags) in enumerate(zip(gold, predicted, strict=True)):
        g, p = entity_spans(g_tags), entity_spans(p_tags)
        rows[k] = (len(g & p), len(p - g), len(g - p))
    return rows
