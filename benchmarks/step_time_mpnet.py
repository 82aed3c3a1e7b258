"""Training-step time and peak memory on the packaged MPNet (all-mpnet-base-v2): finetune vs P-tuning v2 vs APT.

Same protocol as benchmarks/step_time.py (whose step builder and memory probes it imports): interleaved timed
steps in one process (ratios of medians), peak memory per variant in a fresh process (VmHWM during training
minus VmRSS before the first step). HF PEFT prefix tuning is left out: MPNet takes no past_key_values.

    OMP_NUM_THREADS=1 python benchmarks/step_time_mpnet.py [--steps 6] [--batch 16] [--seq 128] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import step_time  # noqa: E402  (benchmarks/ is not a package)

VARIANTS = ("finetune", "prefix", "apt")
TARGETS = [
    ("time APT / P-tuning v2 (ours)", "apt", "prefix", "time"),
    ("time APT / finetune", "apt", "finetune", "time"),
    ("time P-tuning v2 / finetune", "prefix", "finetune", "time"),
    ("peak memory APT / finetune", "apt", "finetune", "memory"),
    ("peak memory P-tuning v2 / finetune", "prefix", "finetune", "memory"),
    ("peak memory APT / P-tuning v2", "apt", "prefix", "memory"),
]


def load_mpnet():
    from transformers import AutoModel

    from adaprefix.backbones.packaged import packaged_model_path

    return AutoModel.from_pretrained(str(packaged_model_path("mpnet")))


def memory_worker(variant: str, steps: int, prefix_len: int, batch: int, seq: int) -> dict:
    step, trainable = step_time.build_step(variant, load_mpnet(), prefix_len, batch, seq)
    base = step_time.read_status_kb("VmRSS")
    reset = step_time.reset_peak_rss()
    for _ in range(steps):
        step()
    return {"variant": variant, "peak_train_mib": (step_time.read_status_kb("VmHWM") - base) / 1024,
            "peak_reset": reset, "trainable": trainable}


def time_all(args) -> dict[str, list[float]]:
    import copy

    import torch

    shared = load_mpnet()  # frozen: the prefix variants share it; finetune gets its own copy
    steps = {v: step_time.build_step(v, copy.deepcopy(shared) if v == "finetune" else shared,
                                     args.prefix_len, args.batch, args.seq)[0] for v in VARIANTS}
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for i in range(args.warmup + args.steps):
        for v in VARIANTS:
            t0 = time.perf_counter()
            steps[v]()
            if i >= args.warmup:
                times[v].append(time.perf_counter() - t0)
        print(f"step {i + 1}/{args.warmup + args.steps}", file=sys.stderr, flush=True)
    print(f"threads: {torch.get_num_threads()}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (interleaved)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--memory-steps", type=int, default=2)
    parser.add_argument("--prefix-len", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--memory-worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, args.memory_steps, args.prefix_len, args.batch, args.seq)))
        return

    times = time_all(args)
    memory = {}
    for v in VARIANTS:
        cmd = [sys.executable, __file__, "--memory-worker", v, "--memory-steps", str(args.memory_steps),
               "--prefix-len", str(args.prefix_len), "--batch", str(args.batch), "--seq", str(args.seq)]
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode:
            sys.exit(f"memory worker {v} failed:\n{out.stderr[-3000:]}")
        memory[v] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"memory {v}: +{memory[v]['peak_train_mib']:.1f} MiB", file=sys.stderr, flush=True)

    med = {v: 1000 * statistics.median(times[v]) for v in VARIANTS}
    quart = {v: [1000 * q for q in statistics.quantiles(times[v], n=4)] for v in VARIANTS}
    mem = {v: memory[v]["peak_train_mib"] for v in VARIANTS}
    print(f"\nall-mpnet-base-v2 (d=768, 12 layers, 12 heads), batch {args.batch} x {args.seq}, prefix {args.prefix_len}, "
          f"{args.steps} interleaved timed steps per variant, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'variant':10s} {'median ms':>10s} {'q1..q3 ms':>18s} {'peak MiB':>9s} {'trainable':>10s}")
    for v in VARIANTS:
        print(f"{v:10s} {med[v]:10.1f} {quart[v][0]:8.1f}..{quart[v][2]:8.1f} {mem[v]:9.1f} {memory[v]['trainable']:10d}")
    print()
    ratios = {}
    for label, num, den, quantity in TARGETS:
        source = med if quantity == "time" else mem
        ratios[label] = source[num] / source[den]
        print(f"{label:40s} {ratios[label]:6.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"median_ms": med, "quartiles_ms": quart, "peak_train_mib": mem, "ratios": ratios,
                       "times_s": times, "memory": memory, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
