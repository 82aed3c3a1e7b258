"""torch.compile on the APT training step (CPU): is it faster end to end, compile time included?

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/compile_trial.py [--steps 20]

Eager and compiled models (same weights) alternate step by step after the compiled one's first call (which
includes compilation, timed separately). Prints the per-step ratio and how many steps pay back the compile time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_time import load_minilm  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--json")
    ns = p.parse_args()
    import torch

    from adaprefix import PrefixConfig, TaskModel, attach

    encoder = load_minilm()
    torch.manual_seed(0)
    model = TaskModel(attach(encoder, PrefixConfig(method="apt", prefix_len=16)), "classification", ["a", "b", "c"])
    model.train()
    ids = torch.randint(1000, 20000, (ns.batch, ns.seq))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 3, (ns.batch,))
    optimiser = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    compiled = torch.compile(model)

    def step(m) -> float:
        t0 = time.perf_counter()
        optimiser.zero_grad(set_to_none=True)
        m(ids, mask, labels=labels).loss.backward()
        optimiser.step()
        return time.perf_counter() - t0

    step(model)  # eager warm-up
    first_compiled = step(compiled)  # compilation + one step
    times = {"eager": [], "compiled": []}
    for _ in range(ns.steps):
        times["eager"].append(step(model))
        times["compiled"].append(step(compiled))
    med = {k: statistics.median(v) for k, v in times.items()}
    gain = med["eager"] - med["compiled"]
    doc = {"median_step_s": med, "first_compiled_call_s": first_compiled, "ratio_compiled_over_eager":
           med["compiled"] / med["eager"], "steps_to_pay_back_compile": (first_compiled / gain) if gain > 0 else None,
           "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(json.dumps(doc, indent=1))
    if ns.json:
        Path(ns.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
