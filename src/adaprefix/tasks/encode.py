"""Records -> token ids, batches with dynamic padding, and length-grouped batch order.

NER labels go on the first sub-token of each word and -100 elsewhere; ``word_ids`` maps predictions back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import torch

from .records import ChoiceExample, PairExample, TokenExample


@dataclass
class Feature:
    index: int  # position in the example list
    input_ids: list  # list[int], or list[list[int]] (one per choice)
    token_type_ids: list
    label: int | list[int] | None
    word_ids: list[int | None] = field(default_factory=list)

    @property
    def length(self) -> int:
        ids = self.input_ids
        return max(len(r) for r in ids) if ids and isinstance(ids[0], list) else len(ids)


def pair_lengths(n1: int, n2: int, budget: int) -> tuple[int, int]:
    """The lengths tokenizers' longest_first truncation cuts two sides of n1 and n2 tokens to (budget: without specials)."""
    if n1 + n2 <= budget:
        return n1, n2
    swap = n1 > n2
    if swap:
        n1, n2 = n2, n1
    n2 = n1 if n1 > budget else max(n1, budget - n1)
    if n1 + n2 > budget:
        n1, n2 = budget // 2, budget // 2 + budget % 2
    return (n2, n1) if swap else (n1, n2)


def encode_pairs(tokenizer, texts_a: list[str], texts_b: list[str], max_length: int) -> dict[str, list]:
    """input_ids and token_type_ids as ``tokenizer(texts_a, texts_b, truncation=True, max_length=max_length)`` gives
    them, in time linear in the text lengths.

    The tokenizers library truncates a pair by building every combination of the two sides' overflow windows:
    quadratic time and memory (two 8,000-word texts: 2.6 s and 1.8 GB; two 100,000-word texts exhaust memory).
    So texts with more than ``max_length + 16`` tokens are first cut after that many tokens (their token counts
    are exact: one-sided tokenisation is linear); every pair that was cut is checked against the tokens the
    uncut pair keeps, and re-tokenised uncut if it differs (a BPE word re-merged at the cut).
    """
    kwargs = dict(truncation=True, max_length=max_length, return_token_type_ids=True)
    keep = max_length + 16
    long = sorted({i for i, (a, b) in enumerate(zip(texts_a, texts_b)) if len(a) > keep and len(b) > keep})
    if not long:  # one long side alone truncates in linear time
        return tokenizer(texts_a, texts_b, **kwargs)
    sides = {}
    for name, texts in (("a", texts_a), ("b", texts_b)):
        enc = tokenizer([texts[i] for i in long], add_special_tokens=False, return_offsets_mapping=True)
        sides[name] = [(ids, offsets) for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"])]
    cut_a, cut_b = list(texts_a), list(texts_b)
    for k, i in enumerate(long):
        for texts, (ids, offsets) in ((cut_a, sides["a"][k]), (cut_b, sides["b"][k])):
            if len(ids) > keep:
                texts[i] = texts[i][: offsets[keep - 1][1]]
    out = tokenizer(cut_a, cut_b, **kwargs)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    for k, i in enumerate(long):
        ids_a, ids_b = sides["a"][k][0], sides["b"][k][0]
        n1, n2 = pair_lengths(len(ids_a), len(ids_b), budget)
        seq = out.sequence_ids(i)
        got_a = [t for t, s in zip(out["input_ids"][i], seq) if s == 0]
        got_b = [t for t, s in zip(out["input_ids"][i], seq) if s == 1]
        if got_a != ids_a[:n1] or got_b != ids_b[:n2]:
            exact = tokenizer([texts_a[i]], [texts_b[i]], **kwargs)
            out["input_ids"][i], out["token_type_ids"][i] = exact["input_ids"][0], exact["token_type_ids"][0]
    return out


def encode(examples: list, tokenizer, label_names: list[str], max_length: int) -> list[Feature]:
    """Tokenise all records of one split in batched calls to the fast tokenizer."""
    if not examples:
        return []
    label_id = {name: i for i, name in enumerate(label_names)}
    kwargs = dict(truncation=True, max_length=max_length, return_token_type_ids=True)
    first = examples[0]
    if isinstance(first, TokenExample):
        enc = tokenizer([e.words for e in examples], is_split_into_words=True, **kwargs)
        features = []
        for i, ex in enumerate(examples):
            word_ids = enc.word_ids(i)
            labels = None
            if ex.tags is not None:
                labels, previous = [], None
                for w in word_ids:
                    labels.append(label_id[ex.tags[w]] if w is not None and w != previous else -100)
                    previous = w
            features.append(Feature(i, enc["input_ids"][i], enc["token_type_ids"][i], labels, word_ids))
        return features
    if isinstance(first, ChoiceExample):
        flat_a = [a for e in examples for a, _ in e.rows]
        flat_b = [b for e in examples for _, b in e.rows]
        enc = encode_pairs(tokenizer, flat_a, flat_b, max_length)
        features, pos = [], 0
        for i, ex in enumerate(examples):
            n = len(ex.rows)
            features.append(Feature(i, enc["input_ids"][pos : pos + n], enc["token_type_ids"][pos : pos + n], ex.label))
            pos += n
        return features
    assert isinstance(first, PairExample)
    texts_b = [e.text_b for e in examples]
    texts_a = [e.text_a for e in examples]
    if any(t is not None for t in texts_b):
        enc = encode_pairs(tokenizer, texts_a, [t or "" for t in texts_b], max_length)
    else:
        enc = tokenizer(texts_a, None, **kwargs)
    return [
        Feature(i, enc["input_ids"][i], enc["token_type_ids"][i], None if ex.label is None else label_id[ex.label])
        for i, ex in enumerate(examples)
    ]


def count_truncated(examples: list, features: list[Feature], tokenizer, max_length: int) -> int:
    """How many examples lost tokens to ``max_length`` (any choice row, for multiple choice).

    Only rows that came out exactly ``max_length`` long can have been cut; those alone are re-tokenised whole.
    """
    cut = 0
    for f in features:
        rows = f.input_ids if f.input_ids and isinstance(f.input_ids[0], list) else [f.input_ids]
        if all(len(r) < max_length for r in rows):
            continue
        ex = examples[f.index]
        if isinstance(ex, TokenExample):
            full = [len(tokenizer(ex.words, is_split_into_words=True, verbose=False)["input_ids"])]
        elif isinstance(ex, ChoiceExample):
            full = [len(tokenizer(a, b, verbose=False)["input_ids"]) for a, b in ex.rows]
        else:
            full = [len(tokenizer(ex.text_a, ex.text_b, verbose=False)["input_ids"])]
        cut += any(n > max_length for n in full)
    return cut


def _pad(rows: list[list[int]], width: int, value: int) -> list[list[int]]:
    return [r + [value] * (width - len(r)) for r in rows]


class Collator:
    """Pads a batch of Features to its own longest sequence (or choice row)."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id

    def __call__(self, features: list[Feature]) -> dict[str, torch.Tensor]:
        width = max(f.length for f in features)
        batch: dict[str, torch.Tensor] = {"index": torch.tensor([f.index for f in features])}
        if isinstance(features[0].input_ids[0], list):  # multiple choice: B x C x n
            ids = [_pad(f.input_ids, width, self.pad) for f in features]
            types = [_pad(f.token_type_ids, width, 0) for f in features]
            mask = [_pad([[1] * len(r) for r in f.input_ids], width, 0) for f in features]
        else:
            ids = _pad([f.input_ids for f in features], width, self.pad)
            types = _pad([f.token_type_ids for f in features], width, 0)
            mask = _pad([[1] * len(f.input_ids) for f in features], width, 0)
        batch.update(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types), attention_mask=torch.tensor(mask))
        if features[0].label is not None:
            if isinstance(features[0].label, list):
                batch["labels"] = torch.tensor(_pad([f.label for f in features], width, -100))
            else:
                batch["labels"] = torch.tensor([f.label for f in features])
        return batch


class LengthGroupedBatches:
    """Batches of similar length (less padding, faster on CPU), reshuffled each epoch from (seed, epoch).

    Training: shuffle, cut into pools of ``pool_batches`` batches, sort each pool by length, shuffle the batches.
    Evaluation (``shuffle=False``): all examples sorted by length. Set ``.epoch`` before iterating.
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool, seed: int = 0, pool_batches: int = 50) -> None:
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.pool = batch_size * pool_batches
        self.epoch = 0

    def batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            order.sort(key=lambda i: self.lengths[i])
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = random.Random(self.seed * 100003 + self.epoch)
        rng.shuffle(order)
        out = []
        for start in range(0, len(order), self.pool):
            pool = sorted(order[start : start + self.pool], key=lambda i: self.lengths[i])
            out.extend(pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size))
        rng.shuffle(out)
        return out

    def __iter__(self):
        return iter(self.batches())

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size if not self.shuffle else len(self.batches())


