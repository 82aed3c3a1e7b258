"""Your own data as a task: classification, multiple choice or token classification from local files or a dataset.

The user's files become the same records the benchmark readers produce (``PairExample``, ``ChoiceExample``,
``TokenExample``), so encoding, training, evaluation, prediction and probing work unchanged. Usage::

    spec = CustomTaskSpec("classification", train_file="train.csv", validation_file="dev.csv",
                          text_columns=["premise", "hypothesis"], label_column="label")
    task = build_custom_task(spec)              # reads the training split for its labels (sorted)
    train = task.load("train")                  # list of PairExample; data_dir is ignored
    scores = task.score(val_examples, preds)    # {"accuracy": ..., "macro_f1": ...}
    saved = {"spec": task.spec.to_dict(), "labels": list(task.labels)}     # what an adapter records
    again = build_custom_task(CustomTaskSpec.from_dict(saved["spec"]), labels=saved["labels"])   # no file read

Kinds and what they read (one flag per field of ``CustomTaskSpec``):

* ``classification``: one or two ``--text-columns`` (text_a, text_b) and a ``--label-column``. Labels are names:
  strings as written; JSON integers and booleans become their ``str()`` (``1`` -> ``"1"``, ``true`` -> ``"True"``);
  a dataset's ClassLabel integers become the class names.
* ``multiple-choice``: a ``--context-column``, two or more ``--choice-columns`` and a ``--label-column`` naming the
  right choice, either by its column name (``"b"``) or by its 0-based index (``1``, or ``"1"`` in CSV); a column
  name is matched first. Records have one row ``(context, choice_k)`` per choice; ``labels`` are the choice
  column names in the order given.
* ``token-classification``: CoNLL column files (token first, tag last, any columns between; whitespace-separated,
  or tab-separated when the line has a tab; a blank line between sentences; ``-DOCSTART-`` lines skipped) or rows
  with a ``--tokens-column`` list of strings and a ``--tags-column`` list of tags (JSON lines, Parquet, datasets).
  Tags are BIO (IOB2) or IOBES, detected from the training tags (any ``E-``/``S-`` tag: IOBES) unless
  ``--tag-scheme`` says; gold tags must be well formed in that scheme (an ``I-X`` continues an ``X`` entity; IOBES
  entities end with ``E-X``/``S-X``). The label list is the training tags plus, for each entity type seen, every
  prefix of the scheme (so an ``I-X`` first met in dev is not an error), sorted.

File formats, by extension unless ``--file-format`` is given: ``.csv`` (RFC 4180 quoting, header row), ``.tsv``
(tab-separated, header row, no quoting: quote characters are text), ``.jsonl``/``.ndjson`` (one JSON object a
line), ``.json`` (JSON lines, or one JSON array of objects), ``.parquet``/``.pq`` and ``.arrow`` (read by
``datasets``), ``.conll``/``.txt``/``.iob``/``.bio``/``.iobes`` (CoNLL columns; token classification only). CSV,
TSV, JSON and CoNLL are read here, strictly as UTF-8, so that every problem is a ``DataError`` at its line and
nothing is type-guessed (a CSV label ``01`` stays ``"01"``); Parquet and Arrow go through ``datasets`` (errors name
the row). ``--dataset NAME`` reads a folder written by ``Dataset(Dict).save_to_disk`` (``datasets.load_from_disk``),
any other existing folder through ``datasets.load_dataset(folder)``, else the hub (online only); its splits are
``train``, ``validation`` (or ``val``/``dev``/``valid``) and ``test``.

Line numbers in errors: CSV/TSV, the physical line where the row starts (data row + 1 for the header in a file
without multi-line quoted fields); JSON lines and CoNLL, the line; a JSON array, the line and column of the object;
Parquet, Arrow and datasets have no lines, so the message names the 1-based row (``path: row 3: ...``).

Metrics: classification reports ``accuracy`` and ``macro_f1`` (F1 averaged over all training labels),
multiple-choice ``accuracy``, token classification seqeval's entity ``f1``, ``precision`` and ``recall``
(BIO: seqeval's default CoNLL rules, as the benchmark NER tasks; IOBES: seqeval strict mode with the IOBES scheme).
``--metric`` picks the selection metric among those; the defaults are ``accuracy`` and ``f1``.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from . import metrics
from .errors import DataError, describe, read_text, show, surrogate_free, text_lines
from .ner import json_array_items
from .records import ChoiceExample, PairExample, TokenExample
from .registry import SPLITS, Task
from .superglue import read_jsonl

KINDS = ("classification", "multiple-choice", "token-classification")
HEADS = {"classification": "classification", "multiple-choice": "multiple_choice",
         "token-classification": "token_classification"}
# Metrics each kind reports; the first is the default selection metric.
METRICS: dict[str, tuple[str, ...]] = {"classification": ("accuracy", "macro_f1"), "multiple-choice": ("accuracy",),
                                       "token-classification": ("f1", "precision", "recall")}
SCHEMES = ("BIO", "IOBES")
_SCHEME_ALIASES = {"BIO": "BIO", "IOB2": "BIO", "IOBES": "IOBES", "BIOES": "IOBES"}
_PREFIXES = {"BIO": ("B", "I"), "IOBES": ("B", "I", "E", "S")}
FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "arrow", "conll")
_EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
               ".parquet": "parquet", ".pq": "parquet", ".arrow": "arrow", ".conll": "conll", ".txt": "conll",
               ".iob": "conll", ".bio": "conll", ".iobes": "conll"}
_TOKEN_FORMATS = ("conll", "jsonl", "json", "parquet", "arrow")
_TABLE_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet", "arrow")
_SPLIT_NAMES = {"train": ("train",), "val": ("validation", "val", "dev", "valid"), "test": ("test",)}
_FLAGS = {"kind": "--task", "train_file": "--train-file", "validation_file": "--validation-file",
          "test_file": "--test-file", "dataset": "--dataset", "dataset_config": "--dataset-config",
          "text_columns": "--text-columns", "label_column": "--label-column", "context_column": "--context-column",
          "choice_columns": "--choice-columns", "tokens_column": "--tokens-column", "tags_column": "--tags-column",
          "tag_scheme": "--tag-scheme", "metric": "--metric", "file_format": "--file-format"}


# ---------------------------------------------------------------- the task definition


@dataclass
class CustomTaskSpec:
    """What a custom task reads and how; JSON-able (``to_dict``/``from_dict``) so an adapter can record it.

    ``check()`` raises ``ValueError`` naming the command-line flag for any bad value or combination.

    >>> CustomTaskSpec("classification", train_file="t.csv", validation_file="d.csv", text_columns=["text"],
    ...                label_column="label").check()
    """

    kind: str
    train_file: str | None = None
    validation_file: str | None = None
    test_file: str | None = None
    dataset: str | None = None
    dataset_config: str | None = None
    text_columns: list[str] = field(default_factory=list)
    label_column: str | None = None
    context_column: str | None = None
    choice_columns: list[str] = field(default_factory=list)
    tokens_column: str = "tokens"
    tags_column: str = "tags"
    tag_scheme: str | None = None  # None: detected from the training tags
    metric: str | None = None  # None: the kind's default (accuracy; f1 for tokens)
    file_format: str | None = None  # None: by each file's extension

    def check(self) -> None:
        """Refuse bad values and combinations, naming the flag."""
        for name in ("train_file", "validation_file", "test_file", "dataset", "dataset_config", "label_column",
                     "context_column", "tag_scheme", "metric", "file_format"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{_FLAGS[name]} should be a non-empty string, got {describe(value)}")
        for name in ("kind", "tokens_column", "tags_column"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{_FLAGS[name]} should be a non-empty string, got {describe(value)}")
        for name in ("text_columns", "choice_columns"):
            value = getattr(self, name)
            if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) and c for c in value):
                raise ValueError(f"{_FLAGS[name]} should be a list of non-empty column names, got {describe(value)}")
            if len(set(value)) != len(value):
                raise ValueError(f"{_FLAGS[name]} names a column twice: {list(value)}")
        if self.kind not in KINDS:
            raise ValueError(f"--task {self.kind!r} is not a custom task kind; expected one of {list(KINDS)}")
        # where the data comes from
        files = {"--train-file": self.train_file, "--validation-file": self.validation_file,
                 "--test-file": self.test_file}
        if self.dataset is not None:
            given = [flag for flag, value in files.items() if value is not None]
            if given:
                raise ValueError(f"--dataset cannot be combined with {', '.join(given)} (one source of data)")
            if self.file_format is not None:
                raise ValueError("--file-format applies to --train-file/--validation-file/--test-file, not --dataset")
        else:
            if self.dataset_config is not None:
                raise ValueError("--dataset-config needs --dataset")
            if self.train_file is None:
                raise ValueError(f"{self.kind}: no training data; give --train-file and --validation-file, or --dataset")
            if self.validation_file is None:
                raise ValueError("--validation-file is required with --train-file (the selection metric needs it)")
        if self.file_format is not None and self.file_format not in FORMATS:
            raise ValueError(f"--file-format {self.file_format!r} is not one of {list(FORMATS)}")
        # the columns each kind reads, and none it would ignore
        used: dict[str, object] = {}
        if self.kind == "classification":
            if not 1 <= len(self.text_columns) <= 2:
                raise ValueError(f"--text-columns takes one or two columns for classification, "
                                 f"got {len(self.text_columns)}: {list(self.text_columns)}")
            if self.label_column is None:
                raise ValueError("--label-column is required for classification")
            used = {"--text-columns": self.text_columns, "--label-column": [self.label_column]}
            self._refuse("context_column", "choice_columns", "tokens_column", "tags_column", "tag_scheme")
        elif self.kind == "multiple-choice":
            if self.context_column is None:
                raise ValueError("--context-column is required for multiple-choice")
            if len(self.choice_columns) < 2:
                raise ValueError(f"--choice-columns takes two or more columns for multiple-choice, "
                                 f"got {list(self.choice_columns)}")
            if self.label_column is None:
                raise ValueError("--label-column is required for multiple-choice (the right choice's name or index)")
            used = {"--context-column": [self.context_column], "--choice-columns": self.choice_columns,
                    "--label-column": [self.label_column]}
            self._refuse("text_columns", "tokens_column", "tags_column", "tag_scheme")
        else:
            used = {"--tokens-column": [self.tokens_column], "--tags-column": [self.tags_column]}
            self._refuse("text_columns", "label_column", "context_column", "choice_columns")
            if self.tag_scheme is not None and self.tag_scheme.upper() not in _SCHEME_ALIASES:
                raise ValueError(f"--tag-scheme {self.tag_scheme!r} is not one of {list(SCHEMES)}")
            if self.file_format in ("csv", "tsv"):
                raise ValueError(f"--file-format {self.file_format} cannot hold token lists; token-classification "
                                 f"reads {list(_TOKEN_FORMATS)}")
        seen: dict[str, str] = {}
        for flag, columns in used.items():
            for column in columns:
                if column in seen:
                    raise ValueError(f"column {column!r} is given to both {seen[column]} and {flag}")
                seen[column] = flag
        if self.metric is not None and _metric_key(self.metric) not in METRICS[self.kind]:
            raise ValueError(f"--metric {self.metric!r} is not reported by {self.kind}; expected one of "
                             f"{list(METRICS[self.kind])}")

    def _refuse(self, *names: str) -> None:
        defaults = {f.name: (f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
                    for f in dataclasses.fields(self)}
        for name in names:
            if getattr(self, name) != defaults[name]:
                raise ValueError(f"{_FLAGS[name]} is not used by {self.kind}; leave it out")

    @property
    def selection_metric(self) -> str:
        """``metric`` as its score key (``macro-f1`` -> ``macro_f1``), or the kind's default."""
        return METRICS[self.kind][0] if self.metric is None else _metric_key(self.metric)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-able (lists for the column lists)."""
        out = dataclasses.asdict(self)
        out["text_columns"], out["choice_columns"] = list(self.text_columns), list(self.choice_columns)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CustomTaskSpec":
        """The spec ``to_dict`` wrote, checked; unknown keys are refused (a newer or corrupted record)."""
        if not isinstance(data, dict):
            raise ValueError(f"a custom task spec should be a JSON object, got {describe(data)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"custom task spec: unknown keys {unknown}; expected some of {sorted(known)}")
        if "kind" not in data:
            raise ValueError("custom task spec: missing key 'kind'")
        spec = cls(**{k: (list(v) if k in ("text_columns", "choice_columns") and isinstance(v, (list, tuple)) else v)
                      for k, v in data.items()})
        spec.check()
        return spec


def _metric_key(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def parse_columns(value: str | None, flag: str) -> list[str]:
    """``"premise,hypothesis"`` -> ``["premise", "hypothesis"]`` for the CLI; empty names are a ValueError."""
    if value is None:
        return []
    columns = [c.strip() for c in value.split(",")]
    if not all(columns):
        raise ValueError(f"{flag} {value!r}: empty column name (expected names separated by commas)")
    return columns


# ---------------------------------------------------------------- rows from files and datasets


class _Loc:
    """Where a row (or a token of it) is, for DataErrors: a line (and column), or a row number where there are
    no lines (Parquet, Arrow, datasets)."""

    __slots__ = ("path", "line", "column", "row")

    def __init__(self, path: str, line: int | None, column: int | None = None, row: int | None = None) -> None:
        self.path, self.line, self.column, self.row = path, line, column, row

    def error(self, message: str) -> DataError:
        if self.row is not None:
            message = f"row {self.row}: {message}"
        return DataError(self.path, self.line, message, column=self.column)

    @property
    def idx(self) -> int:
        """The record's idx: its line, or its 0-based row for tables."""
        return self.line if self.row is None else self.row - 1


