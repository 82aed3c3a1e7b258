"""Paired comparison of two configurations over the same seeds: per-seed differences of the selection score,
their mean and sample std, and a bootstrap 95% interval over seeds.

    python benchmarks/paired.py RUNS_GLOB_A RUNS_GLOB_B [--metric accuracy] [--label-a A --label-b B]

Each glob matches results.json files (or run folders); runs are paired by seed. Seeds are the unit of
resampling: with 3 to 5 seeds the interval is wide, and it says so.
"""

from __future__ import annotations

import argparse
import glob
import json
import random
import statistics
from pathlib import Path


def scores(pattern: str, metric: str | None) -> dict[int, float]:
    out = {}
    for path in sorted(glob.glob(pattern)):
        p = Path(path)
        p = p / "results.json" if p.is_dir() else p
        if not p.is_file():
            continue
        r = json.loads(p.read_text())
        m = metric or r["selection_metric"].split(".", 1)[1]
        out[r["seed"]] = r["best"]["val"][m]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--metric")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--resamples", type=int, default=10000)
    ns = ap.parse_args()
    a, b = scores(ns.a, ns.metric), scores(ns.b, ns.metric)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise SystemExit("no seed has runs on both sides")
    diffs = [a[s] - b[s] for s in seeds]
    rng = random.Random(0)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(ns.resamples))
    lo, hi = means[int(0.025 * ns.resamples)], means[int(0.975 * ns.resamples) - 1]
    print(f"seeds {seeds}")
    print(f"{ns.label_a}: " + ", ".join(f"{a[s]:.4f}" for s in seeds) + f"  mean {statistics.fmean(a[s] for s in seeds):.4f}")
    print(f"{ns.label_b}: " + ", ".join(f"{b[s]:.4f}" for s in seeds) + f"  mean {statistics.fmean(b[s] for s in seeds):.4f}")
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(f"{ns.label_a} - {ns.label_b}: mean {statistics.fmean(diffs):+.4f}, sd {sd:.4f}, "
          f"bootstrap 95% over seeds [{lo:+.4f}, {hi:+.4f}] (n = {len(diffs)})")


if __name__ == "__main__":
    main()