def shard_steps(global_batches: list[list[int]], world: int) -> list[list[list[int]]]:
    """Split each global step's batch into ``world`` near-equal parts, one per process.

    Every example lands in exactly one process's part of exactly one step, and every process takes the same
    number of steps (distributed training needs both). A batch too small to give each process one example
    (a pool's short tail, wherever shuffling put it) is merged into a neighbour. Returns
    ``steps[step][rank]`` -> example indices.

    >>> shard_steps([[0, 1, 2, 3], [4]], world=2)
    [[[0, 1, 2], [3, 4]]]
    """
    if world < 1:
        raise ValueError(f"world size must be >= 1, got {world}")
    batches: list[list[int]] = []
    carry: list[int] = []
    for batch in global_batches:
        batch = carry + list(batch)
        carry = []
        if len(batch) >= world:
            batches.append(batch)
        elif batches:
            batches[-1].extend(batch)
        else:
            carry = batch  # nothing before it yet: goes into the next one
    if carry:
        batches.append(carry)
    total = sum(len(b) for b in batches)
    if batches and len(batches[-1]) < world:
        raise ValueError(f"{total} training examples cannot be shared by {world} processes (fewer than one each)")
    steps = []
    for batch in batches:
        size, extra = divmod(len(batch), world)
        parts, start = [], 0
        for rank in range(world):
            end = start + size + (1 if rank < extra else 0)
            parts.append(batch[start:end])
            start = end
        steps.append(parts)
    return steps
