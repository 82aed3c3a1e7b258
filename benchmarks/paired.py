"""Paired comparison of two configurations over the same seeds: per-seed differences of the selection score,
their mean and sample std, and a bootstrap 95% interval over seeds; with ``--examples``, also a hierarchical
paired bootstrap over seeds and dev examples.

    python benchmarks/paired.py RUNS_GLOB_A RUNS_GLOB_B [--metric accuracy] [--label-a A --label-b B]
        [--resamples 10000] [--examples [--nested] [--exact]]

    # e.g. APT minus P-tuning v2 on CB at the main phase's chosen points (R = benchmarks/results/main; seed 11
    # ran in the lr or len stage, the other seeds in the seeds stage; commas join globs)
    python benchmarks/paired.py 'R/cb-apt-len/apt-prefix_len16-s11,R/cb-apt-seeds/*' \\
        'R/cb-prefix-len/prefix-prefix_len8-s11,R/cb-prefix-seeds/*' --label-a APT --label-b PT2 --examples

Each argument is a glob (or several joined by commas) of results.json files or run folders, one run per seed;
runs are paired by seed. Seeds are the unit of resampling: with 3 to 5 seeds the interval is wide, and it says so.

``--examples`` reads each run's ``val-predictions.json`` (the best epoch's per-example dev predictions that
training writes beside results.json; ``paper.py --collect`` copies it) and, per replicate, draws the seeds with
replacement and the dev examples with replacement, the same draw for A and B (paired). By default one example
draw serves every drawn seed of a replicate (crossed): all seeds were scored on the same dev set, so its sampling
noise is shared by them. ``--nested`` draws the examples anew for each drawn seed instead, which averages that
noise down over seeds and gives a narrower interval. MultiRC resamples whole questions (EM scores a question's
answers together). Each method's metric is recomputed on the draw from per-example counts (accuracy, macro F1,
F1a, EM, entity precision / recall / F1), checked against the task's own scorer (``task.score``) on the full dev
set of every run; ``--exact`` calls ``task.score`` on every replicate instead (slow; for checking).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import random
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

if TYPE_CHECKING:
    from adaprefix.tasks import Task

PREDICTIONS = "val-predictions.json"  # adaprefix.training.VAL_PREDICTIONS; the seed-only path needs no torch
CHUNK = 256  # replicates drawn at once: memory is CHUNK x dev units


# ---------------------------------------------------------------- runs


def results_files(pattern: str) -> dict[int, tuple[Path, dict]]:
    """Seed -> (results.json path, its content) for the runs ``pattern`` matches (files or run folders; several
    globs joined by commas). Two runs of one seed are refused: which one pairs would be arbitrary."""
    out = {}
    for path in sorted({m for part in pattern.split(",") for m in glob.glob(part)}):
        p = Path(path)
        p = p / "results.json" if p.is_dir() else p
        if p.is_file():
            r = json.loads(p.read_text())
            if r["seed"] in out:
                raise SystemExit(f"{pattern}: seed {r['seed']} matches {out[r['seed']][0]} and {p}; narrow the glob")
            out[r["seed"]] = (p, r)
    return out


def metric_of(results: dict, metric: str | None) -> str:
    return metric or results["selection_metric"].split(".", 1)[1]


def scores(pattern: str, metric: str | None) -> dict[int, float]:
    return {seed: r["best"]["val"][metric_of(r, metric)] for seed, (_, r) in results_files(pattern).items()}


def seed_bootstrap(diffs: list[float], resamples: int, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean difference, seeds resampled with replacement."""
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(diffs, k=len(diffs))) for _ in range(resamples))
    return means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]


# ---------------------------------------------------------------- per-example predictions


@dataclass
class RunPredictions:
    """One run's best-epoch dev predictions, as records ``task.score`` reads (labels, tags, groups; no text)."""

    seed: int
    ids: list
    records: list
    preds: list


def predictions_path(results_path: Path, results: dict) -> Path:
    """Where a run's best-epoch dev predictions are: the file its results.json names, beside it."""
    return results_path.parent / (results.get("val_predictions") or PREDICTIONS)


