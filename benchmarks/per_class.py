"""Per-class dev scores of runs, from their val-predictions.json: which classes or entity types a method wins or
loses on.

    python benchmarks/per_class.py 'R/conll04-prefix-len/prefix-prefix_len16-s11,R/conll04-prefix-seeds/*' \\
        'R/conll04-apt-len/apt-prefix_len16-s11,R/conll04-apt-seeds/*' --labels PT2 APT [--metric f1]

Each argument is a glob (or several joined by commas) of run folders or results.json files, one run per seed, as
for ``paired.py``. Classification tasks are scored per label (scikit-learn's precision, recall and F1), NER tasks
per entity type (seqeval's classification report under the CoNLL rules the benchmark NER tasks score with);
multiple-choice tasks have no classes and are refused. Each method's cell is the mean ± sd over its seeds; the
last column is the second method minus the first, paired by seed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import paired  # noqa: E402  (results_files: globs to one run per seed)

SCORES = ("precision", "recall", "f1")


def class_scores(predictions: Path) -> dict[str, dict] | None:
    """``{class: {"precision", "recall", "f1", "support"}}`` of one val-predictions.json (support = gold
    examples or entities of the class in dev); None for a multiple-choice task, which has no classes.

        class_scores(Path("runs/conll04-apt/val-predictions.json"))["Peop"]["f1"]
    """
    doc = json.loads(predictions.read_text())
    entries = doc["examples"]
    gold, pred = [e["gold"] for e in entries], [e["pred"] for e in entries]
    if entries and isinstance(gold[0], list):  # token classification: entity types, as the task's scorer counts
        from seqeval.metrics import classification_report

        report = classification_report(gold, pred, output_dict=True, zero_division=0)
        return {k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"],
                    "support": int(v["support"])} for k, v in report.items() if not k.endswith(" avg")}
    if entries and isinstance(gold[0], int):  # multiple choice: the gold is a choice index, not a class
        return None
    from sklearn.metrics import precision_recall_fscore_support

    labels = sorted({*gold, *pred}, key=str)
    p, r, f, n = precision_recall_fscore_support(gold, pred, labels=labels, zero_division=0)
    return {str(c): {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(n[i])}
            for i, c in enumerate(labels)}


def per_class_table(groups: dict[str, dict[int, Path]], diff: tuple[str, str] | None = None,
                    metric: str = "f1") -> dict | None:
    """Per class, each group's ``metric`` over its seeds (``groups``: label -> seed -> val-predictions.json) and,
    with ``diff = (a, b)``, a - b paired by seed. Classes are ordered by dev support, largest first; a class
    missing from a run (never gold nor predicted there) scores 0 in it. None for multiple-choice tasks.

        t = per_class_table({"PT2": {11: p1, 12: p2}, "APT": {11: a1, 12: a2}}, diff=("APT", "PT2"))
        t["rows"][0]["cells"]["APT"]["mean"], t["rows"][0]["diff"]["mean"]
    """
    scores = {g: {seed: class_scores(p) for seed, p in runs.items()} for g, runs in groups.items()}
    if any(s is None for runs in scores.values() for s in runs.values()):
        return None
    support: dict[str, int] = {}
    for runs in scores.values():
        for s in runs.values():
            for c, v in s.items():
                support[c] = max(support.get(c, 0), v["support"])  # the same dev set: the same gold counts
    rows = []
    for c in sorted(support, key=lambda c: (-support[c], c)):
        values = {g: {seed: s.get(c, {}).get(metric, 0.0) for seed, s in runs.items()} for g, runs in scores.items()}
        row = {"class": c, "support": support[c],
               "cells": {g: _stats(list(v.values())) | {"seeds": list(v)} for g, v in values.items()}}
        if diff:
            a, b = values[diff[0]], values[diff[1]]
            seeds = sorted(set(a) & set(b))
            row["diff"] = _stats([a[s] - b[s] for s in seeds]) | {"seeds": seeds} if seeds else None
        rows.append(row)
    return {"metric": metric, "groups": list(groups), "diff": list(diff) if diff else None, "rows": rows}


def _stats(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None}


def _pm(d: dict | None, sign: bool = False) -> str:
    if not d or d["mean"] is None:
        return "-"
    mean = f"{100 * d['mean']:+.1f}" if sign else f"{100 * d['mean']:.1f}"
    return mean + ("" if d["std"] is None else f" ± {100 * d['std']:.1f}")


def per_class_markdown(table: dict, title: str = "") -> str:
    """One markdown table: class, dev support, each group's mean ± sd (x100), the paired difference."""
    groups, diff = table["groups"], table["diff"]
    head = ["class", "dev support", *groups] + ([f"{diff[0]} - {diff[1]}"] if diff else [])
    out = [title] if title else []
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table["rows"]:
        cells = [r["class"], str(r["support"]), *(_pm(r["cells"][g]) for g in groups)]
        if diff:
            cells.append(_pm(r["diff"], sign=True))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="one glob (commas join several) per method, one run per seed")
    ap.add_argument("--labels", nargs="+", help="a name per glob (default: A, B, ...)")
    ap.add_argument("--metric", choices=SCORES, default="f1")
    ns = ap.parse_args(argv)
    labels = ns.labels or [chr(ord("A") + i) for i in range(len(ns.runs))]
    if len(labels) != len(ns.runs):
        raise SystemExit(f"{len(ns.runs)} globs but {len(labels)} labels")
    groups = {}
    for label, pattern in zip(labels, ns.runs):
        found = paired.results_files(pattern)
        if not found:
            raise SystemExit(f"{pattern}: no results.json")
        groups[label] = {seed: paired.predictions_path(path, res) for seed, (path, res) in found.items()}
        missing = [str(p) for p in groups[label].values() if not p.is_file()]
        if missing:
            raise SystemExit(f"no predictions: {', '.join(missing)}")
    table = per_class_table(groups, (labels[1], labels[0]) if len(labels) > 1 else None, ns.metric)
    if table is None:
        raise SystemExit("a multiple-choice task has no classes")
    print(per_class_markdown(table, f"Dev {ns.metric} x100 per class, mean ± sd over seeds\n"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
