"""Few-shot sampling with a seed: K examples per class, K questions (all their answers) for MultiRC,
K sentences for NER. Returns the sample and the indices drawn, to be recorded with the run."""

from __future__ import annotations

import random
from collections import defaultdict

from .records import PairExample, TokenExample


def sample_few_shot(examples: list, shots: int, seed: int) -> tuple[list, list[int]]:
    if shots < 1:
        raise ValueError(f"--shots must be >= 1, got {shots}")
    rng = random.Random(seed)
    if isinstance(examples[0], TokenExample):
        drawn = sorted(rng.sample(range(len(examples)), min(shots, len(examples))))
    elif isinstance(examples[0], PairExample) and examples[0].group is not None:  # MultiRC: K questions
        by_group: dict[str, list[int]] = defaultdict(list)
        for i, ex in enumerate(examples):
            by_group[ex.group].append(i)
        groups = sorted(by_group)
        chosen = rng.sample(groups, min(shots, len(groups)))
        drawn = sorted(i for g in chosen for i in by_group[g])
    else:
        by_label: dict[object, list[int]] = defaultdict(list)
        for i, ex in enumerate(examples):
            by_label[ex.label].append(i)
        drawn = sorted(i for label in sorted(by_label, key=str) for i in rng.sample(by_label[label], min(shots, len(by_label[label]))))
    return [examples[i] for i in drawn], drawn


__all__ = ["sample_few_shot"]
