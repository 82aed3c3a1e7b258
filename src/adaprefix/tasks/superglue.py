"""SuperGLUE readers: official ``{split}.jsonl`` files -> records, with P-tuning v2's input templates.

Each ``parse_*`` takes one official JSON object and its location (for errors) and returns records, so the same
code serves the files, the hub rows (converted to the official layout) and ``adaprefix predict`` inputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from .errors import DataError
from .records import ChoiceExample, PairExample

BOOL_LABELS = ["False", "True"]


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; malformed JSON is a DataError at its line."""
    if not path.is_file():
        raise DataError(path, None, "file not found")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, lineno, f"malformed JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(path, lineno, f"expected a JSON object, got {type(obj).__name__}")
            rows.append((lineno, obj))
    if not rows:
        raise DataError(path, None, "empty split: no examples")
    return rows


class Row:
    """Field access that reports missing or mistyped fields with the file and line."""

    def __init__(self, obj: dict, path: str, line: int | None) -> None:
        self.obj, self.path, self.line = obj, path, line

    def get(self, name: str, kind: type | tuple = str, obj: dict | None = None):
        source = self.obj if obj is None else obj
        if name not in source:
            raise DataError(self.path, self.line, f"missing field {name!r} (fields present: {sorted(source)})")
        value = source[name]
        if not isinstance(value, kind):
            raise DataError(self.path, self.line, f"field {name!r} should be {_kind_name(kind)}, got {value!r:.60}")
        return value

    def label(self, allowed: list, names: list[str] | None = None, has_labels: bool = True):
        """The example's label as a name from ``names`` (or the raw value when names is None)."""
        if not has_labels:
            return None
        value = self.obj.get("label")
        if value is None:
            raise DataError(self.path, self.line, f"missing field 'label' (expected one of {allowed})")
        if value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
            raise DataError(self.path, self.line, f"unknown label {value!r}; expected one of {allowed}")
        return names[allowed.index(value)] if names else value


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join({str: "a string", int: "an integer", list: "a list", dict: "an object", bool: "a boolean"}.get(k, k.__name__) for k in kinds)


def parse_boolq(row: Row, has_labels: bool) -> list[PairExample]:
    return [PairExample(row.obj.get("idx"), row.get("question"), row.get("passage"),
                        row.label([False, True], BOOL_LABELS, has_labels))]


def _premise_hypothesis(labels: list[str]) -> Callable[[Row, bool], list[PairExample]]:
    def parse(row: Row, has_labels: bool) -> list[PairExample]:
        return [PairExample(row.obj.get("idx"), row.get("premise"), row.get("hypothesis"),
                            row.label(labels, labels, has_labels))]
    return parse


CB_LABELS = ["entailment", "contradiction", "neutral"]
RTE_LABELS = ["entailment", "not_entailment"]
parse_cb = _premise_hypothesis(CB_LABELS)
parse_rte = _premise_hypothesis(RTE_LABELS)


def parse_wic(row: Row, has_labels: bool) -> list[PairExample]:
    word = row.get("word")
    return [PairExample(row.obj.get("idx"), f"{word}: {row.get('sentence1')}", f"{word}: {row.get('sentence2')}",
                        row.label([False, True], BOOL_LABELS, has_labels))]


def parse_wsc(row: Row, has_labels: bool) -> list[PairExample]:
    target = row.get("target", dict)
    return [PairExample(row.obj.get("idx"), f"{row.get('span2_text', str, target)}: {row.get('text')}",
                        row.get("span1_text", str, target), row.label([False, True], BOOL_LABELS, has_labels))]


def parse_copa(row: Row, has_labels: bool) -> list[ChoiceExample]:
    question = row.get("question")
    if question not in ("cause", "effect"):
        raise DataError(row.path, row.line, f"field 'question' should be 'cause' or 'effect', got {question!r}")
    stem = f"{row.get('premise')} {'because' if question == 'cause' else 'so'}"
    rows = [(stem, row.get("choice1")), (stem, row.get("choice2"))]
    return [ChoiceExample(row.obj.get("idx"), rows, row.label([0, 1], None, has_labels))]


def parse_multirc(row: Row, has_labels: bool) -> list[PairExample]:
    passage = row.get("passage", dict)
    text = row.get("text", str, passage)
    out = []
    for question in row.get("questions", list, passage):
        q_text = row.get("question", str, question)
        for answer in row.get("answers", list, question):
            label = None
            if has_labels:
                label = Row(answer, row.path, row.line).label([0, 1], BOOL_LABELS)
            out.append(multirc_answer_row(row.obj.get("idx"), question.get("idx"), answer.get("idx"), text, q_text,
                                          row.get("text", str, answer), label))
    return out


def multirc_answer_row(paragraph_idx, question_idx, answer_idx, passage: str, question: str, answer: str,
                       label: str | None) -> PairExample:
    """One MultiRC training/eval unit: (paragraph, "{question} {answer}"), grouped by question for EM."""
    return PairExample({"paragraph": paragraph_idx, "question": question_idx, "answer": answer_idx},
                       passage, f"{question} {answer}", label, f"{paragraph_idx}-{question_idx}")


PARSERS: dict[str, Callable[[Row, bool], list]] = {
    "boolq": parse_boolq, "cb": parse_cb, "rte": parse_rte, "wic": parse_wic,
    "wsc": parse_wsc, "copa": parse_copa, "multirc": parse_multirc,
}


def read_superglue(task: str, path: Path, has_labels: bool) -> list:
    parse = PARSERS[task]
    out = []
    for lineno, obj in read_jsonl(path):
        out.extend(parse(Row(obj, str(path), lineno), has_labels))
    return out
