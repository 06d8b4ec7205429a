"""Entity-level scoring agrees with seqeval (conlleval semantics), tricky cases included."""

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from training.evaluate import classification_metrics, entity_metrics, entity_spans

# (gold, predicted) sentences built to hit conlleval's corner cases.
CASES = [
    # an I- tag that starts an entity (IOB1 style) vs B-
    (["I-PER", "I-PER", "O"], ["B-PER", "I-PER", "O"]),
    # a type change inside a span splits it
    (["B-ORG", "I-ORG", "I-ORG"], ["B-ORG", "I-LOC", "I-LOC"]),
    # I- after O of another type, and adjacent entities of the same type
    (["O", "I-LOC", "B-LOC", "O"], ["O", "I-LOC", "I-LOC", "O"]),
    # entity at sentence end, and a B- in the middle of a run
    (["B-MISC", "I-MISC", "B-MISC"], ["B-MISC", "I-MISC", "I-MISC"]),
    # nothing predicted, nothing gold
    (["O", "O"], ["O", "O"]),
    (["B-PER", "O", "B-ORG", "I-ORG"], ["O", "O", "B-ORG", "I-ORG"]),
    (["O", "B-PER"], ["B-PER", "I-PER"]),
]


def test_spans_follow_conlleval():
    assert entity_spans(["I-PER", "I-PER", "O"]) == {("PER", 0, 2)}
    assert entity_spans(["B-ORG", "I-LOC", "I-LOC"]) == {("ORG", 0, 1), ("LOC", 1, 3)}
    assert entity_spans(["O", "I-LOC", "B-LOC", "O"]) == {("LOC", 1, 2), ("LOC", 2, 3)}
    assert entity_spans(["B-MISC", "I-MISC", "B-MISC"]) == {("MISC", 0, 2), ("MISC", 2, 3)}


def test_entity_scores_equal_seqeval_on_tricky_predictions():
    gold = [g for g, _ in CASES]
    pred = [p for _, p in CASES]
    ours = entity_metrics(gold, pred)
    assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-4)
    assert ours["recall"] == pytest.approx(recall_score(gold, pred), abs=1e-4)
    assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-4)
    report = classification_report(gold, pred, output_dict=True)
    for kind, scores in ours["per_type"].items():
        assert scores["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-4), kind
        assert scores["support"] == report[kind]["support"], kind


def test_entity_scores_equal_seqeval_on_real_conll_with_noise(corpora):
    import random

    from pipelines.sources import conll2003

    gold = [d.meta["ner_tags"] for d, _ in
            conll2003.read(str(corpora / "conll2003" / "valid.txt"), "c")][:800]
    rng = random.Random(0)
    tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    pred = [[rng.choice(tags) if rng.random() < 0.1 else t for t in sent] for sent in gold]
    ours = entity_metrics(gold, pred)
    assert ours["f1"] == pytest.approx(f1_score(gold, pred), abs=1e-4)
    assert ours["precision"] == pytest.approx(precision_score(gold, pred), abs=1e-4)


def test_classification_metrics_counts_a_confusion_matrix():
    m = classification_metrics([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["neg", "pos"])
    assert m["confusion"] == [[1, 1], [1, 2]]
    assert m["accuracy"] == 0.6
    assert m["per_class"]["pos"] == {"precision": 0.6667, "recall": 0.6667, "f1": 0.6667,
                                     "support": 3}


def test_per_sentence_entity_counts_add_up_to_the_micro_scores():
    from training.evaluate import entity_counts

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"], ["B-MISC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "B-ORG"], ["O"]]
    rows = entity_counts(gold, pred)
    tp, fp, fn = rows.sum(axis=0)
    m = entity_metrics(gold, pred)
    assert (tp, fp, fn) == (2, 1, 2)
    assert m["f1"] == round(2 * tp / (2 * tp + fp + fn), 4)


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_items():
    from training.baselines import accuracy_interval

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 2, 2000).tolist()
    pred = [g if rng.random() < 0.8 else 1 - g for g in gold]
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    low, high = accuracy_interval(gold, pred)
    assert low <= acc <= high and high - low < 0.05
    small_low, small_high = accuracy_interval(gold[:100], pred[:100])
    assert small_high - small_low > high - low