@dataclass
class _Table:
    """Rows of one split as dicts, with where each came from. ``columns`` is the header/schema when the source has
    one (CSV, Parquet, datasets); JSON rows each have their own keys."""

    where: str
    rows: list[tuple[_Loc, dict]]
    columns: list[str] | None = None
    header_line: int | None = None

    def require(self, columns: Sequence[str], purpose: dict[str, str]) -> None:
        """Schema sources: every needed column is there (one error for the whole file)."""
        if self.columns is None:
            return
        for column in columns:
            if column not in self.columns:
                raise DataError(self.where, self.header_line,
                                f"no column {column!r} ({purpose[column]}); columns present: {_listed(self.columns)}")


def _listed(names) -> list:
    names = list(names)
    return names[:12] + (["..."] if len(names) > 12 else [])


def file_format_of(path: str | os.PathLike, forced: str | None = None) -> str:
    """The format name for ``path``: ``forced`` if given, else by extension (DataError for an unknown one)."""
    if forced is not None:
        return forced
    fmt = _EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DataError(path, None, f"unknown file extension {Path(path).suffix!r}; expected one of "
                                    f"{sorted(_EXTENSIONS)} (or give --file-format)")
    return fmt


def _read_csv(path: Path, delimiter: str) -> _Table:
    text = read_text(path)
    # TSV has no quoting (IANA text/tab-separated-values): a quote is text, as in GLUE's files.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting, strict=True)
    header: list[str] | None = None
    header_line = None
    rows: list[tuple[_Loc, dict]] = []
    end = 0  # line where the previous row ended: a row starts on the next one
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if not fields:  # blank line
                continue
            if header is None:
                header, header_line = fields, start
                dupes = sorted(c for c, n in Counter(fields).items() if n > 1)
                if dupes:
                    raise DataError(path, start, f"duplicate column names {dupes} in the header")
                continue
            if len(fields) != len(header):
                raise DataError(path, start, f"expected {len(header)} fields (columns {_listed(header)}), "
                                             f"found {len(fields)}")
            rows.append((_Loc(str(path), start), dict(zip(header, fields))))
    except csv.Error as err:  # the row that starts after the last good one
        raise DataError(path, end + 1, f"malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({err})") from None
    if header is None:
        raise DataError(path, None, "empty file: expected a header row, then one row per example")
    if not rows:
        raise DataError(path, None, "no examples: the file has a header row but no data rows")
    return _Table(str(path), rows, header, header_line)


