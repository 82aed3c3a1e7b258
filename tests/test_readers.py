"""Readers on hand-written fixtures in the official formats, their errors, and the real files' counts."""

import json
from pathlib import Path

import pytest

from adaprefix.tasks import DataError, get_task
from adaprefix.tasks.ner import (CONLL03_LABELS, CONLL04_LABELS, ONTONOTES_LABELS, parse_token_record, read_conll_columns,
                                 read_spert_json)
from adaprefix.tasks.superglue import read_superglue
from conftest import SHARED_DATA


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_superglue_templates(tmp_path):
    cb = read_superglue("cb", write_jsonl(tmp_path / "cb.jsonl", [
        {"premise": "P.", "hypothesis": "H.", "label": "neutral", "idx": 0}]), True)
    assert (cb[0].text_a, cb[0].text_b, cb[0].label) == ("P.", "H.", "neutral")
    boolq = read_superglue("boolq", write_jsonl(tmp_path / "b.jsonl", [
        {"question": "is it?", "passage": "Title -- text", "idx": 3, "label": True}]), True)
    assert (boolq[0].text_a, boolq[0].text_b, boolq[0].label) == ("is it?", "Title -- text", "True")
    wic = read_superglue("wic", write_jsonl(tmp_path / "w.jsonl", [
        {"word": "bank", "sentence1": "A bank.", "sentence2": "River bank.", "start1": 2, "end1": 6,
         "start2": 6, "end2": 10, "idx": 0, "label": False}]), True)
    assert (wic[0].text_a, wic[0].text_b, wic[0].label) == ("bank: A bank.", "bank: River bank.", "False")
    wsc = read_superglue("wsc", write_jsonl(tmp_path / "s.jsonl", [
        {"text": "Mark told Pete he won.", "target": {"span1_text": "Pete", "span1_index": 2, "span2_text": "he",
                                                     "span2_index": 3}, "idx": 0, "label": True}]), True)
    assert (wsc[0].text_a, wsc[0].text_b, wsc[0].label) == ("he: Mark told Pete he won.", "Pete", "True")
    copa = read_superglue("copa", write_jsonl(tmp_path / "c.jsonl", [
        {"premise": "It rained.", "choice1": "A.", "choice2": "B.", "question": "effect", "idx": 0, "label": 1},
        {"premise": "I slept.", "choice1": "C.", "choice2": "D.", "question": "cause", "idx": 1, "label": 0}]), True)
    assert copa[0].rows == [("It rained. so", "A."), ("It rained. so", "B.")] and copa[0].label == 1
    assert copa[1].rows[0] == ("I slept. because", "C.") and copa[1].label == 0


def test_multirc_one_record_per_answer(tmp_path):
    row = {"idx": 7, "version": 1.1, "passage": {"text": "<b>Sent 1: </b>Text.<br>", "questions": [
        {"question": "Q1?", "idx": 0, "answers": [{"text": "a", "idx": 0, "label": 1}, {"text": "b", "idx": 1, "label": 0}]},
        {"question": "Q2?", "idx": 1, "answers": [{"text": "c", "idx": 2, "label": 0}]}]}}
    recs = read_superglue("multirc", write_jsonl(tmp_path / "m.jsonl", [row]), True)
    assert [(r.text_b, r.label, r.group) for r in recs] == [("Q1? a", "True", "7-0"), ("Q1? b", "False", "7-0"), ("Q2? c", "False", "7-1")]
    assert recs[0].text_a == "<b>Sent 1: </b>Text.<br>"
    assert recs[2].idx == {"paragraph": 7, "question": 1, "answer": 2}


def test_test_split_without_labels(tmp_path):
    recs = read_superglue("rte", write_jsonl(tmp_path / "t.jsonl", [{"premise": "p", "hypothesis": "h", "idx": 0}]), False)
    assert recs[0].label is None


@pytest.mark.parametrize("rows, line, message", [
    ([{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}, '{"premise": "p", "hyp'], 2, "malformed JSON"),
    ([{"premise": "p", "label": "entailment", "idx": 0}], 1, "missing field 'hypothesis'"),
    ([{"premise": "p", "hypothesis": "h", "label": "maybe", "idx": 0}], 1, "unknown label 'maybe'"),
    ([{"premise": "p", "hypothesis": 3, "label": "neutral", "idx": 0}], 1, "field 'hypothesis' should be a string"),
    (["[1, 2]"], 1, "expected a JSON object"),
])
def test_superglue_errors_name_file_and_line(tmp_path, rows, line, message):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=rf"bad.jsonl:{line}: .*{message}"):
        read_superglue("cb", path, True)