def load_predictions(results_path: Path, results: dict, metric: str) -> tuple[Task, RunPredictions]:
    """(task, RunPredictions) of a run, after checking that the file is of the best epoch and that the task's
    scorer, fed the file, gives the val score results.json recorded."""
    from adaprefix.training import prediction_records, prediction_task

    path = predictions_path(results_path, results)
    if not path.is_file():
        raise SystemExit(f"{results_path.parent}: no {PREDICTIONS} (runs trained before it existed have none)")
    doc = json.loads(path.read_text())
    if doc["epoch"] != results["best_epoch"]:
        raise SystemExit(f"{path}: predictions of epoch {doc['epoch']}, but the best epoch is {results['best_epoch']}")
    task = prediction_task(doc)
    records, preds = prediction_records(task, doc["examples"])
    recomputed, recorded = task.score(records, preds)[metric], results["best"]["val"][metric]
    if not math.isclose(recomputed, recorded, rel_tol=1e-9, abs_tol=1e-12):
        raise SystemExit(f"{path}: {metric} from the file is {recomputed}, results.json has {recorded}")
    return task, RunPredictions(results["seed"], [e["id"] for e in doc["examples"]], records, preds)


def resampling_units(records: list) -> list[np.ndarray]:
    """Example indices per resampling unit: a MultiRC question's answers together (EM scores the question),
    otherwise one example each."""
    groups: dict = {}
    for i, r in enumerate(records):
        groups.setdefault(getattr(r, "group", None) or ("", i), []).append(i)
    return [np.asarray(v) for v in groups.values()]