def _read_json(path: Path, allow_array: bool) -> _Table:
    """JSON lines, or (``allow_array``: a ``.json`` file starting with ``[``) one array of objects."""
    text = read_text(path)
    if allow_array and text.lstrip(" \t\r\n").startswith("["):
        items = json_array_items(path, text)
        if not items:
            raise DataError(path, None, "no examples: the JSON array is empty")
        rows = []
        for line, column, obj in items:
            if not isinstance(obj, dict):
                raise DataError(path, line, f"expected a JSON object per example, got {describe(obj)}", column=column)
            rows.append((_Loc(str(path), line, column), obj))
        return _Table(str(path), rows)
    return _Table(str(path), [(_Loc(str(path), line), obj) for line, obj in read_jsonl(path)])


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[Any]:
    """``datasets`` with its progress bars off (restored after); a clear error when it is not installed."""
    try:
        import datasets
    except ImportError:
        raise RuntimeError("reading Parquet, Arrow or --dataset needs the 'datasets' package: "
                           "pip install 'adaprefix[hub]'") from None
    was_off = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield datasets
    finally:
        if not was_off:
            datasets.utils.enable_progress_bars()


def _class_name(value: Any, names: Sequence[str]) -> Any:
    """A ClassLabel integer as its name; -1 (the library's "no label") as None; anything else unchanged."""
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return names[value]
        if value == -1:
            return None
    return value


