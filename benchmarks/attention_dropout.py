"""Attention alone, forward + backward with dropout: SDPA's math path vs RecomputedDropoutAttention.

    OMP_NUM_THREADS=1 python benchmarks/attention_dropout.py [--rounds 6]

Six layers' worth of `gated_prefix_attention` (B 16, n 128, prefix 16, d 384, 12 heads, dropout 0.1) kept alive
together, then one backward; the two implementations interleaved round by round; prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from adaprefix.attention import dropout_implementation, gated_prefix_attention


def run(impl: str, batch: int, n: int, d: int, heads: int, length: int) -> float:
    q, k, v = (torch.randn(batch, n, d, requires_grad=True) for _ in range(3))
    pk, pv = (torch.randn(length, d, requires_grad=True) for _ in range(2))
    with dropout_implementation(impl):
        t0 = time.perf_counter()
        outs = [gated_prefix_attention(q, k, v, heads, (pk, pv), None, None, 0.1) for _ in range(6)]
        sum(o.sum() for o in outs).backward()
        return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=6)
    ns = p.parse_args()
    torch.manual_seed(0)
    times: dict[str, list[float]] = {"sdpa": [], "recompute": []}
    for _ in range(ns.rounds):
        for impl in times:
            times[impl].append(run(impl, 16, 128, 384, 12, 16))
    med = {k: statistics.median(v) for k, v in times.items()}
    print({k: round(v, 4) for k, v in med.items()}, f"recompute / sdpa: {med['recompute'] / med['sdpa']:.3f}",
          f"threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
