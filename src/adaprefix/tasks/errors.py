"""DataError: bad input data, always naming the file, the line and what was expected.

Also the checked reads every reader shares, so that an unreadable file (missing, a directory, not UTF-8, binary)
is a DataError naming the file and line rather than an ``OSError`` or ``UnicodeDecodeError`` traceback.
"""

from __future__ import annotations

import json
import os
import reprlib
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """``path:line: message`` (``path:line:column: message`` when a column is given); the line is omitted when the
    problem is the whole file."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str, column: int | None = None) -> None:
        self.path, self.line, self.column = str(path), line, column
        where = self.path if line is None else f"{self.path}:{line}" + ("" if column is None else f":{column}")
        super().__init__(f"{where}: {message}")


_short = reprlib.Repr()
_short.maxstring, _short.maxother, _short.maxlist, _short.maxdict, _short.maxlevel = 60, 60, 4, 4, 2


def show(value: object) -> str:
    """A short repr for messages (bounded length and depth, whatever the value)."""
    return _short.repr(value)


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def describe(value: object) -> str:
    """``null``, ``true``, ``a number 7``, ``a string 'x'``: a decoded JSON value as messages name it."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    return f"{json_type(value)} {show(value)}"


def line_of(data: bytes | str, pos: int) -> int:
    """1-based line number of offset ``pos``."""
    return data.count(b"\n" if isinstance(data, bytes) else "\n", 0, pos) + 1


def read_text(path: Path) -> str:
    """The file's text, strictly UTF-8 (a leading UTF-8 byte-order mark is dropped).

    UTF-16/32 files, NUL bytes (binary files) and bytes that are not UTF-8 (Latin-1, cp1252) are DataErrors at the
    line where they occur.
    """
    if not path.exists():
        raise DataError(path, None, "file not found")
    if not path.is_file():
        raise DataError(path, None, "not a regular file (expected a UTF-8 text file)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(path, None, f"cannot read the file ({err.strerror or err})") from None
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
                      (b"\xfe\xff", "UTF-16")):
        if raw.startswith(bom):
            raise DataError(path, 1, f"the file is {name} (byte-order mark); expected UTF-8 text")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(path, line_of(raw, nul), "NUL byte: the file looks like UTF-16 or binary data; expected UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = line_of(raw, err.start)
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(path, line, f"byte 0x{raw[err.start]:02x} at column {column} is not UTF-8 "
                                    "(a Latin-1 or cp1252 file?); expected UTF-8 text") from None


def text_lines(text: str):
    """(line number, line) like a text-mode file iterates: lines end at \\n, \\r\\n or \\r; the ending is dropped."""
    return enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text:.40} is out of range")
    return value


# Standard JSON only: no NaN / Infinity (they would come back out as invalid JSON in predictions).
JSON = json.JSONDecoder(parse_constant=_no_constant, parse_float=_parse_float)


def json_error(path: str | os.PathLike, err: Exception, line: int | None) -> DataError:
    """A DataError for a failed ``JSON.decode``/``raw_decode``; ``line`` is the file line of the text decoded (None:
    the decoded text is the whole file, so the decoder's own line is right)."""
    if isinstance(err, json.JSONDecodeError):
        return DataError(path, err.lineno if line is None else line,
                         f"malformed JSON ({err.msg}: column {err.colno}); expected one JSON value")
    if isinstance(err, RecursionError):
        return DataError(path, line, "malformed JSON (nested too deeply); expected at most a few levels of nesting")
    if "integer string conversion" in str(err):  # Python converts at most 4300 digits
        return DataError(path, line, "malformed JSON (an integer of more than 4300 digits); expected standard JSON numbers")
    # ValueError from parse_constant/parse_float: NaN, Infinity, 1e999
    return DataError(path, line, f"malformed JSON ({str(err):.100}); expected standard JSON values")


def surrogate_free(value: str) -> bool:
    """False for strings with lone surrogates (JSON ``"\\ud800"``): not Unicode text, and tokenizers refuse them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