def _class_decoder(feature: Any) -> Callable[[Any], Any] | None:
    """Turns a ClassLabel column (or a list-of-ClassLabel column) into names; None for any other feature."""
    names = getattr(feature, "names", None)
    if names is not None:
        return lambda v: _class_name(v, names)
    inner = getattr(getattr(feature, "feature", None), "names", None)
    if inner is not None:
        return lambda v: [_class_name(x, inner) for x in v] if isinstance(v, list) else v
    return None


def _table_from_dataset(ds: Any, where: str, columns: Sequence[str], raw: Sequence[str] = ()) -> _Table:
    """A ``datasets.Dataset`` as rows of plain values (only ``columns`` are kept), class names for ClassLabels
    except in the ``raw`` columns (a multiple-choice label is the choice's index, whatever its class names)."""
    present = list(ds.column_names)
    keep = [c for c in columns if c in present]
    decoders = {c: d for c in keep if c not in raw and (d := _class_decoder(ds.features[c])) is not None}
    data = ds.select_columns(keep).to_list() if keep else [{} for _ in range(len(ds))]
    rows = []
    for i, row in enumerate(data):
        for name, decode in decoders.items():
            row[name] = decode(row[name])
        rows.append((_Loc(where, None, row=i + 1), row))
    if not rows:
        raise DataError(where, None, "no examples: the split is empty")
    return _Table(where, rows, present, None)


def _read_with_datasets(path: Path, fmt: str, columns: Sequence[str], raw: Sequence[str]) -> _Table:
    if not path.exists():
        raise DataError(path, None, "file not found")
    if not path.is_file():
        raise DataError(path, None, f"not a regular file (expected a {fmt} file)")
    with _quiet_datasets() as datasets:
        try:
            if fmt == "arrow":
                ds = datasets.Dataset.from_file(str(path), in_memory=True)
            else:
                import tempfile

                # a private cache, gone afterwards: no stale copies of the user's file in ~/.cache
                with tempfile.TemporaryDirectory(prefix="adaprefix-parquet-") as cache:
                    ds = datasets.Dataset.from_parquet(str(path), keep_in_memory=True, cache_dir=cache)
        except Exception as err:  # pyarrow/datasets errors for corrupt or foreign files
            raise DataError(path, None, f"cannot read as {fmt.capitalize()} ({type(err).__name__}: "
                                        f"{str(err)[:200]})") from None
    return _table_from_dataset(ds, str(path), columns, raw)


def _read_table(path: Path, fmt: str, columns: Sequence[str], raw: Sequence[str] = ()) -> _Table:
    if fmt in ("csv", "tsv"):
        return _read_csv(path, "," if fmt == "csv" else "\t")
    if fmt in ("jsonl", "json"):
        return _read_json(path, fmt == "json")
    return _read_with_datasets(path, fmt, columns, raw)


def _read_conll(path: Path) -> list[tuple[_Loc, list[str], list[str], list[_Loc]]]:
    """(first token's location, words, tags, each tag's location) per sentence of a CoNLL column file."""
    text = read_text(path)
    sentences = []
    words: list[str] = []
    tags: list[str] = []
    locs: list[_Loc] = []
    width = None  # the first token line's column count: every token line must have it

    def flush() -> None:
        if words:
            sentences.append((locs[0], list(words), list(tags), list(locs)))
            words.clear(), tags.clear(), locs.clear()

    for lineno, line in text_lines(text):
        if not line.strip():
            flush()
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if len(fields) < 2:
            raise DataError(path, lineno, f"expected a token and a tag (columns: token ... tag), found "
                                          f"{len(fields)} field: {line!r:.80}")
        if width is None:
            width = len(fields)
        elif len(fields) != width:
            raise DataError(path, lineno, f"expected {width} columns like the first token line, found "
                                          f"{len(fields)}: {line!r:.80}")
        words.append(fields[0])
        tags.append(fields[-1].strip())
        locs.append(_Loc(str(path), lineno))
    flush()
    if not sentences:
        raise DataError(path, None, "empty file: no sentences (expected token ... tag lines, a blank line between "
                                    "sentences)")
    return sentences


# ---------------------------------------------------------------- rows -> records


def _text(loc: _Loc, row: dict, column: str) -> str:
    if column not in row:
        raise loc.error(f"missing column {column!r} (fields present: {_listed(sorted(row))})")
    value = row[column]
    if not isinstance(value, str):
        raise loc.error(f"column {column!r} should be a string (text), got {describe(value)}")
    if not surrogate_free(value):
        raise loc.error(f"column {column!r} contains a lone surrogate (e.g. \\ud800); expected Unicode text")
    return value


def _class_label(loc: _Loc, row: dict, column: str) -> str:
    """A classification label as its name: strings as written; integers and booleans as ``str()``."""
    if column not in row:
        raise loc.error(f"missing label column {column!r} (fields present: {_listed(sorted(row))})")
    value = row[column]
    if value is None or value == "" or (isinstance(value, float) and value != value):  # NaN: pandas' missing value
        raise loc.error(f"missing label: column {column!r} is empty")
    if isinstance(value, (bool, int)):
        return str(value)
    if not isinstance(value, str):
        raise loc.error(f"label column {column!r} should be a string or an integer, got {describe(value)}")
    if not surrogate_free(value):
        raise loc.error(f"label column {column!r} contains a lone surrogate; expected Unicode text")
    return value


