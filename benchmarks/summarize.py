"""Markdown table of the results.json files under a folder, grouped by task and method (mean and spread
over seeds when there are several).

    python benchmarks/summarize.py runs/first-comparison      # or the committed copies: results/first-comparison
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def fmt(values: list[float], scale: float = 100.0) -> str:
    if len(values) == 1:
        return f"{values[0] * scale:.1f}"
    return f"{statistics.mean(values) * scale:.1f} ± {statistics.stdev(values) * scale:.1f}"


def main(root: str) -> None:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for path in sorted(Path(root).rglob("*.json")):  # run dirs' results.json, or copies under results/
        r = json.loads(path.read_text())
        if isinstance(r, dict) and {"task", "method", "best"} <= set(r):
            groups[(r["task"], r["method"])].append(r)
    print("| task | method | seeds | best epoch | val (best) | test at best val | trainable params | train ex/s | wall s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (task, method), runs in sorted(groups.items()):
        val_keys = list(runs[0]["best"]["val"])
        val = ", ".join(f"{k} {fmt([r['best']['val'][k] for r in runs])}" for k in val_keys)
        test = "-"
        if "test" in runs[0]["best"]:
            test = ", ".join(f"{k} {fmt([r['best']['test'][k] for r in runs])}" for k in ("f1",))
        print(f"| {task} | {method} | {','.join(str(r['seed']) for r in runs)} | "
              f"{','.join(str(r['best_epoch']) for r in runs)} | {val} | {test} | {runs[0]['trainable_params']:,} | "
              f"{statistics.mean(r['train_examples_per_s'] for r in runs):.1f} | {statistics.mean(r['wall_s'] for r in runs):.0f} |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs")
