"""Cost curves: training-step time and peak memory against sequence length and prefix length, FT / PT2 / APT.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/cost_curves.py --json results/step-time/cost-curves.json \
        --plot docs/cost-curves.png

MiniLM, batch 8, training mode, default settings. Sequence sweep at prefix 16; prefix sweep at sequence 128.
Time: the three variants interleaved at each point (median of --steps); memory: step_time.py's fresh-process
memory worker (peak resident set above the start of training).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from step_time import build_step, load_minilm  # noqa: E402

SEQS = (64, 128, 256, 512)
PREFIXES = (4, 16, 64, 128)


def time_point(encoder, variants, prefix_len: int, batch: int, seq: int, steps: int) -> dict[str, float]:
    import copy

    built = {v: build_step(v, copy.deepcopy(encoder) if v == "finetune" else encoder, prefix_len, batch, seq)[0]
             for v in variants}
    times = {v: [] for v in variants}
    for i in range(steps + 1):
        for v in variants:
            t0 = time.perf_counter()
            built[v]()
            if i:  # the first round warms up
                times[v].append(time.perf_counter() - t0)
    return {v: statistics.median(t) for v, t in times.items()}


def memory_point(variant: str, prefix_len: int, batch: int, seq: int) -> float:
    cmd = [sys.executable, str(HERE / "step_time.py"), "--memory-worker", variant, "--memory-steps", "2",
           "--prefix-len", str(prefix_len), "--batch", str(batch), "--seq", str(seq)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_train_mib"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--json")
    p.add_argument("--plot")
    p.add_argument("--from-json", help="only redraw the plot from an earlier --json file")
    ns = p.parse_args()
    if ns.from_json:
        doc = json.loads(Path(ns.from_json).read_text())
        plot(doc["rows"], doc["batch"], ns.plot or "cost-curves.png")
        return
    encoder = load_minilm()
    rows = []
    for axis, points in (("seq", SEQS), ("prefix", PREFIXES)):
        for value in points:
            seq, prefix = (value, 16) if axis == "seq" else (128, value)
            variants = ("finetune", "prefix", "apt") if axis == "seq" else ("prefix", "apt")
            times = time_point(encoder, variants, prefix, ns.batch, seq, ns.steps)
            for v in variants:
                rows.append({"axis": axis, "seq": seq, "prefix_len": prefix, "variant": v, "step_s": times[v],
                             "peak_mib": memory_point(v, prefix, ns.batch, seq)})
                print(json.dumps(rows[-1]), flush=True)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps({"rows": rows, "batch": ns.batch, "command": " ".join(sys.argv)}, indent=1))
    if ns.plot:
        plot(rows, ns.batch, ns.plot)


COLOURS = {"finetune": "#d95f02", "prefix": "#1b9e77", "apt": "#3b75af"}
LABELS = {"finetune": "full fine-tuning", "prefix": "P-tuning v2", "apt": "APT"}


def plot(rows: list[dict], batch: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for col, axis in enumerate(("seq", "prefix")):
        for v in ("finetune", "prefix", "apt"):
            pts = [r for r in rows if r["axis"] == axis and r["variant"] == v]
            if not pts:
                continue
            xs = [r["seq"] if axis == "seq" else r["prefix_len"] for r in pts]
            axes[0][col].plot(xs, [r["step_s"] for r in pts], marker="o", color=COLOURS[v], label=LABELS[v])
            axes[1][col].plot(xs, [r["peak_mib"] for r in pts], marker="o", color=COLOURS[v], label=LABELS[v])
        xlabel = "sequence length (prefix 16)" if axis == "seq" else "prefix length (sequence 128)"
        for row, ylabel in ((0, "step time (s)"), (1, "peak training memory (MiB)")):
            axes[row][col].set_xlabel(xlabel)
            axes[row][col].set_ylabel(ylabel)
            axes[row][col].set_xscale("log", base=2)
            axes[row][col].legend()
    fig.suptitle(f"MiniLM training step, batch {batch}, one thread")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

if __name__ == "__main__":
    main()