def _choice_label(loc: _Loc, row: dict, column: str, choices: Sequence[str]) -> int:
    """The right choice's index, from a choice column name or a 0-based index (integer or decimal string)."""
    if column not in row:
        raise loc.error(f"missing label column {column!r} (fields present: {_listed(sorted(row))})")
    value = row[column]
    if value is None or value == "":
        raise loc.error(f"missing label: column {column!r} is empty")
    index = value
    if isinstance(value, str):
        if value in choices:
            return list(choices).index(value)
        if value.strip().isdecimal() and value.strip().isascii():
            index = int(value)
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(choices):
        return index
    raise loc.error(f"label {show(value)} in column {column!r} is neither a choice column name {list(choices)} "
                    f"nor a choice index 0..{len(choices) - 1}")


def _token_lists(loc: _Loc, row: dict, tokens_column: str, tags_column: str | None
                 ) -> tuple[list[str], list[str] | None]:
    for column in (tokens_column, tags_column):
        if column is not None and column not in row:
            raise loc.error(f"missing column {column!r} (fields present: {_listed(sorted(row))})")
    words = row[tokens_column]
    if not isinstance(words, list):
        raise loc.error(f"column {tokens_column!r} should be a list of strings, got {describe(words)}")
    for i, word in enumerate(words):
        if not isinstance(word, str):
            raise loc.error(f"{tokens_column}[{i}] should be a string, got {describe(word)}")
        if not surrogate_free(word):
            raise loc.error(f"{tokens_column}[{i}] contains a lone surrogate (e.g. \\ud800); expected Unicode text")
    if tags_column is None:
        return words, None
    tags = row[tags_column]
    if not isinstance(tags, list):
        raise loc.error(f"column {tags_column!r} should be a list of tag strings, got {describe(tags)}")
    for i, tag in enumerate(tags):
        if not isinstance(tag, str):
            raise loc.error(f"{tags_column}[{i}] should be a tag string such as 'B-PER', got {describe(tag)}")
    if len(tags) != len(words):
        raise loc.error(f"{len(words)} tokens but {len(tags)} tags (expected one tag per token)")
    if not words:
        raise loc.error(f"column {tokens_column!r} is empty (expected a sentence of at least one token)")
    return words, tags


def _scheme_of(tags) -> str:
    """IOBES when any tag has an E- or S- prefix, else BIO."""
    return "IOBES" if any(t[:2] in ("E-", "S-") for t in tags) else "BIO"


def _check_tag_sequence(tags: list[str], loc_of: Callable[[int], _Loc], scheme: str,
                        known: frozenset | None) -> None:
    """Every tag valid for ``scheme`` (and in ``known`` when given), and the sequence well formed; ``loc_of(i)``
    locates tag i for the error."""
    prefixes = _PREFIXES[scheme]
    open_type = None  # the entity type the previous tag leaves open (after B-X or I-X)
    for i, tag in enumerate(tags):
        if tag != "O" and not (len(tag) > 2 and tag[0] in prefixes and tag[1] == "-"):
            raise loc_of(i).error(f"tag {show(tag)} is not {scheme} (expected 'O' or one of "
                                  f"{[p + '-TYPE' for p in prefixes]})")
        if known is not None and tag not in known:
            raise loc_of(i).error(f"tag {show(tag)} was not seen in the training split (its entity type is unknown; "
                                  f"training tags: {_listed(sorted(known))})")
        prefix, kind = tag[0], tag[2:]
        if scheme == "IOBES" and open_type is not None and not (prefix in "IE" and kind == open_type):
            raise loc_of(i).error(f"malformed IOBES tags: {tag!r} follows an open {open_type} entity (expected "
                                  f"I-{open_type} or E-{open_type} until the entity ends)")
        if prefix in "IE" and kind != open_type:
            raise loc_of(i).error(f"malformed {scheme} tags: {tag!r} does not continue an entity of type {kind} "
                                  f"(expected B-{kind} or I-{kind} before it)")
        open_type = kind if prefix in "BI" else None
    if scheme == "IOBES" and open_type is not None:
        raise loc_of(len(tags) - 1).error(f"malformed IOBES tags: the {open_type} entity is not closed by "
                                          f"E-{open_type} at the end of the sentence")


def _complete_tags(tags, scheme: str) -> tuple[str, ...]:
    """Training tags plus every prefix of the scheme for each entity type seen, and 'O'; sorted."""
    types = {t[2:] for t in tags if t != "O"}
    return tuple(sorted({"O", *tags} | {f"{p}-{t}" for t in types for p in _PREFIXES[scheme]}))


@dataclass
class _Parsed:
    """Records of one split, with each record's location (and each tag's, for tokens) for later label checks."""

    records: list
    locs: list[_Loc]
    tag_locs: list[Callable[[int], _Loc]] = field(default_factory=list)  # tokens: record -> (tag i -> location)


def _columns_needed(spec: CustomTaskSpec, labelled: bool) -> dict[str, str]:
    """column -> what it is for (messages)."""
    if spec.kind == "classification":
        out = {c: "--text-columns" for c in spec.text_columns}
    elif spec.kind == "multiple-choice":
        out = {spec.context_column: "--context-column", **{c: "--choice-columns" for c in spec.choice_columns}}
    else:
        out = {spec.tokens_column: "--tokens-column"}
        if labelled:
            out[spec.tags_column] = "--tags-column"
        return out
    if labelled:
        out[spec.label_column] = "--label-column"
    return out


def _raw_columns(spec: CustomTaskSpec) -> list[str]:
    """Columns whose ClassLabel integers stay integers: the multiple-choice label (an index)."""
    return [spec.label_column] if spec.kind == "multiple-choice" else []


