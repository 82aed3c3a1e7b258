"""SuperGLUE readers: official ``{split}.jsonl`` files -> records, with P-tuning v2's input templates.

Each ``parse_*`` takes one official JSON object and its location (for errors) and returns records, so the same
code serves the files, the hub rows (converted to the official layout) and ``adaprefix predict`` inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import JSON, DataError, describe, json_error, read_text, show, surrogate_free, text_lines
from .records import ChoiceExample, PairExample

BOOL_LABELS = ["False", "True"]


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a file that is not UTF-8 text, malformed JSON or a line that
    is not a JSON object is a DataError at its line."""
    rows = []
    for lineno, line in text_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            obj = JSON.decode(line)
        except (ValueError, RecursionError) as err:  # JSONDecodeError is a ValueError
            raise json_error(path, err, lineno) from None
        if not isinstance(obj, dict):
            raise DataError(path, lineno, f"expected a JSON object per line, got {describe(obj)}")
        rows.append((lineno, obj))
    if not rows:
        raise DataError(path, None, "empty split: no examples (expected one JSON object per line)")
    return rows


class Row:
    """Field access that reports missing or mistyped fields with the file and line.

    Nested fields are named by their path in the row (``passage.questions[1].answers[0].text``); strings must be
    Unicode text (no lone surrogates), integers are not booleans.
    """

    def __init__(self, obj: dict, path: str, line: int | None) -> None:
        self.obj, self.path, self.line = obj, path, line

    def error(self, message: str) -> DataError:
        return DataError(self.path, self.line, message)

    def get(self, name: str, kind: type | tuple = str, obj: dict | None = None, at: str = ""):
        source = self.obj if obj is None else obj
        field = at + name
        if name not in source:
            names = sorted(source)
            listed = names[:12] + (["..."] if len(names) > 12 else [])
            raise self.error(f"missing field {field!r} (expected {_kind_name(kind)}; fields present: {listed})")
        value = source[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise self.error(f"field {field!r} should be {_kind_name(kind)}, got {describe(value)}")
        if isinstance(value, str) and not surrogate_free(value):
            raise self.error(f"field {field!r} contains a lone surrogate (e.g. \\ud800); expected Unicode text")
        return value

    def objects(self, name: str, obj: dict | None = None, at: str = "") -> list[tuple[str, dict]]:
        """The list field ``name``, each element an object: (its path prefix for messages, the element)."""
        out = []
        for i, item in enumerate(self.get(name, list, obj, at)):
            where = f"{at}{name}[{i}]"
            if not isinstance(item, dict):
                raise self.error(f"{where} should be an object, got {describe(item)}")
            out.append((where + ".", item))
        return out

    def label(self, allowed: list, names: list[str] | None = None, has_labels: bool = True, obj: dict | None = None,
              at: str = ""):
        """The example's label as a name from ``names`` (or the raw value when names is None)."""
        if not has_labels:
            return None
        value = (self.obj if obj is None else obj).get("label")
        if value is None:
            raise self.error(f"missing field {at + 'label'!r} (expected one of {allowed})")
        # the JSON type must match too: 1 is not True, 1.0 is not 1
        if type(value) is not type(allowed[0]) or value not in allowed:
            where = f" in {at + 'label'!r}" if at else ""
            raise self.error(f"unknown label {show(value)}{where}; expected one of {allowed}")
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
    return [PairExample(row.obj.get("idx"), f"{row.get('span2_text', str, target, 'target.')}: {row.get('text')}",
                        row.get("span1_text", str, target, "target."), row.label([False, True], BOOL_LABELS, has_labels))]


def parse_copa(row: Row, has_labels: bool) -> list[ChoiceExample]:
    question = row.get("question")
    if question not in ("cause", "effect"):
        raise row.error(f"field 'question' should be 'cause' or 'effect', got {show(question)}")
    stem = f"{row.get('premise')} {'because' if question == 'cause' else 'so'}"
    rows = [(stem, row.get("choice1")), (stem, row.get("choice2"))]
    return [ChoiceExample(row.obj.get("idx"), rows, row.label([0, 1], None, has_labels))]


def parse_multirc(row: Row, has_labels: bool) -> list[PairExample]:
    passage = row.get("passage", dict)
    text = row.get("text", str, passage, "passage.")
    out = []
    for q_at, question in row.objects("questions", passage, "passage."):
        q_text = row.get("question", str, question, q_at)
        for a_at, answer in row.objects("answers", question, q_at):
            label = row.label([0, 1], BOOL_LABELS, has_labels, answer, a_at)
            out.append(multirc_answer_row(row.obj.get("idx"), question.get("idx"), answer.get("idx"), text, q_text,
                                          row.get("text", str, answer, a_at), label))
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
    if not out:  # MultiRC paragraphs without questions or answers
        raise DataError(path, None, "no examples: every paragraph has no question with answers (expected at least one)")
    return out
