"""NER readers: CoNLL column files (CoNLL03, OntoNotes 5.0) and SpERT JSON (CoNLL04) -> TokenExample, and the
``{"tokens": [...]}`` records of ``adaprefix predict``.

Tags are BIO (IOB2); a tag that is not in the task's label list, a line with the wrong number of columns, or an
``I-X`` that does not continue an ``X`` entity is a DataError at its line. SpERT sentences are located by line
and column (the official files are one line each) and their index in the array.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

from .errors import JSON, DataError, describe, json_error, json_type, line_of, read_text, show, surrogate_free, text_lines
from .records import TokenExample

CONLL03_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
CONLL04_LABELS = ["O", "B-Loc", "B-Peop", "B-Org", "B-Other", "I-Loc", "I-Peop", "I-Org", "I-Other"]
ONTONOTES_TYPES = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL",
                   "ORG", "PERCENT", "PERSON", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]
ONTONOTES_LABELS = ["O"] + [f"{p}-{t}" for t in ONTONOTES_TYPES for p in ("B", "I")]


def check_bio(tags: list[str], labels: list[str], path: str, lines: list[int | None]) -> None:
    """Every tag known, every I-X preceded by B-X or I-X."""
    known = set(labels)
    previous = "O"
    for tag, line in zip(tags, lines):
        if tag not in known:
            raise DataError(path, line, f"unknown tag {show(tag)}; expected one of {labels}")
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            raise DataError(path, line, f"mismatched BIO tags: {tag!r} follows {previous!r} (expected B-{tag[2:]} or {tag} before it)")
        previous = tag
    return None


def read_conll_columns(path: Path, labels: list[str], columns: int, sep: str | None) -> list[TokenExample]:
    """One token per line, ``columns`` fields (token first, tag last), blank line between sentences.

    ``sep`` None splits on whitespace runs (CoNLL03); "\\t" splits on tabs (OntoNotes). -DOCSTART- lines are skipped.
    """
    text = read_text(path)
    examples: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if words:
            check_bio(tags, labels, str(path), lines)
            examples.append(TokenExample(len(examples), list(words), list(tags), {"line": lines[0]}))
            words.clear(), tags.clear(), lines.clear()

    for lineno, line in text_lines(text):
        if not line.strip():
            flush()
            continue
        fields = line.split(sep) if sep else line.split()
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if len(fields) != columns:
            raise DataError(path, lineno, f"expected {columns} columns (token ... tag), found {len(fields)}: {line!r:.80}")
        words.append(fields[0])
        tags.append(fields[-1])
        lines.append(lineno)
    flush()
    if not examples:
        raise DataError(path, None, "empty split: no sentences (expected token ... tag lines)")
    return examples


Fail = Callable[[str], DataError]  # message -> the DataError to raise, located by the caller


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tokens(tokens: object, fail: Fail) -> list[str]:
    """``tokens`` as a list of strings (each Unicode text); else ``fail(message)`` is raised."""
    if not isinstance(tokens, list):
        raise fail(f"field 'tokens' should be a list of strings, got {describe(tokens)}")
    for i, token in enumerate(tokens):
        if not isinstance(token, str):
            raise fail(f"tokens[{i}] should be a string, got {describe(token)}")
        if not surrogate_free(token):
            raise fail(f"tokens[{i}] contains a lone surrogate (e.g. \\ud800); expected Unicode text")
    return tokens


def spert_to_bio(tokens: list[str], entities: object, labels: list[str], fail: Fail) -> list[str]:
    """BIO tags from SpERT entities ``{"type", "start", "end"}`` (end exclusive); bad entities raise ``fail(msg)``."""
    if not isinstance(entities, list):
        raise fail(f"field 'entities' should be a list, got {describe(entities)}")
    types = sorted({t[2:] for t in labels if t != "O"})
    tags = ["O"] * len(tokens)
    for k, ent in enumerate(entities):
        if not isinstance(ent, dict) or not {"type", "start", "end"} <= ent.keys():
            raise fail(f"entities[{k}] {show(ent)} should be an object with 'type', 'start' and 'end'")
        kind, start, end = ent["type"], ent["start"], ent["end"]
        if not _is_int(start) or not _is_int(end):
            raise fail(f"entities[{k}]: 'start' and 'end' should be integers, got {show(start)} and {show(end)}")
        if not isinstance(kind, str) or f"B-{kind}" not in labels:
            raise fail(f"entities[{k}]: unknown entity type {show(kind)}; expected one of {types}")
        if not 0 <= start < end <= len(tokens):
            raise fail(f"entities[{k}]: span [{start}, {end}) is empty, reversed or outside the {len(tokens)} tokens "
                       f"(expected 0 <= start < end <= {len(tokens)})")
        if any(t != "O" for t in tags[start:end]):
            raise fail(f"entities[{k}]: span [{start}, {end}) overlaps another entity (expected disjoint spans)")
        tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
    return tags


_WS = re.compile(r"[ \t\n\r]*")


def json_array_items(path: Path, text: str) -> list[tuple[int, int, object]]:
    """(line, column, value) of each element of the JSON array that is the whole of ``text``."""
    pos = _WS.match(text).end()
    if text[pos:pos + 1] != "[":
        try:  # valid JSON of another kind, or not JSON at all
            value = JSON.decode(text)
        except (ValueError, RecursionError) as err:
            raise json_error(path, err, None if isinstance(err, json.JSONDecodeError) else line_of(text, pos)) from None
        raise DataError(path, line_of(text, pos), f"expected a JSON array of sentences, got {json_type(value)}")
    items = []
    line, line_start, seen = 1, 0, 0  # line count up to offset `seen`, and where that line starts

    def locate(offset: int) -> tuple[int, int]:
        nonlocal line, line_start, seen
        newlines = text.count("\n", seen, offset)
        if newlines:
            line += newlines
            line_start = text.rfind("\n", seen, offset) + 1
        seen = offset
        return line, offset - line_start + 1

    pos = _WS.match(text, pos + 1).end()
    if text[pos:pos + 1] == "]":
        pos += 1
    else:
        while True:
            try:
                value, end = JSON.raw_decode(text, pos)
            except (ValueError, RecursionError) as err:
                raise json_error(path, err, None if isinstance(err, json.JSONDecodeError) else locate(pos)[0]) from None
            items.append((*locate(pos), value))
            pos = _WS.match(text, end).end()
            if text[pos:pos + 1] == ",":
                pos = _WS.match(text, pos + 1).end()
            elif text[pos:pos + 1] == "]":
                pos += 1
                break
            else:
                line_no, column = locate(pos)
                raise DataError(path, line_no, f"malformed JSON after sentence {len(items) - 1}: expected ',' or ']'",
                                column=column)
    pos = _WS.match(text, pos).end()
    if pos < len(text):
        line_no, column = locate(pos)
        raise DataError(path, line_no, "malformed JSON: extra data after the array (expected the end of the file)",
                        column=column)
    return items


def read_spert_json(path: Path, labels: list[str]) -> list[TokenExample]:
    """SpERT JSON array of {"tokens", "entities": [{"type", "start", "end"}], ...}; errors name the line, column and
    sentence index."""
    items = json_array_items(path, read_text(path))
    if not items:
        raise DataError(path, None, "empty split: no sentences (expected a JSON array of sentence objects)")
    examples = []
    for i, (line, column, sent) in enumerate(items):
        def fail(message: str, i: int = i, line: int = line, column: int = column) -> DataError:
            return DataError(path, line, f"sentence {i}: {message}", column=column)

        if not isinstance(sent, dict) or "tokens" not in sent:
            raise fail(f"expected an object with a 'tokens' list, got {describe(sent)}")
        tokens = check_tokens(sent["tokens"], fail)
        tags = spert_to_bio(tokens, sent.get("entities", []), labels, fail)
        examples.append(TokenExample(i, list(tokens), tags, {"orig_id": sent.get("orig_id")}))
    return examples


def parse_token_record(obj: object, path: str | Path, line: int | None, default_idx: object = None) -> TokenExample:
    """An ``adaprefix predict`` (or serve request) NER record ``{"tokens": [str, ...], "idx": any}``.

    ``idx`` defaults to ``default_idx``, else the line number. Tokens may be empty strings and the list may be empty
    (predicted as no tags); anything else is a DataError at ``path:line``.
    """
    def fail(message: str) -> DataError:
        return DataError(path, line, message)

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object with a 'tokens' list, got {describe(obj)}")
    if "tokens" not in obj:
        raise fail(f"missing field 'tokens' (expected a list of strings; fields present: {sorted(obj)[:12]})")
    tokens = check_tokens(obj["tokens"], fail)
    return TokenExample(obj.get("idx", line if default_idx is None else default_idx), list(tokens))