def _parse_table(spec: CustomTaskSpec, table: _Table, labelled: bool, idx_field: bool = False) -> _Parsed:
    """Records from rows; ``labelled=False`` (prediction inputs) ignores labels, ``idx_field`` takes a row's
    ``idx`` field as its idx when present."""
    needed = _columns_needed(spec, labelled)
    table.require(list(needed), needed)
    records, locs, tag_locs = [], [], []
    for loc, row in table.rows:
        idx = row.get("idx", loc.idx) if idx_field else loc.idx
        if spec.kind == "classification":
            texts = [_text(loc, row, c) for c in spec.text_columns]
            label = _class_label(loc, row, spec.label_column) if labelled else None
            records.append(PairExample(idx, texts[0], texts[1] if len(texts) > 1 else None, label))
        elif spec.kind == "multiple-choice":
            context = _text(loc, row, spec.context_column)
            rows = [(context, _text(loc, row, c)) for c in spec.choice_columns]
            label = _choice_label(loc, row, spec.label_column, spec.choice_columns) if labelled else None
            records.append(ChoiceExample(idx, rows, label))
        else:
            words, tags = _token_lists(loc, row, spec.tokens_column, spec.tags_column if labelled else None)
            meta = {"line": loc.line} if loc.line is not None else {"row": loc.row}
            records.append(TokenExample(idx, list(words), None if tags is None else list(tags), meta))
            # a row's tags share its line: the message names the tag's position
            tag_locs.append(lambda i, loc=loc: _TagLoc(loc, spec.tags_column, i))
        locs.append(loc)
    return _Parsed(records, locs, tag_locs)


class _TagLoc(_Loc):
    """A tag inside a row's tag list: the row's location, the message prefixed with ``tags[i]``."""

    __slots__ = ("base", "prefix")

    def __init__(self, base: _Loc, column: str, i: int) -> None:
        super().__init__(base.path, base.line, base.column, base.row)
        self.base, self.prefix = base, f"{column}[{i}]: "

    def error(self, message: str) -> DataError:
        return self.base.error(self.prefix + message)


def _read_split_file(spec: CustomTaskSpec, path: Path, labelled: bool = True) -> _Parsed:
    """One file of the task's kind -> records (labels not yet checked against the training labels)."""
    fmt = file_format_of(path, spec.file_format)
    if spec.kind == "token-classification":
        if fmt not in _TOKEN_FORMATS:
            raise DataError(path, None, f"token-classification reads {list(_TOKEN_FORMATS)} files, not {fmt} "
                                        "(give CoNLL columns or JSON lines with token and tag lists)")
        if fmt == "conll":
            records, locs, tag_locs = [], [], []
            for loc, words, tags, tlocs in _read_conll(path):
                records.append(TokenExample(loc.line, words, tags if labelled else None, {"line": loc.line}))
                locs.append(loc)
                tag_locs.append(tlocs.__getitem__)  # each tag has its own line
            return _Parsed(records, locs, tag_locs)
    elif fmt not in _TABLE_FORMATS:
        raise DataError(path, None, f"{spec.kind} reads {list(_TABLE_FORMATS)} files, not {fmt}")
    table = _read_table(path, fmt, list(_columns_needed(spec, labelled)), _raw_columns(spec))
    return _parse_table(spec, table, labelled)


# ---------------------------------------------------------------- the task


class _FileReader:
    """``Task.reader``: ``reader(path, has_labels)`` reads any file of the task's kind, checked against its labels
    (e.g. to evaluate on another file)."""

    def __init__(self, spec: CustomTaskSpec, labels: tuple[str, ...], scheme: str | None) -> None:
        self.spec, self.labels, self.scheme = spec, labels, scheme

    def __call__(self, path: Path, has_labels: bool = True) -> list:
        parsed = _read_split_file(self.spec, Path(path), has_labels)
        if has_labels:
            _check_labels(self.spec, parsed, self.labels, self.scheme)
        return parsed.records


def _check_labels(spec: CustomTaskSpec, parsed: _Parsed, labels: Sequence[str] | None, scheme: str | None) -> None:
    """Gold labels known (``labels`` None: the training split itself) and tag sequences well formed."""
    if spec.kind == "token-classification":
        known = None if labels is None else frozenset(labels)
        for ex, tlocs in zip(parsed.records, parsed.tag_locs):
            _check_tag_sequence(ex.tags, tlocs, scheme, known)
    elif spec.kind == "classification" and labels is not None:
        known = set(labels)
        for ex, loc in zip(parsed.records, parsed.locs):
            if ex.label not in known:
                raise loc.error(f"label {ex.label!r} was not seen in the training split (training labels: "
                                f"{_listed(labels)})")


