"""Metrics against values worked out by hand."""

import pytest

from adaprefix.tasks import metrics


def test_accuracy():
    assert metrics.accuracy(["a", "b", "a", "b"], ["a", "a", "a", "b"]) == {"accuracy": 0.75}


def test_cb_macro_f1_by_hand():
    gold = ["entailment", "entailment", "contradiction", "neutral"]
    pred = ["entailment", "contradiction", "contradiction", "contradiction"]
    # entailment: P=1, R=1/2 -> F1 2/3; contradiction: P=1/3, R=1 -> F1 1/2; neutral: 0.  macro = (2/3 + 1/2) / 3
    out = metrics.accuracy_and_macro_f1(gold, pred, ["entailment", "contradiction", "neutral"])
    assert out["accuracy"] == pytest.approx(0.5)
    assert out["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 3)


def test_multirc_f1a_and_em_by_hand():
    gold = ["True", "False", "True", "True", "False"]
    pred = ["True", "False", "False", "True", "True"]
    groups = ["q1", "q1", "q2", "q2", "q3"]
    # positives: TP=2 (rows 0, 3), FP=1 (row 4), FN=1 (row 2): P=2/3, R=2/3, F1=2/3; EM: only q1 fully right -> 1/3
    out = metrics.multirc_scores(gold, pred, groups)
    assert out["f1a"] == pytest.approx(2 / 3)
    assert out["em"] == pytest.approx(1 / 3)


def test_ner_entity_f1_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    # gold entities 3 (PER, LOC, ORG); predicted 3 (PER, ORG, LOC-wrong); correct 2 -> P = R = F1 = 2/3
    out = metrics.ner_scores(gold, pred)
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    # a boundary error counts as wrong entirely
    assert metrics.ner_scores([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0
