"""A sweep of runs that cannot be parked (full fine-tuning: its checkpoint is ~350 MB, far over what a commit takes)
must not start a run that would still be training when the session ends: a fresh checkout loses it, and all its
epochs are lost with it. ``paper.py --until TIME`` runs such sweeps under :func:`run_until`, which stops the sweep
(before the run, or after its first epoch where no earlier run of the task gives a rate) once a run's projected end
falls after TIME; the stream then goes on with its next, parkable, item, and the run trains in a later session.

    proc = subprocess.Popen(cmd)
    stopped = run_until(proc, sweep_dir / "runs", epochs=60, epoch_s=prior_epoch_seconds(results, "conll04",
                        "finetune"), deadline=parse_until("01:30"))
"""
from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

POLL_S = 5.0  # how often run_until looks at the sweep's run folders


def parse_until(text: str, now: dt.datetime | None = None) -> float:
    """``HH:MM`` (UTC: the next such time, today or tomorrow) or an ISO 8601 date and time (UTC unless it says
    otherwise) as Unix seconds.

    >>> now = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone.utc)
    >>> parse_until("01:30", now) - now.timestamp(), parse_until("2026-12-08T01:30", now) - now.timestamp()
    (7200.0, 7200.0)
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        clock = dt.time.fromisoformat(text)
    except ValueError:
        clock = None
    if clock is not None and len(text) <= 8:
        when = now.replace(hour=clock.hour, minute=clock.minute, second=clock.second, microsecond=0)
        if when <= now:
            when += dt.timedelta(days=1)
        return when.timestamp()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--until: expected HH:MM (UTC) or an ISO 8601 date and time, got {text!r}") from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.timezone.utc)).timestamp()


def prior_epoch_seconds(results: Path, task: str, method: str) -> float | None:
    """Seconds one epoch of ``method`` on ``task`` took in the committed main table (the median over its runs:
    wall time over epochs trained), or None where it has no such run yet."""
    rates = []
    for path in sorted((results / "main").glob(f"{task}-{method}-*/*/results.json")):
        doc = json.loads(path.read_text())
        if doc.get("wall_s") and doc.get("epochs") and not doc.get("extended_from"):
            rates.append(doc["wall_s"] / len(doc["epochs"]))
    return statistics.median(rates) if rates else None


def epochs_done(run: Path) -> int:
    """Epochs ``run`` has logged (lines of its metrics.jsonl)."""
    log = run / "metrics.jsonl"
    return sum(1 for line in log.read_text().splitlines() if line.strip()) if log.is_file() else 0


def projected_end(first_seen: tuple[float, int], run: Path, epochs: int, epoch_s: float | None) -> float | None:
    """When ``run`` (first seen at ``first_seen`` = (time, epochs then done)) will have trained ``epochs``: at the
    rate it showed since it was first seen, else at ``epoch_s``; None while neither is known."""
    seen_at, seen_done = first_seen
    done = epochs_done(run)
    last = (run / "metrics.jsonl").stat().st_mtime if done > seen_done else seen_at
    rate = (last - seen_at) / (done - seen_done) if done > seen_done else epoch_s
    return None if rate is None else last + rate * (epochs - done)


def run_until(proc: subprocess.Popen, runs: Path, epochs: int, epoch_s: float | None, deadline: float,
              poll_s: float = POLL_S, clock: Callable[[], float] = time.time,
              say: Callable[[str], None] = print) -> bool:
    """Wait for ``proc`` (a sweep writing its runs under ``runs``), stopping it when the run it trains would end
    after ``deadline``. True if it was stopped; a sweep that failed raises CalledProcessError."""
    start = clock()
    first_seen: dict[Path, tuple[float, int]] = {}
    while proc.poll() is None:
        for run in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
            log = run / "metrics.jsonl"
            touched = max(run.stat().st_mtime, log.stat().st_mtime if log.is_file() else 0.0)
            if (run / "results.json").is_file() or touched < start - 1:
                continue  # finished, or not touched by this sweep yet
            if run not in first_seen:  # since when it has trained: its last epoch's end, else its folder's start,
                done = epochs_done(run)  # but not before this sweep began (a run resumed from an older checkpoint)
                since = log if done else run
                first_seen[run] = (min(max(since.stat().st_mtime, start), clock()), done)
            end = projected_end(first_seen[run], run, epochs, epoch_s)
            if end is not None and end > deadline:
                say(f"[paper] {run}: cannot be parked, and at epoch {epochs_done(run)} of {epochs} it would end "
                    f"{(end - deadline) / 60:.0f} min after --until; sweep stopped, the run trains in a later session")
                proc.terminate()
                proc.wait()
                return True
        time.sleep(poll_s)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    return False


if __name__ == "__main__":  # benchmarks/paper_deadline.py 01:30 -> the absolute time, as cpu_campaign.sh stores it
    import sys

    print(dt.datetime.fromtimestamp(parse_until(sys.argv[1]), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