@dataclass(frozen=True)
class CustomTask(Task):
    """A ``Task`` over the user's data (``family == "custom"``); ``spec`` is the resolved definition to record
    (absolute file paths, detected tag scheme, selection metric filled in)."""

    spec: CustomTaskSpec | None = None
    tag_scheme: str | None = None  # token classification: "BIO" or "IOBES"
    _cache: dict = field(default_factory=dict, compare=False, repr=False)  # split -> (signature, records)

    @property
    def split_has_labels(self) -> dict[str, bool]:
        # every split of the user's data is labelled (unlabelled inputs go through read_custom_records);
        # whether a test split exists at all is has_split("test")
        return {"train": True, "val": True, "test": True}

    def has_split(self, split: str) -> bool:
        """Whether ``split`` exists: files, whether the spec names one (--test-file); a dataset, whether it has
        the split (this loads the dataset, once)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if self.spec.dataset is None:
            return split in self.files
        data = _dataset_dict(self.spec, self._cache)
        return any(name in data for name in _SPLIT_NAMES[split])

    def path(self, split: str, data_dir: str | Path | None = None) -> Path:
        """The file of ``split`` (``data_dir`` is ignored: custom files are named by the spec)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if self.spec.dataset is not None:
            raise ValueError(f"{self.spec.dataset}: a dataset, not files")
        if split not in self.files:
            raise DataError(f"{self.name} task", None, f"no {split} split (give --test-file)")
        return Path(self.files[split])

    def load(self, split: str, data_dir: str | Path | None = None) -> list:
        """Records of ``split`` ("train", "val" or "test"); ``data_dir`` is ignored. Labels of val and test must have
        been seen in training (a DataError at the row otherwise); a split that is not given is a DataError."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        if self.spec.dataset is not None:
            signature = None
        else:
            path = self.path(split)
            try:
                stat = path.stat()
                signature = (stat.st_mtime_ns, stat.st_size)
            except OSError:
                signature = None
        cached = self._cache.get(split)
        if cached is not None and signature is not None and cached[0] == signature:
            return list(cached[1])
        if self.spec.dataset is not None:
            parsed = _parse_table(self.spec, _dataset_split(self.spec, split, self._cache), True)
        else:
            parsed = _read_split_file(self.spec, self.path(split), True)
        _check_labels(self.spec, parsed, self.labels, self.tag_scheme)
        self._cache[split] = (signature, parsed.records)
        return list(parsed.records)

    def score(self, examples: list, predictions: list) -> dict[str, float]:
        """accuracy and macro_f1 (classification), accuracy (multiple-choice), entity f1/precision/recall (tokens)."""
        if self.head == "token_classification":
            gold = [e.tags for e in examples]
            if self.tag_scheme == "IOBES":
                return iobes_scores(gold, predictions)
            return metrics.ner_scores(gold, predictions)
        gold = [e.label for e in examples]
        if self.head == "multiple_choice":
            return metrics.accuracy(gold, predictions)
        return metrics.accuracy_and_macro_f1(gold, predictions, self.label_names)


def iobes_scores(gold: list[list[str]], pred: list[list[str]]) -> dict[str, float]:
    """Entity-level micro precision, recall and F1 under seqeval's strict mode with the IOBES scheme (an entity
    counts only when its prefixes are exactly right; ill-formed predicted spans count as nothing)."""
    from seqeval.metrics import f1_score, precision_score, recall_score
    from seqeval.scheme import IOBES

    kwargs = dict(mode="strict", scheme=IOBES, zero_division=0)
    return {"f1": float(f1_score(gold, pred, **kwargs)), "precision": float(precision_score(gold, pred, **kwargs)),
            "recall": float(recall_score(gold, pred, **kwargs))}


def _dataset_dict(spec: CustomTaskSpec, cache: dict) -> Any:
    """The whole dataset (every split), loaded once per task."""
    if "dataset" in cache:
        return cache["dataset"]
    name = spec.dataset
    folder = Path(name)
    where = name if folder.is_dir() else f"hub:{name}"
    saved = folder.is_dir() and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file())
    if saved and spec.dataset_config is not None:
        raise ValueError(f"--dataset-config applies to hub datasets; {name} is a saved dataset folder")
    with _quiet_datasets() as datasets:
        try:
            if saved:
                data = datasets.load_from_disk(str(folder))
            else:
                data = datasets.load_dataset(name, spec.dataset_config)
        except Exception as err:  # network, missing dataset, corrupt folder: say what happened, no traceback
            hint = "" if folder.is_dir() else "; hub datasets need a network connection (or save_to_disk a copy)"
            raise DataError(where, None, f"could not load the dataset ({type(err).__name__}: {str(err)[:300]}){hint}") \
                from None
    if not isinstance(data, datasets.DatasetDict):
        raise DataError(where, None, "holds a single split; expected a DatasetDict with 'train' and 'validation' "
                                     "splits (DatasetDict.save_to_disk)")
    cache["dataset"] = data
    return data


def _dataset_split(spec: CustomTaskSpec, split: str, cache: dict) -> _Table:
    data = _dataset_dict(spec, cache)
    where = spec.dataset if Path(spec.dataset).is_dir() else f"hub:{spec.dataset}"
    names = _SPLIT_NAMES[split]
    found = next((n for n in names if n in data), None)
    if found is None:
        raise DataError(where, None, f"no {split} split: expected one named {' or '.join(map(repr, names))}; "
                                     f"splits present: {sorted(data)}")
    return _table_from_dataset(data[found], f"{where}[{found}]", list(_columns_needed(spec, True)),
                               _raw_columns(spec))


def _resolved_spec(spec: CustomTaskSpec) -> CustomTaskSpec:
    """Absolute file paths (and a local dataset folder's), the tag scheme's canonical name, the metric's key."""
    out = dataclasses.replace(spec, text_columns=list(spec.text_columns), choice_columns=list(spec.choice_columns))
    for name in ("train_file", "validation_file", "test_file"):
        value = getattr(out, name)
        if value is not None:
            setattr(out, name, os.path.abspath(value))
    if out.dataset is not None and Path(out.dataset).is_dir():
        out.dataset = os.path.abspath(out.dataset)
    if out.tag_scheme is not None:
        out.tag_scheme = _SCHEME_ALIASES[out.tag_scheme.upper()]
    out.metric = spec.selection_metric
    return out


def build_custom_task(spec: CustomTaskSpec, labels: Sequence[str] | None = None) -> CustomTask:
    """The task ``spec`` defines. ``labels`` None reads the training split for them (sorted; for tokens with every
    scheme prefix of each entity type) and checks that the other given files exist; a saved label list (from an
    adapter) rebuilds the task without reading any file.

    >>> task = build_custom_task(spec)                                   # training
    >>> task = build_custom_task(spec, labels=["negative", "positive"])  # eval / predict / probe
    """
    spec.check()
    spec = _resolved_spec(spec)
    cache: dict = {}
    scheme = spec.tag_scheme
    if spec.kind == "multiple-choice":
        if labels is not None and list(labels) != list(spec.choice_columns):
            raise ValueError(f"saved labels {list(labels)} are not the --choice-columns {spec.choice_columns}")
    if labels is None:
        if spec.dataset is None:
            for name in ("validation_file", "test_file"):  # fail now, not after the first epoch
                path = Path(getattr(spec, name) or ".")
                if getattr(spec, name) is not None and not path.is_file():
                    what = "not a regular file" if path.exists() else "file not found"
                    raise DataError(path, None, f"{what} ({_FLAGS[name]})")
            where = spec.train_file
            parsed = _read_split_file(spec, Path(spec.train_file), True)
            stat = Path(spec.train_file).stat()
            signature = (stat.st_mtime_ns, stat.st_size)
        else:
            table = _dataset_split(spec, "train", cache)
            where = table.where
            parsed = _parse_table(spec, table, True)
            signature = None
        if spec.kind == "classification":
            labels = tuple(sorted({ex.label for ex in parsed.records}))
            if len(labels) < 2:
                raise DataError(where, None, f"the training split has a single label {labels[0]!r}; "
                                             "classification needs examples of two or more")
        elif spec.kind == "multiple-choice":
            labels = tuple(spec.choice_columns)
        else:
            all_tags = {t for ex in parsed.records for t in ex.tags}
            scheme = scheme or _scheme_of(all_tags)
            _check_labels(spec, parsed, None, scheme)
            if all_tags <= {"O"}:
                raise DataError(where, None, "the training split has no entity tags (every tag is 'O')")
            labels = _complete_tags(all_tags, scheme)
        cache["train"] = (signature, parsed.records)
    else:
        labels = tuple(labels)
        if not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
            raise ValueError(f"labels should be distinct non-empty strings, got {show(list(labels))}")
        if spec.kind == "token-classification":
            scheme = scheme or _scheme_of(labels)
            bad = [t for t in labels if t != "O" and not (len(t) > 2 and t[0] in _PREFIXES[scheme] and t[1] == "-")]
            if bad:
                raise ValueError(f"labels {bad[:5]} are not {scheme} tags")
    if spec.kind == "token-classification":
        spec.tag_scheme = scheme
    if spec.dataset is None:
        files = {split: path for split, path in (("train", spec.train_file), ("val", spec.validation_file),
                                                 ("test", spec.test_file)) if path is not None}
    else:  # names for messages; has_split() says which the dataset has
        files = {split: f"{spec.dataset}[{split}]" for split in SPLITS}
    tokens = spec.kind == "token-classification"
    return CustomTask(
        name=spec.kind, family="custom", head=HEADS[spec.kind], labels=tuple(labels), main_metric=spec.metric,
        files=files, reader=_FileReader(spec, tuple(labels), scheme), default_epochs=10, default_prefix_len=16,
        default_lr=1e-2, default_ft_lr=3e-5, default_max_length=128,
        schedule="exponential" if tokens else "linear", spec=spec, tag_scheme=scheme, _cache=cache)


# ---------------------------------------------------------------- prediction inputs, class statistics


def read_custom_records(task: CustomTask, path: str | os.PathLike) -> list:
    """Unlabelled records for ``adaprefix predict``: JSON lines (``.jsonl``/``.ndjson``/``.json``; a ``.json``
    array too) or CSV/TSV, by extension, with the task's columns (a label column, if present, is ignored). A row's
    ``idx`` field is its idx when present, else its line. Token classification reads JSON only (an empty token
    list is allowed and gets no tags)."""
    path = Path(path)
    spec = task.spec
    suffix = path.suffix.lower()
    fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}.get(suffix)
    if fmt is None or (spec.kind == "token-classification" and fmt in ("csv", "tsv")):
        allowed = ".jsonl or .json" if spec.kind == "token-classification" else ".jsonl, .json, .csv or .tsv"
        raise DataError(path, None, f"prediction inputs for {spec.kind} are {allowed} files, "
                                    f"not {suffix or 'no extension'!r}")
    if fmt in ("csv", "tsv"):
        table = _read_csv(path, "," if fmt == "csv" else "\t")
    else:
        table = _read_json(path, fmt == "json")
    return _parse_table(spec, table, labelled=False, idx_field=True).records


