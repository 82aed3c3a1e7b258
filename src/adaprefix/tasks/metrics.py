"""Task metrics (APT-SPEC section 4), on label names so they read like the data.

All return plain floats in [0, 1] keyed by name; the task's main metric picks the best epoch.
"""

from __future__ import annotations

from collections import defaultdict

from seqeval.metrics import f1_score as entity_f1
from seqeval.metrics import precision_score as entity_precision
from seqeval.metrics import recall_score as entity_recall
from sklearn.metrics import accuracy_score, f1_score


def accuracy(gold: list, pred: list) -> dict[str, float]:
    return {"accuracy": float(accuracy_score(gold, pred))}


def accuracy_and_macro_f1(gold: list, pred: list, labels: list) -> dict[str, float]:
    """CB: accuracy and F1 averaged over all classes (a class never predicted nor present counts 0)."""
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
    }


def multirc_scores(gold: list[str], pred: list[str], groups: list[str], positive: str = "True") -> dict[str, float]:
    """F1a: binary F1 over all answer rows; EM: share of questions whose answers are all right."""
    f1a = f1_score([g == positive for g in gold], [p == positive for p in pred], zero_division=0)
    per_question: dict[str, bool] = defaultdict(lambda: True)
    for g, p, q in zip(gold, pred, groups):
        per_question[q] &= g == p
    em = sum(per_question.values()) / len(per_question) if per_question else 0.0
    return {"f1a": float(f1a), "em": float(em)}


def ner_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Entity-level micro precision, recall and F1 (seqeval, CoNLL evaluation rules)."""
    return {
        "f1": float(entity_f1(gold, pred, zero_division=0)),
        "precision": float(entity_precision(gold, pred, zero_division=0)),
        "recall": float(entity_recall(gold, pred, zero_division=0)),
    }
