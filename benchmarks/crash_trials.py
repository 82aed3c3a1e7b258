"""Crash trials: SIGKILL a real training run at random moments, resume, repeat; the end must equal an
uninterrupted run (per-epoch dev scores and train losses, best epoch, adapter bytes).

    python benchmarks/crash_trials.py --trials 20 --json results/reliability/crash-trials.json

Each trial starts `adaprefix train ... --resume` (safe on an empty folder), kills it with SIGKILL after a random
delay, and restarts, up to --kills times; then lets it finish. After each kill the folder is inspected to name
the moment that was hit: inside an atomic write (a leftover .checkpoint.tmp-* / .adapter.tmp-* folder or file),
before the first checkpoint, or between checkpoints (a step or an evaluation).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def train_cmd(out: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "adaprefix.cli", "train", "--task", "cb", "--method", "apt", "--epochs", "3",
            "--prefix-len", "4", "--data-dir", str(data), "--limit-train", "24", "--limit-eval", "12",
            "--batch-size", "8", "--max-length", "48", "--seed", "11", "--no-progress", "--output", str(out),
            "--resume"]


def env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def outcome(run: Path) -> dict:
    results = json.loads((run / "results.json").read_text())
    return {"val": [e["val"] for e in results["epochs"]], "loss": [e["train_loss"] for e in results["epochs"]],
            "best_epoch": results["best_epoch"], "adapter": (run / "adapter" / "adapter.safetensors").read_bytes()}


def moment(run: Path) -> str:
    leftovers = sorted(p.name for p in run.glob(".*.tmp-*"))
    if leftovers:
        return "during write of " + ", ".join(sorted({n.split(".tmp-")[0].lstrip(".") for n in leftovers}))
    if not (run / "checkpoint").exists():
        return "before the first checkpoint (loading, first epoch)"
    return "between checkpoints (a step or an evaluation)"


def trial(index: int, reference: dict, data: Path, kills: int, max_delay: float, rng: random.Random,
          workdir: Path) -> dict:
    run = workdir / f"trial-{index}"
    hits = []
    for attempt in range(kills):
        proc = subprocess.Popen(train_cmd(run, data), env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        delay = rng.uniform(1.0, max_delay)
        # every other kill waits for an atomic write to be under way (a temp file or folder appears) and kills
        # on sight: random delays alone almost never land inside the few milliseconds a write takes
        on_write = attempt % 2 == 1
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < delay * (3 if on_write else 1):
            if on_write and any(run.glob(".*.tmp-*")):
                break
            time.sleep(0.0005 if on_write else 0.05)
        if proc.poll() is not None:
            break  # finished before the kill
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        hits.append({"after_s": round(time.time() - t0, 3), "aimed_at_write": on_write, "moment": moment(run)})
    done = subprocess.run(train_cmd(run, data), env=env(), capture_output=True, text=True)
    if done.returncode != 0:
        return {"trial": index, "kills": hits, "ok": False, "error": done.stderr[-1500:]}
    got = outcome(run)
    same = {k: got[k] == reference[k] for k in ("val", "best_epoch", "adapter")}
    same["loss"] = all(abs(a - b) < 1e-6 for a, b in zip(got["loss"], reference["loss"])) and \
        len(got["loss"]) == len(reference["loss"])
    return {"trial": index, "kills": hits, "ok": all(same.values()), "same": same}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--kills", type=int, default=3, help="kills per trial before letting it finish (default: 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", type=Path, default=DATA)
    p.add_argument("--json", type=Path, help="write the figures here")
    ns = p.parse_args(argv)
    rng = random.Random(ns.seed)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        t0 = time.time()
        ref = subprocess.run(train_cmd(workdir / "reference", ns.data_dir), env=env(), capture_output=True, text=True)
        if ref.returncode != 0:
            print(ref.stderr[-3000:], file=sys.stderr)
            return 1
        duration = time.time() - t0
        reference = outcome(workdir / "reference")
        trials = [trial(i, reference, ns.data_dir, ns.kills, duration, rng, workdir) for i in range(ns.trials)]
    from adaprefix.training import provenance  # commit, versions, CPU model, as results.json records them

    kills = [k for t in trials for k in t["kills"]]
    moments: dict[str, int] = {}
    for k in kills:
        moments[k["moment"]] = moments.get(k["moment"], 0) + 1
    summary = {"trials": len(trials), "identical_to_uninterrupted": sum(t["ok"] for t in trials),
               "kills": len(kills), "moments": moments, "reference_run_s": round(duration, 1),
               "command": " ".join(["python", *sys.argv]), **provenance(), "per_trial": trials}
    print(json.dumps({k: v for k, v in summary.items() if k != "per_trial"}, indent=1))
    if ns.json:
        ns.json.parent.mkdir(parents=True, exist_ok=True)
        ns.json.write_text(json.dumps(summary, indent=1) + "\n")
    return 0 if summary["identical_to_uninterrupted"] == summary["trials"] else 1


if __name__ == "__main__":
    sys.exit(main())
