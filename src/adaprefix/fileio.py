"""Crash-safe writes: a reader sees the old file (or folder) or the new one, never half of one; and one writer per
run folder at a time."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # some writers create private (0600) files; adapters are for sharing
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_dir_write(target: Path, write: Callable[[Path], object]) -> None:
    """``write(tmp_dir)`` beside ``target``, then swap it in. A crash leaves the old folder, or ``.NAME.old``
    holding it during the instant of the swap (readers look there too), or the new one."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    old = target.with_name(f".{target.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a failed write (full disk, interrupt) leaves nothing behind
        raise
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


LOCK_NAME = ".lock"


class RunBusyError(RuntimeError):
    """Another process is training into the same run folder right now."""


@contextlib.contextmanager
def exclusive_run(run_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold ``run_dir/.lock`` (an OS file lock: a killed holder frees it at once) while writing into a run folder,
    so that two processes never train into one folder (they would interleave its log and checkpoints). Busy:
    ``RunBusyError`` at once, or with ``wait`` block until the holder is done.

        with exclusive_run(Path("runs/cb-apt")):
            ...  # train, checkpoint, write results.json
    """
    from filelock import FileLock, Timeout

    path = Path(run_dir) / LOCK_NAME
    lock = FileLock(str(path), timeout=-1 if wait else 0, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        raise RunBusyError(f"{run_dir} is being trained by another process right now (it holds {path}); "
                           "wait for it to finish or choose another --output") from None
    try:
        yield
    finally:
        lock.release()
