"""In-memory records every reader produces, whatever the file format or the hub.

* ``PairExample``  text pair -> one label (BoolQ, CB, RTE, WiC, WSC, MultiRC answer rows);
* ``ChoiceExample`` several (text_a, text_b) rows -> index of the right one (COPA);
* ``TokenExample`` words -> one tag per word (NER).

``label`` is the label's name (or choice index); None where the split has no labels (SuperGLUE test).
``group`` ties MultiRC answers to their question for exact match.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PairExample:
    idx: object
    text_a: str
    text_b: str | None
    label: str | None = None
    group: str | None = None


@dataclass
class ChoiceExample:
    idx: object
    rows: list[tuple[str, str]]
    label: int | None = None


@dataclass
class TokenExample:
    idx: object
    words: list[str]
    tags: list[str] | None = None
    meta: dict = field(default_factory=dict)


Example = PairExample | ChoiceExample | TokenExample
