"""DataError: bad input data, always naming the file, the line and what was expected."""

from __future__ import annotations

import os


class DataError(ValueError):
    """``path:line: message``; line is omitted when the problem is the whole file."""

    def __init__(self, path: str | os.PathLike, line: int | None, message: str) -> None:
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")