# ---------------------------------------------------------------- metrics from per-unit counts


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (the scorers' zero_division=0)."""
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _entities(tags: list[str], strict_iobes: bool) -> set:
    """(type, start, end) of the entities seqeval counts in one sentence (the default mode, or strict IOBES)."""
    if strict_iobes:
        from seqeval.scheme import IOBES, Entities

        return {e.to_tuple()[1:] for e in Entities([tags], IOBES).entities[0]}
    from seqeval.metrics.sequence_labeling import get_entities

    return set(get_entities(tags))


def example_counts(task: Task, metric: str, records: list, preds: list) -> np.ndarray | None:
    """[examples, k] additive counts from which :func:`metric_from_counts` gives ``metric`` for any sample of
    examples; None for a metric that has none here (then the task's scorer runs on every replicate)."""
    if task.head == "token_classification" and metric in ("f1", "precision", "recall"):
        strict = getattr(task, "tag_scheme", None) == "IOBES"  # custom IOBES tasks score in strict mode
        rows = []
        for r, p in zip(records, preds):
            gold, pred = _entities(r.tags, strict), _entities(p, strict)
            rows.append((len(gold & pred), len(pred), len(gold)))
        return np.asarray(rows, dtype=float).reshape(-1, 3)
    gold = [r.label for r in records]
    if metric in ("accuracy", "em"):  # em: per answer row here; :func:`unit_counts` makes it per question
        return np.asarray([[g == p, 1] for g, p in zip(gold, preds)], dtype=float).reshape(-1, 2)
    if metric == "f1a":
        return np.asarray([[g == "True" and p == "True", g != "True" and p == "True", g == "True" and p != "True"]
                           for g, p in zip(gold, preds)], dtype=float).reshape(-1, 3)
    if metric == "macro_f1":  # per class: tp, fp, fn
        labels = task.label_names
        counts = np.zeros((len(gold), 3 * len(labels)))
        for i, (g, p) in enumerate(zip(gold, preds)):
            if g == p:
                counts[i, 3 * labels.index(g)] = 1
            else:
                counts[i, 3 * labels.index(p) + 1] = 1
                counts[i, 3 * labels.index(g) + 2] = 1
        return counts
    return None


def unit_counts(metric: str, counts: np.ndarray, units: list[np.ndarray]) -> np.ndarray:
    """Counts per resampling unit: sums over its examples; for EM, whether all its answers are right."""
    if metric == "em":
        return np.asarray([[counts[u, 0].min(), 1] for u in units], dtype=float).reshape(-1, 2)
    return np.stack([counts[u].sum(axis=0) for u in units])


def metric_from_counts(metric: str, s: np.ndarray) -> np.ndarray:
    """``metric`` from counts summed over a sample (last axis: the counts of :func:`example_counts`)."""
    if metric in ("accuracy", "em"):
        return _ratio(s[..., 0], s[..., 1])
    if metric in ("f1", "precision", "recall"):  # seqeval: micro precision and recall, F1 from those
        precision, recall = _ratio(s[..., 0], s[..., 1]), _ratio(s[..., 0], s[..., 2])
        return {"precision": precision, "recall": recall,
                "f1": _ratio(2 * precision * recall, precision + recall)}[metric]
    tp, fp, fn = s[..., 0::3], s[..., 1::3], s[..., 2::3]  # f1a: one class; macro_f1: every class, averaged
    return _ratio(2 * tp, 2 * tp + fp + fn).mean(axis=-1)


# ---------------------------------------------------------------- scorers of a resample


Scorer = Callable[[np.ndarray], np.ndarray]  # [replicates, units] draw counts -> [replicates] metric values


def resample(records: list, preds: list, units: list[np.ndarray], draws: np.ndarray) -> tuple[list, list]:
    """Records and predictions of one draw; a question drawn twice counts twice for EM (own group name)."""
    out_r, out_p = [], []
    for u, n in zip(units, draws):
        for k in range(int(n)):
            for i in u:
                r = records[i]
                out_r.append(replace(r, group=f"{r.group}#{k}") if getattr(r, "group", None) is not None else r)
                out_p.append(preds[i])
    return out_r, out_p


def exact_scorer(task: Task, metric: str, run: RunPredictions, units: list[np.ndarray]) -> Scorer:
    """The task's own scorer on every replicate."""
    return lambda draws: np.asarray([task.score(*resample(run.records, run.preds, units, row))[metric]
                                     for row in draws])


def fast_scorer(task: Task, metric: str, run: RunPredictions, units: list[np.ndarray]) -> Scorer | None:
    """The metric from per-unit counts (a matrix product per chunk of replicates), after checking it against the
    task's scorer on the full dev set; None where the metric has no counts here."""
    counts = example_counts(task, metric, run.records, run.preds)
    if counts is None:
        return None
    per_unit = unit_counts(metric, counts, units)
    full = float(metric_from_counts(metric, per_unit.sum(axis=0)))
    expected = task.score(run.records, run.preds)[metric]
    if not math.isclose(full, expected, rel_tol=1e-9, abs_tol=1e-12):
        raise AssertionError(f"seed {run.seed}: {metric} from counts {full} != task.score {expected}")
    return lambda draws: metric_from_counts(metric, draws @ per_unit)


def scorer_for(task: Task, metric: str, run: RunPredictions, units: list[np.ndarray],
               exact: bool) -> tuple[Scorer, bool]:
    """(scorer, whether it is the task's own on every replicate): from counts unless ``exact`` or unavailable."""
    fast = None if exact else fast_scorer(task, metric, run, units)
    return (fast, False) if fast is not None else (exact_scorer(task, metric, run, units), True)


# ---------------------------------------------------------------- the hierarchical bootstrap


def draw_counts(rng: np.random.Generator, replicates: int, units: int) -> np.ndarray:
    """[replicates, units]: how often each unit is drawn in a with-replacement sample of ``units`` units."""
    idx = rng.integers(0, units, size=(replicates, units)) + np.arange(replicates)[:, None] * units
    return np.bincount(idx.ravel(), minlength=replicates * units).reshape(replicates, units)


def paired_bootstrap(score_a: list[Scorer], score_b: list[Scorer], n_units: int, resamples: int = 10000,
                     seed: int = 0, nested: bool = False) -> np.ndarray:
    """Per replicate: the mean over seeds drawn with replacement of metric(A) - metric(B), both on the same draw
    of dev units. ``score_a[s]`` and ``score_b[s]`` score seed s's runs; one unit draw per replicate serves every
    drawn seed (crossed), or one per drawn seed (``nested``)."""
    rng = np.random.default_rng(seed)
    n = len(score_a)
    out = []
    for start in range(0, resamples, CHUNK):
        r = min(CHUNK, resamples - start)
        seeds = rng.integers(0, n, size=(r, n))
        if not nested:
            draws = draw_counts(rng, r, n_units)
            diff = np.stack([score_a[s](draws) - score_b[s](draws) for s in range(n)], axis=1)
            out.append(np.take_along_axis(diff, seeds, axis=1).mean(axis=1))
            continue
        total = np.zeros(r)
        for slot in range(n):
            draws = draw_counts(rng, r, n_units)
            for s in np.unique(seeds[:, slot]):  # score each replicate only with the seed it drew here
                rows = seeds[:, slot] == s
                total[rows] += score_a[s](draws[rows]) - score_b[s](draws[rows])
        out.append(total / n)
    return np.concatenate(out)


@dataclass
class Comparison:
    """A - B over seeds and dev examples: per-seed full-dev scores, the mean difference and its interval."""

    seeds: list[int]
    a: list[float]  # per seed, on the full dev set
    b: list[float]
    mean_diff: float  # mean over seeds of a - b
    low: float  # 95% percentile interval of the replicates
    high: float
    replicates: np.ndarray
    units: int
    exact: bool  # task.score ran on every replicate


def compare_examples(runs_a: dict[int, tuple[Path, dict]], runs_b: dict[int, tuple[Path, dict]],
                     metric: str | None = None, resamples: int = 10000, seed: int = 0, nested: bool = False,
                     exact: bool = False) -> Comparison:
    """The hierarchical paired bootstrap of A - B over the seeds both sides have."""
    seeds = sorted(set(runs_a) & set(runs_b))
    if not seeds:
        raise SystemExit("no seed has runs on both sides")
    metric = metric_of(runs_a[seeds[0]][1], metric)
    loaded = {side: [load_predictions(*runs[s], metric) for s in seeds]
              for side, runs in (("a", runs_a), ("b", runs_b))}
    task = loaded["a"][0][0]
    ids = loaded["a"][0][1].ids
    for side in ("a", "b"):
        for s, (_, run) in zip(seeds, loaded[side]):
            if run.ids != ids:  # paired and crossed: every run scored the same dev examples, in the same order
                raise SystemExit(f"seed {s} ({side.upper()}): its dev examples differ from seed {seeds[0]} (A)'s")
    units = resampling_units(loaded["a"][0][1].records)
    built = {side: [scorer_for(task, metric, run, units, exact) for _, run in loaded[side]] for side in ("a", "b")}
    score_a, score_b = [f for f, _ in built["a"]], [f for f, _ in built["b"]]
    full = np.ones((1, len(units)), dtype=np.int64)  # every unit once: the full dev set
    a, b = [float(f(full)[0]) for f in score_a], [float(f(full)[0]) for f in score_b]
    reps = paired_bootstrap(score_a, score_b, len(units), resamples, seed, nested)
    low, high = np.quantile(reps, [0.025, 0.975])
    return Comparison(seeds, a, b, statistics.fmean(x - y for x, y in zip(a, b)), float(low), float(high), reps,
                      len(units), all(e for _, e in built["a"] + built["b"]))


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--metric")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--examples", action="store_true",
                    help="also the hierarchical bootstrap over seeds and dev examples (needs val-predictions.json)")
    ap.add_argument("--nested", action="store_true", help="with --examples: a fresh example draw per drawn seed")
    ap.add_argument("--exact", action="store_true", help="with --examples: task.score on every replicate (slow)")
    ns = ap.parse_args(argv)
    a, b = scores(ns.a, ns.metric), scores(ns.b, ns.metric)
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise SystemExit("no seed has runs on both sides")
    diffs = [a[s] - b[s] for s in seeds]
    lo, hi = seed_bootstrap(diffs, ns.resamples)
    print(f"seeds {seeds}")
    print(f"{ns.label_a}: " + ", ".join(f"{a[s]:.4f}" for s in seeds) + f"  mean {statistics.fmean(a[s] for s in seeds):.4f}")
    print(f"{ns.label_b}: " + ", ".join(f"{b[s]:.4f}" for s in seeds) + f"  mean {statistics.fmean(b[s] for s in seeds):.4f}")
    sd = statistics.stdev(diffs) if len(diffs) > 1 else 0.0
    print(f"{ns.label_a} - {ns.label_b}: mean {statistics.fmean(diffs):+.4f}, sd {sd:.4f}, "
          f"bootstrap 95% over seeds [{lo:+.4f}, {hi:+.4f}] (n = {len(diffs)})")
    if ns.examples:
        c = compare_examples(results_files(ns.a), results_files(ns.b), ns.metric, ns.resamples, nested=ns.nested,
                             exact=ns.exact)
        how = ("nested" if ns.nested else "crossed") + (", task.score per replicate" if c.exact else "")
        print(f"{ns.label_a} - {ns.label_b}: mean {c.mean_diff:+.4f}, bootstrap 95% over seeds and {c.units} dev "
              f"units ({how}) [{c.low:+.4f}, {c.high:+.4f}], replicate mean {c.replicates.mean():+.4f}")


if __name__ == "__main__":
    main()