def _gold(examples: list, labels: Sequence[str]) -> list[str]:
    """Every gold label as its name: a record's label, a choice index's column name, or each token's tag."""
    out: list[str] = []
    for ex in examples:
        if isinstance(ex, TokenExample):
            out.extend(ex.tags or [])
        elif isinstance(ex, ChoiceExample):
            if ex.label is not None:
                out.append(labels[ex.label])
        elif ex.label is not None:
            out.append(ex.label)
    return out


def class_counts(examples: list, labels: Sequence[str]) -> dict[str, int]:
    """``{label: count}`` in label order (zero for labels absent): records per label, or tokens per tag.

    >>> class_counts(task.load("train"), task.labels)     # {"negative": 120, "positive": 80}
    """
    counts = Counter(_gold(examples, labels))
    unknown = sorted(set(counts) - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not in the label list {_listed(labels)}")
    return {label: counts.get(label, 0) for label in labels}


def class_weights(examples: list, labels: Sequence[str]) -> list[float]:
    """``--class-weights balanced``: per label, in label order, ``n_samples / (n_classes * count)`` (scikit-learn's
    "balanced" formula, over the labels present). A label with no training example gets the largest weight of the
    others: it never is a training target, and a dev/test gold of it is as rare as can be."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    counts = class_counts(examples, labels)
    present = [label for label in labels if counts[label]]
    if not present:
        raise ValueError("no labelled examples to weight classes by")
    y = np.array(_gold(examples, labels), dtype=object)
    weights = dict(zip(present, compute_class_weight("balanced", classes=np.array(present, dtype=object), y=y)))
    top = max(weights.values())
    return [float(weights.get(label, top)) for label in labels]


__all__ = ["FORMATS", "KINDS", "METRICS", "SCHEMES", "CustomTask", "CustomTaskSpec", "build_custom_task",
           "class_counts", "class_weights", "file_format_of", "iobes_scores", "parse_columns", "read_custom_records"]