def test_empty_split_and_bool_label_type(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="empty split"):
        read_superglue("rte", tmp_path / "empty.jsonl", True)
    path = write_jsonl(tmp_path / "b.jsonl", [{"question": "q", "passage": "p", "idx": 0, "label": 1}])
    with pytest.raises(DataError, match=r"b.jsonl:1: unknown label 1"):
        read_superglue("boolq", path, True)


CONLL03_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""


def test_conll03_reader(tmp_path):
    (tmp_path / "train.txt").write_text(CONLL03_TEXT)
    recs = read_conll_columns(tmp_path / "train.txt", CONLL03_LABELS, 4, None)
    assert [r.words for r in recs] == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"]]
    assert recs[1].tags == ["B-PER", "I-PER"]


def test_ontonotes_reader(tmp_path):
    (tmp_path / "ok.txt").write_text("In\tO\nthe\tB-DATE\nsummer\tI-DATE\n\nHi\tO\n")
    recs = read_conll_columns(tmp_path / "ok.txt", ONTONOTES_LABELS, 2, "\t")
    assert [r.tags for r in recs] == [["O", "B-DATE", "I-DATE"], ["O"]]


@pytest.mark.parametrize("text, message", [
    ("In\tO\nthe\tx\tB-DATE\n", r"bad.txt:2: expected 2 columns"),
    ("In\tO\nthe\tI-DATE\n", r"bad.txt:2: mismatched BIO tags: 'I-DATE' follows 'O'"),
    ("a\tB-ORG\nb\tI-DATE\n", r"bad.txt:2: mismatched BIO"),
    ("a\tB-ANIMAL\n", r"bad.txt:1: unknown tag 'B-ANIMAL'"),
    ("\n\n", "empty split"),
], ids=["columns", "bio-after-o", "bio-other-type", "unknown-tag", "empty"])
def test_ontonotes_errors_name_file_and_line(tmp_path, text, message):
    (tmp_path / "bad.txt").write_text(text)
    with pytest.raises(DataError, match=message):
        read_conll_columns(tmp_path / "bad.txt", ONTONOTES_LABELS, 2, "\t")


def test_conll04_spert_reader(tmp_path):
    data = [{"tokens": ["John", "Wilkes", "Booth", "shot", "Lincoln", "."],
             "entities": [{"type": "Peop", "start": 0, "end": 3}, {"type": "Peop", "start": 4, "end": 5}],
             "relations": [{"type": "Kill", "head": 0, "tail": 1}], "orig_id": 5}]
    (tmp_path / "d.json").write_text(json.dumps(data))
    recs = read_spert_json(tmp_path / "d.json", CONLL04_LABELS)
    assert recs[0].tags == ["B-Peop", "I-Peop", "I-Peop", "O", "B-Peop", "O"]
    data[0]["entities"].append({"type": "Animal", "start": 3, "end": 4})
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"bad.json:1:2: sentence 0: entities\[2\]: unknown entity type .Animal.; expected one of"):
        read_spert_json(tmp_path / "bad.json", CONLL04_LABELS)
    (tmp_path / "broken.json").write_text('[{"tokens": ["a"],\n "entities": [}]')
    with pytest.raises(DataError, match=r"broken.json:2: malformed JSON"):
        read_spert_json(tmp_path / "broken.json", CONLL04_LABELS)


def test_bom_line_ends_and_unicode_separators(tmp_path):
    # a UTF-8 BOM is dropped; \r\n and \r end lines; U+2028 and U+0085 inside a JSON string do not
    row = {"premise": "a\u2028b\x85c", "hypothesis": "h", "label": "neutral", "idx": 0}
    text = "\ufeff" + json.dumps(row, ensure_ascii=False) + "\r\n\r\n" + json.dumps(row) + "\r" + '{"premise": 1}\n'
    (tmp_path / "x.jsonl").write_bytes(text.encode("utf-8"))
    with pytest.raises(DataError, match=r"x.jsonl:4: field 'premise' should be a string, got a number 1"):
        read_superglue("cb", tmp_path / "x.jsonl", True)
    (tmp_path / "x.jsonl").write_bytes(text.rsplit("{", 1)[0].encode("utf-8"))
    assert [r.text_a for r in read_superglue("cb", tmp_path / "x.jsonl", True)] == ["a\u2028b\x85c"] * 2
    (tmp_path / "c.txt").write_bytes("\ufeffEU NNP B-NP B-ORG\r\nrejects VBZ B-VP O\r\n\r\nPeter NNP B-NP B-PER\r\n".encode())
    recs = read_conll_columns(tmp_path / "c.txt", CONLL03_LABELS, 4, None)
    assert [r.words for r in recs] == [["EU", "rejects"], ["Peter"]] and recs[1].meta["line"] == 4


