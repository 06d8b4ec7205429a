"""Baselines scored on the same test items as the fine-tuned model, and bootstrap intervals, so a
report can say whether a number means anything.

Contract:
- `majority(train_labels, n_test)`: the training split's most frequent class for every item.
- `bag_of_pieces(train_ids, train_labels, test_ids, n_classes, seed)`: multinomial logistic
  regression on binary bags of the tokenizer's pieces (any language: the pieces are the words),
  trained on the same training split, full-batch Adam with L2, numpy only.
- `most_frequent_tag(train_tokens, train_tags, test_tokens)`: each word's most frequent tag in
  the training split ("O" for unseen words), the usual NER floor.
- `bootstrap(stat, items, seed)`: a 95% percentile interval of `stat` over test items resampled
  with replacement (1,000 resamples): sentence-level for NER, as lm-evaluation-harness and
  lighteval resample items, not seeds.
Imports numpy only (the GPU machine has no scikit-learn).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence

import numpy as np

RESAMPLES = 1000


def majority(train_labels: Sequence[int], n_test: int) -> list[int]:
    top = Counter(train_labels).most_common(1)[0][0]
    return [top] * n_test


def _bags(ids: Sequence[Sequence[int]], skip: set[int]) -> tuple[np.ndarray, np.ndarray]:
    """Unique pieces per document, flat, with the document of each."""
    flat, docs = [], []
    for d, seq in enumerate(ids):
        unique = sorted(set(seq) - skip)
        flat.extend(unique)
        docs.extend([d] * len(unique))
    return np.asarray(flat, dtype=np.int64), np.asarray(docs, dtype=np.int64)


def bag_of_pieces(train_ids: Sequence[Sequence[int]], train_labels: Sequence[int],
                  test_ids: Sequence[Sequence[int]], n_classes: int, seed: int = 0,
                  steps: int = 300, lr: float = 0.05, l2: float = 1e-4,
                  skip: Sequence[int] = (0, 1, 2, 3)) -> list[int]:
    """Predicted classes of the test documents (see the module docstring)."""
    skip_set = set(skip)
    x_ids, x_doc = _bags(train_ids, skip_set)
    vocab = int(max(x_ids.max(initial=0), max((max(s, default=0) for s in test_ids),
                                               default=0))) + 1
    n = len(train_ids)
    lengths = np.bincount(x_doc, minlength=n).astype(np.float64)
    weight = 1.0 / np.sqrt(np.maximum(lengths, 1.0))[x_doc]  # unit-norm binary bags
    y = np.asarray(train_labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.01, size=(vocab, n_classes))
    b = np.zeros(n_classes)
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    onehot = np.eye(n_classes)[y]

    def logits_of(ids: np.ndarray, doc: np.ndarray, wts: np.ndarray, count: int) -> np.ndarray:
        out = np.zeros((count, n_classes))
        for c in range(n_classes):
            out[:, c] = np.bincount(doc, weights=w[ids, c] * wts, minlength=count)
        return out + b

    for t in range(1, steps + 1):
        z = logits_of(x_ids, x_doc, weight, n)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / n
        grad_w = np.zeros_like(w)
        for c in range(n_classes):
            grad_w[:, c] = np.bincount(x_ids, weights=g[x_doc, c] * weight, minlength=vocab)
        grad_w += l2 * w
        grad_b = g.sum(axis=0)
        for param, grad, m, v in ((w, grad_w, m_w, v_w), (b, grad_b, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    t_ids, t_doc = _bags(test_ids, skip_set)
    t_len = np.bincount(t_doc, minlength=len(test_ids)).astype(np.float64)
    t_w = 1.0 / np.sqrt(np.maximum(t_len, 1.0))[t_doc]
    return logits_of(t_ids, t_doc, t_w, len(test_ids)).argmax(axis=1).tolist()


def most_frequent_tag(train_tokens: Sequence[Sequence[str]], train_tags: Sequence[Sequence[str]],
                      test_tokens: Sequence[Sequence[str]]) -> list[list[str]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for words, tags in zip(train_tokens, train_tags, strict=True):
        for word, tag in zip(words, tags, strict=True):
            counts[word][tag] += 1
    best = {word: c.most_common(1)[0][0] for word, c in counts.items()}
    return [[best.get(word, "O") for word in words] for words in test_tokens]


def bootstrap(stat: Callable[[np.ndarray], float], n_items: int, seed: int = 0,
              resamples: int = RESAMPLES) -> list[float]:
    """[low, high]: the 2.5th and 97.5th percentiles of `stat(indices)` over resampled item
    indices."""
    if n_items == 0:
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    values = [stat(rng.integers(0, n_items, n_items)) for _ in range(resamples)]
    low, high = np.percentile(values, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def accuracy_interval(gold: Sequence[int], predicted: Sequence[int], seed: int = 0
                      ) -> list[float]:
    correct = (np.asarray(gold) == np.asarray(predicted)).astype(np.float64)
    return bootstrap(lambda idx: float(correct[idx].mean()), len(correct), seed)


def f1_interval(per_sentence: np.ndarray, seed: int = 0) -> list[float]:
    """Micro F1 interval from per-sentence (tp, fp, fn) rows."""
    def f1(idx: np.ndarray) -> float:
        tp, fp, fn = per_sentence[idx].sum(axis=0)
        return 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    return bootstrap(f1, len(per_sentence), seed)
