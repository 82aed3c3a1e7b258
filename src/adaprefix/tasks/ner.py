"""NER readers: CoNLL column files (CoNLL03, OntoNotes 5.0) and SpERT JSON (CoNLL04) -> TokenExample.

Tags are BIO (IOB2); a tag that is not in the task's label list, a line with the wrong number of columns, or an
``I-X`` that does not continue an ``X`` entity is a DataError at its line.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import DataError
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
            raise DataError(path, line, f"unknown tag {tag!r}; expected one of {labels}")
        if tag.startswith("I-") and previous[2:] != tag[2:]:
            raise DataError(path, line, f"mismatched BIO tags: {tag!r} follows {previous!r} (expected B-{tag[2:]} or {tag} before it)")
        previous = tag
    return None


def read_conll_columns(path: Path, labels: list[str], columns: int, sep: str | None) -> list[TokenExample]:
    """One token per line, ``columns`` fields (token first, tag last), blank line between sentences.

    ``sep`` None splits on whitespace runs (CoNLL03); "\\t" splits on tabs (OntoNotes). -DOCSTART- lines are skipped.
    """
    if not path.is_file():
        raise DataError(path, None, "file not found")
    examples: list[TokenExample] = []
    words: list[str] = []
    tags: list[str] = []
    lines: list[int] = []

    def flush() -> None:
        if words:
            check_bio(tags, labels, str(path), lines)
            examples.append(TokenExample(len(examples), list(words), list(tags), {"line": lines[0]}))
            words.clear(), tags.clear(), lines.clear()

    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n").rstrip("\r")
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
        raise DataError(path, None, "empty split: no sentences")
    return examples


def spert_to_bio(tokens: list[str], entities: list[dict], path: str, index: int) -> list[str]:
    tags = ["O"] * len(tokens)
    for ent in entities:
        try:
            kind, start, end = ent["type"], ent["start"], ent["end"]
        except (KeyError, TypeError):
            raise DataError(path, None, f"sentence {index}: entity {ent!r} needs 'type', 'start' and 'end'") from None
        if not (0 <= start < end <= len(tokens)):
            raise DataError(path, None, f"sentence {index}: entity span [{start}, {end}) outside {len(tokens)} tokens")
        if any(t != "O" for t in tags[start:end]):
            raise DataError(path, None, f"sentence {index}: entity [{start}, {end}) overlaps another entity")
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end):
            tags[i] = f"I-{kind}"
    return tags


def read_spert_json(path: Path, labels: list[str]) -> list[TokenExample]:
    """SpERT JSON array of {"tokens", "entities": [{"type", "start", "end"}], ...}; errors name the sentence."""
    if not path.is_file():
        raise DataError(path, None, "file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(path, err.lineno, f"malformed JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(data, list):
        raise DataError(path, None, "expected a JSON array of sentences")
    if not data:
        raise DataError(path, None, "empty split: no sentences")
    examples = []
    for i, sent in enumerate(data):
        if not isinstance(sent, dict) or not isinstance(sent.get("tokens"), list):
            raise DataError(path, None, f"sentence {i}: expected an object with a 'tokens' list")
        tags = spert_to_bio(sent["tokens"], sent.get("entities", []), str(path), i)
        unknown = sorted({t for t in tags if t not in labels})
        if unknown:
            raise DataError(path, None, f"sentence {i}: unknown entity types {unknown}; expected tags {labels}")
        examples.append(TokenExample(i, list(sent["tokens"]), tags, {"orig_id": sent.get("orig_id")}))
    return examples
