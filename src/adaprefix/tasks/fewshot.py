"""Drawing training records: few-shot samples with a seed (K examples per class, K questions with all their answers
for MultiRC, K sentences for NER; the sample and the indices drawn, recorded with the run) and a fixed random
training subset (``--train-subset``; ``--eval-subset`` for dev and test) that every run shares."""

from __future__ import annotations

import random
from collections import defaultdict

from .records import PairExample, TokenExample


def is_grouped(examples: list) -> bool:
    """Records that come in groups drawn whole (MultiRC's answer rows, grouped by question)."""
    return isinstance(examples[0], PairExample) and examples[0].group is not None


def positions_by(examples: list, indices, attribute: str) -> dict[object, list[int]]:
    """The ``indices`` of ``examples`` keyed by each record's ``attribute`` (its group or label), in index order."""
    out: dict[object, list[int]] = defaultdict(list)
    for i in indices:
        out[getattr(examples[i], attribute)].append(i)
    return out


def sample_few_shot(examples: list, shots: int, seed: int, exclude: frozenset[int] = frozenset()) -> tuple[list, list[int]]:
    """K per class (K questions for MultiRC, K sentences for NER) drawn with ``seed``, never from ``exclude``."""
    if shots < 1:
        raise ValueError(f"--shots must be >= 1, got {shots}")
    rng = random.Random(seed)
    pool = [i for i in range(len(examples)) if i not in exclude]
    if isinstance(examples[0], TokenExample):
        drawn = sorted(rng.sample(pool, min(shots, len(pool))))
    elif is_grouped(examples):  # MultiRC: K questions
        by_group = positions_by(examples, pool, "group")
        groups = sorted(by_group)
        chosen = rng.sample(groups, min(shots, len(groups)))
        drawn = sorted(i for g in chosen for i in by_group[g])
    else:
        by_label = positions_by(examples, pool, "label")
        drawn = sorted(i for label in sorted(by_label, key=str) for i in rng.sample(by_label[label], min(shots, len(by_label[label]))))
    return [examples[i] for i in drawn], drawn


SUBSET_SEED = 0  # one draw for every run: all seeds and methods train on the same subset


def draw_subset(examples: list, size: int, seed: int = SUBSET_SEED, option: str = "--train-subset") -> list:
    """A random ``size`` of ``examples`` (all of them where there are no more), kept in file order; drawn with a
    fixed ``seed``, not the run's, so that every seed and method trains (or is scored) on the same stated subset.
    MultiRC's answer rows (records with a ``group``) come as whole questions, drawn until at least ``size`` rows
    are in, so that exact match still scores complete questions.

        draw_subset(task.load("train", data_dir), 2000)  # the same 2000 records on every call
    """
    if size < 1:
        raise ValueError(f"{option} must be >= 1, got {size}")
    if size >= len(examples):
        return list(examples)
    rng = random.Random(seed)
    if is_grouped(examples):
        by_group = positions_by(examples, range(len(examples)), "group")
        order = sorted(by_group)
        rng.shuffle(order)
        chosen: list[int] = []
        for group in order:
            if len(chosen) >= size:
                break
            chosen += by_group[group]
        return [examples[i] for i in sorted(chosen)]
    return [examples[i] for i in sorted(rng.sample(range(len(examples)), size))]


def few_shot_dev_split(examples: list, drawn: list[int], shots: int, seed: int) -> tuple[list, list[int]]:
    """A K-per-class selection split from the training file, disjoint from the training draw ``drawn``:
    what a real few-shot user has for choosing the epoch (the official dev set is not theirs to use)."""
    return sample_few_shot(examples, shots, seed * 7919 + 1, exclude=frozenset(drawn))


def short_classes(examples: list, drawn: list[int], shots: int) -> dict[str, int]:
    """Classes of a per-class draw (classification, multiple choice) that got fewer than ``shots`` examples,
    as ``{label: drawn}``: the file had no more to give (CB's `neutral` has 16 training examples, so K = 32 takes
    all 16, and a selection split beside a K = 16 draw gets none). Empty for NER and MultiRC (K sentences or
    questions, not per class) and when every class got K.

        short_classes(train, drawn, 32)   # {"neutral": 16}
    """
    if not examples or isinstance(examples[0], TokenExample) or is_grouped(examples):
        return {}
    got: dict[str, int] = {str(e.label): 0 for e in examples}
    for i in drawn:
        got[str(examples[i].label)] += 1
    return {label: n for label, n in sorted(got.items()) if n < shots}


__all__ = ["draw_subset", "few_shot_dev_split", "sample_few_shot", "short_classes"]
