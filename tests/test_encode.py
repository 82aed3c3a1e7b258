"""Tokenisation, NER first-sub-token labels, dynamic padding, length grouping, few-shot sampling."""

import pytest
from transformers import AutoTokenizer

from adaprefix.tasks.encode import Collator, LengthGroupedBatches, encode
from adaprefix.tasks.fewshot import sample_few_shot
from adaprefix.tasks.records import ChoiceExample, PairExample, TokenExample
from conftest import minilm_path


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(minilm_path())


def test_ner_labels_on_first_sub_token(tokenizer):
    ex = TokenExample(0, ["Washington", "xylophonists", "rock"], ["B-Loc", "O", "O"])
    [f] = encode([ex], tokenizer, ["O", "B-Loc", "I-Loc"], 32)
    tokens = tokenizer.convert_ids_to_tokens(f.input_ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert len(tokens) > 5  # "xylophonists" splits into several pieces
    firsts = [i for i, w in enumerate(f.word_ids) if w is not None and (i == 0 or f.word_ids[i - 1] != w)]
    assert [f.label[i] for i in firsts] == [1, 0, 0]
    assert all(f.label[i] == -100 for i in range(len(tokens)) if i not in firsts)


def test_pairs_and_choices_and_padding(tokenizer):
    pairs = [PairExample(0, "a premise here", "hyp", "yes"), PairExample(1, "short", "h", "no")]
    feats = encode(pairs, tokenizer, ["no", "yes"], 32)
    assert [f.label for f in feats] == [1, 0]
    assert 1 in feats[0].token_type_ids  # second segment marked
    batch = Collator(tokenizer.pad_token_id)(feats)
    assert batch["input_ids"].shape == batch["attention_mask"].shape
    assert batch["attention_mask"][1].sum() == len(feats[1].input_ids)
    assert (batch["input_ids"][1, len(feats[1].input_ids):] == tokenizer.pad_token_id).all()
    choices = encode([ChoiceExample(0, [("p so", "one"), ("p so", "a much longer second choice")], 1)], tokenizer, [], 32)
    batch = Collator(tokenizer.pad_token_id)(choices)
    assert batch["input_ids"].shape[:2] == (1, 2) and batch["labels"].tolist() == [1]


def test_truncation(tokenizer):
    [f] = encode([PairExample(0, "word " * 200, "tail", "no")], tokenizer, ["no"], 40)
    assert len(f.input_ids) == 40


def test_length_grouping_is_seeded_and_complete():
    lengths = [5, 50, 7, 48, 6, 49, 8, 47, 9, 46] * 3
    sampler = LengthGroupedBatches(lengths, 4, shuffle=True, seed=3, pool_batches=2)
    first = sampler.batches()
    assert sorted(i for b in first for i in b) == list(range(len(lengths)))
    assert sampler.batches() == first
    sampler.epoch = 1
    assert sampler.batches() != first
    # within a pool, batches hold similar lengths: the spread inside a batch is smaller than overall
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in first)
    assert spread < max(lengths) - min(lengths)
    ordered = LengthGroupedBatches(lengths, 4, shuffle=False).batches()
    assert [lengths[i] for b in ordered for i in b] == sorted(lengths)


def test_few_shot_per_class_per_question_and_sentences():
    pairs = [PairExample(i, "a", "b", "yes" if i % 3 else "no") for i in range(30)]
    sample, drawn = sample_few_shot(pairs, 4, seed=1)
    assert [e.label for e in sample].count("no") == 4 and [e.label for e in sample].count("yes") == 4
    assert sample_few_shot(pairs, 4, seed=1)[1] == drawn and sample_few_shot(pairs, 4, seed=2)[1] != drawn
    multirc = [PairExample(i, "p", "q a", "True", group=f"q{i // 3}") for i in range(30)]
    sample, _ = sample_few_shot(multirc, 2, seed=0)
    assert len({e.group for e in sample}) == 2 and len(sample) == 6
    sentences = [TokenExample(i, ["w"], ["O"]) for i in range(10)]
    assert len(sample_few_shot(sentences, 3, seed=0)[0]) == 3


def test_long_pairs_encode_like_the_tokenizers_own_truncation():
    """encode_pairs (cut long sides first, linear time) keeps exactly the tokens the tokenizer's own
    longest_first truncation keeps, for pairs long on both sides, one side, and neither."""
    import random

    from transformers import AutoTokenizer

    from adaprefix.tasks.encode import encode_pairs
    from conftest import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    rng = random.Random(0)
    words = ["alpha", "beta", "unbelievably", "x", "tokenisation", "the", "a", "zebra", "42", "naïve"]
    texts_a, texts_b = [], []
    for n_a, n_b in [(300, 300), (500, 40), (40, 500), (10, 10), (200, 160), (161, 199), (0, 300), (1000, 999)]:
        texts_a.append(" ".join(rng.choice(words) for _ in range(n_a)))
        texts_b.append(" ".join(rng.choice(words) for _ in range(n_b)))
    for max_length in (31, 64, 128):
        ours = encode_pairs(tokenizer, texts_a, texts_b, max_length)
        theirs = tokenizer(texts_a, texts_b, truncation=True, max_length=max_length, return_token_type_ids=True)
        assert ours["input_ids"] == theirs["input_ids"]
        assert ours["token_type_ids"] == theirs["token_type_ids"]