def test_spert_errors_give_line_column_and_sentence(tmp_path):
    ok = {"tokens": ["a", "b"], "entities": [{"type": "Loc", "start": 0, "end": 1}]}
    bad = {"tokens": ["a", "b"], "entities": [{"type": "Loc", "start": 1, "end": True}]}
    (tmp_path / "d.json").write_text("[\n" + json.dumps(ok) + ",\n  " + json.dumps(ok) + ", " + json.dumps(bad) + "\n]")
    with pytest.raises(DataError, match=r"d.json:3:\d+: sentence 2: entities\[0\]: 'start' and 'end' should be integers, got 1 and True"):
        read_spert_json(tmp_path / "d.json", CONLL04_LABELS)


def test_predict_token_records():
    assert parse_token_record({"tokens": ["a", ""]}, "in.jsonl", 4).idx == 4
    empty = parse_token_record({"tokens": [], "idx": "q7"}, "in.jsonl", 5)
    assert (empty.idx, empty.words, empty.tags) == ("q7", [], None)
    assert parse_token_record({"tokens": ["a"]}, "records[0]", None, default_idx=1).idx == 1  # serve: place in request
    with pytest.raises(DataError, match=r"^in.jsonl:4: tokens\[1\] should be a string, got a number 7$"):
        parse_token_record({"tokens": ["John", 7, None]}, "in.jsonl", 4)
    with pytest.raises(DataError, match=r"^records\[2\]: field 'tokens' should be a list of strings, got a string 'John'$"):
        parse_token_record({"tokens": "John"}, "records[2]", None)
    with pytest.raises(DataError, match=r"^in.jsonl:1: expected a JSON object with a 'tokens' list, got an array"):
        parse_token_record(["John"], "in.jsonl", 1)


def test_missing_train_file_is_clear(tmp_path):
    with pytest.raises(DataError, match=r"boolq/train.jsonl: boolq train split not found"):
        get_task("boolq").load("train", tmp_path)


# counts from ../shared/data/SOURCES.md (answer rows for MultiRC, sentences for NER)
REAL_COUNTS = {
    "boolq": {"val": 3270, "test": 3245}, "cb": {"train": 250, "val": 56, "test": 250},
    "copa": {"train": 400, "val": 100, "test": 500}, "rte": {"train": 2490, "val": 277, "test": 3000},
    "wic": {"train": 5428, "val": 638, "test": 1400}, "wsc": {"train": 554, "val": 104, "test": 146},
    "multirc": {"train": 27243, "val": 4848, "test": 9693},
    "conll03": {"train": 14041, "val": 3250, "test": 3453}, "conll04": {"train": 922, "val": 231, "test": 288},
    "ontonotes": {"train": 59924, "val": 8528, "test": 8262},
}
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")


@needs_data
@pytest.mark.parametrize("task", sorted(REAL_COUNTS))
def test_real_files_match_sources_counts(task):
    for split, count in REAL_COUNTS[task].items():
        records = get_task(task).load(split, SHARED_DATA)
        assert len(records) == count, f"{task} {split}"


@needs_data
def test_real_label_distributions():
    from collections import Counter

    cb = Counter(r.label for r in get_task("cb").load("train", SHARED_DATA))
    assert cb == {"entailment": 115, "contradiction": 119, "neutral": 16}
    entities = Counter(t[2:] for r in get_task("conll04").load("train", SHARED_DATA) for t in r.tags if t.startswith("B-"))
    assert entities == {"Loc": 1219, "Peop": 1087, "Org": 616, "Other": 455}
    multirc = get_task("multirc").load("val", SHARED_DATA)
    assert len({r.group for r in multirc}) == 953
