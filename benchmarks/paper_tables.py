"""Every table of the paper protocol (``benchmarks/paper.py``), rebuilt from the committed results folder.

    python benchmarks/paper_tables.py benchmarks/results [--output benchmarks/results/paper-tables.md]
        [--json benchmarks/results/paper-tables.json] [--tables defaults main ablations fewshot gates epochs]
        [--resamples 10000] [--no-examples]

Reads ``DIR/<phase>/<sweep>/<run>/results.json`` as ``paper.py --collect`` leaves them (``val-predictions.json``
beside them where the run wrote one) and writes markdown (stdout, or ``--output``) and, with ``--json``, the same
numbers as JSON. Scores are x100; std is the sample std over seeds; dev = the selection metric at the best epoch;
test = the test score at that epoch (NER: CoNLL03, CoNLL04, OntoNotes).

1. Defaults: per ``defaults/<task>-<setting>`` sweep, each setting's per-seed dev scores (ordered by seed),
   mean ± std, and each setting minus the reference (the protocol's default: attention dropout 0.1, mean gate
   pooling, token-gate bias 0) paired by seed: per-seed differences, mean ± std and a bootstrap 95% interval over
   seeds (``paired.seed_bootstrap``). Where the sweep has an lr grid (token-gate bias), each setting is shown at
   its own best lr (best mean dev over seeds), with every lr's mean listed.
2. Main table: tasks x FT / PT2 / APT, mean ± std over seeds at the chosen point (lr chosen on seed 11 by the
   lr stage, then the prefix length by the len stage: ``adaprefix report``'s choice, as the sweeps made it), the
   number of seeds ("partial" when fewer than the task's expected 5 (CB, COPA, WSC) or 3), the point, trainable
   parameters without the head and train examples/s; APT - PT2 paired by seed (bootstrap over seeds, and over
   seeds x dev examples with ``paired.compare_examples`` when every involved run has val-predictions.json); one
   line per task and method with the lr and length stages' seed-11 scores.
3. Ablations: per task, PT2 and APT (main table cells), APT without token gate, without layer gate, PT2+ and PT2*.
4. Few-shot: per task and K, FT / PT2 / APT mean ± std over draws (dev score at the epoch chosen on the select
   split).
5. Gates (``paper_gates.py``): per task, each layer's share of APT's gate weight from the probes of the main
   table's APT runs (or of their retrained copies under gates/, said in a note), mean ± sd over seeds, with a
   figure.
6. Epoch check (``paper_epochs.py``): where ``paper.py --phase epochs`` trained a prefix method's first seed with
   1.5x the epochs (a main-table run having peaked at its last epoch), its best dev and test against the main
   table's run of that seed, and APT - PT2 at both lengths (one row per round where it went on in rounds).
7. Main rows at the settled epochs (``paper_epochs.longer_table``): where ``paper.py --phase longer`` ran a NER
   task's whole main row again at the epochs the check settled on, each method's cell at both lengths and APT -
   PT2 paired by seed at both.
8. Grid edges (``paper_edges.py``): where ``paper.py --phase edges`` trained the first seed one lr past the edge
   the main table chose, that run beside the chosen point's, and whether the edge binds.

Figures (``--figures DIR``, default the folder of ``--output``; none without either): paper-main.png,
paper-ablations.png and paper-fewshot.png (``paper_plots.py``: every seed as a dot beside its cell's mean ± sd),
paper-gates.png and paper-epochs.png (dev per epoch of the epoch check's runs at both lengths).

Each table ends with the commits and machines its runs came from; sweeps the protocol expects but the folder lacks
are listed at the end (and on stderr). Each table can be built on its own::

    import paper_tables as pt                      # with benchmarks/ on sys.path
    sweep = pt.defaults_sweep(Path("benchmarks/results/defaults/cb-attention-dropout"))
    print(pt.defaults_markdown([sweep]))
    main = pt.main_table(Path("benchmarks/results/main"))
    print(pt.main_markdown(main))
    print(pt.ablations_markdown(pt.ablations_table(Path("benchmarks/results"), main)))
    print(pt.fewshot_markdown(pt.fewshot_table(Path("benchmarks/results/fewshot"))))
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from adaprefix.experiments.report import best_per_method, collect_rows, configuration, find_results

HERE = Path(__file__).resolve().parent


def _import_script(name: str):
    """benchmarks/<name>.py as the module ``name`` (its dataclasses look their module up in sys.modules)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


paired = _import_script("paired")
paper = _import_script("paper")  # the protocol's tasks, seeds and grids, as benchmarks/paper.py runs them
paper_gates = _import_script("paper_gates")  # table 5 and its figure
paper_plots = _import_script("paper_plots")  # the main, ablation and few-shot tables' figures
paper_epochs = _import_script("paper_epochs")  # table 6: the epoch check; table 7: the main rows at more epochs
paper_edges = _import_script("paper_edges")  # table 8: one lr past the grid's edge
per_class = _import_script("per_class")  # the main table's scores per class or entity type

# ---------------------------------------------------------------- the protocol (as benchmarks/paper.py runs it)

METHODS = ("finetune", "prefix", "apt")  # column order
LABEL = {"finetune": "FT", "prefix": "PT2", "apt": "APT"}
SMALL_TASKS = set(paper.SMALL_TASKS)  # 5 seeds; 3 otherwise
NER_TASKS = {"conll03", "conll04", "ontonotes"}
MAIN_TASKS = tuple(paper.MAIN_TASKS)
DEFAULTS_TASKS = paper.DEFAULTS_TASKS
DEFAULTS_SETTINGS = tuple(paper.DEFAULTS_SWEEPS)
# each defaults sweep's setting -> its default (paper.DEFAULTS_SWEEPS lists the default value first)
REFERENCE = {k: v[0] for grid in paper.DEFAULTS_SWEEPS.values() for k, v in paper.parse_grid(grid).items() if k != "lr"}
ABLATION_TASKS = paper.ABLATION_TASKS
ABLATIONS = {"no-token-gate": "APT w/o token gate", "no-layer-gate": "APT w/o layer gate", "pt2-plus": "PT2+",
             "pt2-star": "PT2*"}
# PT2+ and PT2* again at P-tuning v2's own chosen lr, where it differs from APT's (paper.py runs them only then)
AT_PT2_LR = {f"{name}-{paper.AT_PT2_LR}": f"{ABLATIONS[name]} at PT2's lr" for name in ("pt2-plus", "pt2-star")}
FEWSHOT_TASKS = paper.FEWSHOT_TASKS
SHOTS = paper.SHOTS
FEWSHOT_DRAWS = len(paper.SEEDS_SMALL)
LR_GRID_SIZE = 3  # lrs per lr stage (prefix methods 5e-3 / 1e-2 / 2e-2, FT 1e-5 / 3e-5 / 5e-5)
RESAMPLES = 10000


def expected_seeds(task: str) -> int:
    """Seeds the protocol runs per configuration: ``expected_seeds("cb") == 5``, ``expected_seeds("rte") == 3``."""
    return 5 if task in SMALL_TASKS else 3


# ---------------------------------------------------------------- runs


@dataclass
class Run:
    """One collected run: ``Run(Path(".../results.json"), json.loads(...))``; properties read its results."""

    path: Path  # the results.json
    results: dict

    @property
    def seed(self) -> int:
        return self.results["seed"]

    @property
    def task(self) -> str:
        return self.results["task"]

    @property
    def method(self) -> str:
        return self.results["method"]

    @property
    def metric(self) -> str:
        """The selection metric's name (``val.accuracy`` -> ``accuracy``)."""
        return paired.metric_of(self.results, None)

    @property
    def dev(self) -> float:
        return self.results["best"]["val"][self.metric]

    @property
    def other_dev(self) -> dict[str, float]:
        """The best epoch's other dev metrics (CB's macro-F1, MultiRC's EM ...), by name."""
        return {k: v for k, v in self.results["best"]["val"].items()
                if k not in (self.metric, "examples_scored") and isinstance(v, (int, float)) and not isinstance(v, bool)}

    @property
    def test(self) -> float | None:
        return (self.results["best"].get("test") or {}).get(self.metric)

    @property
    def lr(self) -> float | None:
        return self.results.get("train_args", {}).get("lr")

    @property
    def prefix_len(self) -> Any:
        """The prefix length (a list when it varies by layer, PT2*); None for fine-tuning."""
        if self.method == "finetune":
            return None
        return configuration(self.results).get("prefix_len")

    @property
    def params(self) -> int | None:
        return self.results.get("trainable_params_without_head")

    @property
    def examples_per_s(self) -> float | None:
        return self.results.get("train_examples_per_s")

    @property
    def best_epoch(self) -> int | None:
        return self.results.get("best_epoch")

    @property
    def epochs(self) -> int | None:
        """The epochs the run was scheduled for (not the ones it trained before an early stop)."""
        return self.results.get("train_args", {}).get("epochs")

    @property
    def commit(self) -> str:
        return str(self.results.get("adaprefix_commit") or self.results.get("commit") or "unknown")

    @property
    def machine(self) -> str:
        r = self.results  # as adaprefix report writes it
        return f"{r.get('machine')}/{r.get('cuda') or 'cpu'}/{r.get('cpus')} cpus"

    @property
    def predictions(self) -> Path:
        return paired.predictions_path(self.path, self.results)


def load_runs(folder: Path, notes: list[str] | None = None) -> list[Run]:
    """Every run at or below ``folder`` (none if it is not there), sorted by seed then path; a results.json that
    cannot be read or has no dev score is left out with a line in ``notes``.

        runs = load_runs(Path("benchmarks/results/defaults/cb-gate-pooling"))
    """
    if not folder.is_dir():
        return []
    runs = []
    for path in find_results([folder]):
        try:
            run = Run(path, json.loads(path.read_text(encoding="utf-8")))
            run.dev, run.seed  # noqa: B018 (checks the fields every table reads)
        except (ValueError, KeyError, TypeError) as err:
            if notes is not None:
                notes.append(f"{path}: left out ({type(err).__name__}: {err})")
            continue
        runs.append(run)
    return sorted(runs, key=lambda r: (r.seed, str(r.path)))


def has_runs(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*/results.json"))


def named_sweeps(phase_dir: Path, pattern: re.Pattern, form: str, notes: list[str]) -> list[tuple[Path, re.Match]]:
    """(folder, name match) of each sweep folder with runs under ``phase_dir`` whose name matches ``pattern``; a
    folder that does not is noted (``form``: the expected name, e.g. "<task>-<method>-epochs<N>") and left out."""
    found = []
    for folder in sorted(p for p in phase_dir.iterdir() if has_runs(p)) if phase_dir.is_dir() else []:
        match = pattern.fullmatch(folder.name)
        if match is None:
            notes.append(f"{folder.name}: not a sweep name of the {phase_dir.name} phase ({form}); left out")
        else:
            found.append((folder, match))
    return found


def one_per_seed(runs: Iterable[Run], notes: list[str] | None = None, where: str = "") -> list[Run]:
    """The first run of each seed, in seed order; a second run of a seed is dropped, with a note when its dev score
    differs from the kept one's (the same configuration run twice, as seed 11 at length 16 in a prefix method's lr
    and len stages, should score the same: training is seeded)."""
    kept: dict[int, Run] = {}
    for run in runs:
        if run.seed not in kept:
            kept[run.seed] = run
        elif notes is not None and not math.isclose(kept[run.seed].dev, run.dev, abs_tol=1e-12):
            first = kept[run.seed]
            notes.append(f"{where}: seed {run.seed} twice with different dev scores: "
                         f"{first.path.parent.parent.name}/{first.path.parent.name} {fmt(first.dev)} (kept), "
                         f"{run.path.parent.parent.name}/{run.path.parent.name} {fmt(run.dev)}")
    return [kept[s] for s in sorted(kept)]


def summarize(runs: list[Run], expected: int | None = None) -> dict:
    """Mean and sample std over ``runs`` (one per seed) of the dev score and, where every run has one, the test
    score; ``partial`` when fewer seeds than ``expected``. Example: ``summarize(runs, 5)["mean"]``."""
    dev = [r.dev for r in runs]
    test = [r.test for r in runs]
    test = test if runs and all(t is not None for t in test) else None
    params = sorted({r.params for r in runs if r.params is not None})
    shared = set.intersection(*(set(r.other_dev) for r in runs)) if runs else set()
    other = {name: {"values": [r.other_dev[name] for r in runs],
                    "mean": statistics.fmean(r.other_dev[name] for r in runs),
                    "std": statistics.stdev([r.other_dev[name] for r in runs]) if len(runs) > 1 else None}
             for name in sorted(shared)}
    speeds = [r.examples_per_s for r in runs if r.examples_per_s is not None]
    return {
        "n": len(runs), "expected": expected, "partial": bool(expected and 0 < len(runs) < expected),
        "metric": runs[0].metric if runs else None, "seeds": [r.seed for r in runs], "dev": dev,
        "mean": statistics.fmean(dev) if dev else None, "std": statistics.stdev(dev) if len(dev) > 1 else None,
        "test": test, "test_mean": statistics.fmean(test) if test else None,
        "test_std": statistics.stdev(test) if test and len(test) > 1 else None,
        "other": other,  # the other dev metrics every run has, at the same (best) epochs
        "params": params[0] if len(params) == 1 else (params or None),
        "examples_per_s": statistics.fmean(speeds) if speeds else None,
        "best_epochs": [r.best_epoch for r in runs], "epochs": _distinct([r.epochs for r in runs]),
        "lr": sorted({r.lr for r in runs if r.lr is not None}),
        "prefix_len": _distinct([r.prefix_len for r in runs]),
        "runs": [str(r.path.parent) for r in runs],
    }


def _distinct(values: list) -> list:
    out = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


# ---------------------------------------------------------------- formatting


def fmt(x: float | None) -> str:
    """A score x100, one decimal: ``fmt(0.7642857) == "76.4"``; "-" for None."""
    return "-" if x is None else f"{100 * x:.1f}"


def fmt_diff(x: float) -> str:
    """A difference x100 with its sign: ``fmt_diff(-0.0179) == "-1.8"``."""
    return f"{100 * x:+.1f}"


def fmt_diff_pm(d: dict) -> str:
    """A paired difference's mean with its sign and, where there is one, its sd: "+2.1 ± 1.5" (x100)."""
    return fmt_diff(d["mean"]) + ("" if d["std"] is None else f" ± {fmt(d['std'])}")


def fmt_examples(ex: dict | str, units: bool = False) -> str:
    """The bootstrap over seeds x dev examples: "+2.1 [-5.7, +10.0]" (with its units), or the reason it is n/a."""
    if isinstance(ex, str):
        return ex
    return f"{fmt_diff(ex['mean'])} {fmt_interval(ex)}" + (f" ({ex['units']} units)" if units else "")


def fmt_pm(mean: float | None, std: float | None) -> str:
    """``mean ± std`` x100 (the mean alone for one seed): ``fmt_pm(0.7643, 0.0149) == "76.4 ± 1.5"``."""
    if mean is None:
        return "-"
    return fmt(mean) if std is None else f"{fmt(mean)} ± {fmt(std)}"


def fmt_lr(lr: float | None) -> str:
    return "-" if lr is None else f"{lr:g}"


def fmt_len(length: Any) -> str:
    if length is None:
        return "-"
    if isinstance(length, list):
        return "[" + ",".join(map(str, length)) + "]"
    return str(length)


def fmt_count(summary: dict) -> str:
    """``(5)``, or ``(2/5, partial)`` when seeds are missing."""
    if summary["partial"]:
        return f"({summary['n']}/{summary['expected']}, partial)"
    return f"({summary['n']})"


def fmt_cell(summary: dict | None, with_test: bool = False) -> str:
    """A table cell: dev mean ± std (and test, for NER) with the seed count; "-" where there is no run."""
    if not summary or not summary["n"]:
        return "-"
    text = fmt_pm(summary["mean"], summary["std"])
    if with_test and summary["test"] is not None:
        text = f"dev {text} · test {fmt_pm(summary['test_mean'], summary['test_std'])}"
    return f"{text} {fmt_count(summary)}"


def last_epoch_peaks(summary: dict | None) -> list[int]:
    """Seeds of ``summary`` whose best epoch is the last one scheduled (the protocol's rule says add epochs)."""
    if not summary or len(summary.get("epochs") or []) != 1 or summary["epochs"][0] is None:
        return []  # no single scheduled epoch count to compare with
    last = summary["epochs"][0]
    return [seed for seed, best in zip(summary["seeds"], summary["best_epochs"]) if best == last]


def last_epoch_line(cells: list[tuple[str, dict | None]], unit: str = "seeds") -> str:
    """One sentence naming the (label, summary) cells with seeds whose best epoch is the last one scheduled."""
    late = [f"{label} ({len(seeds)} of {cell['n']} {unit})" for label, cell in cells
            if (seeds := last_epoch_peaks(cell))]
    return ("The protocol wants enough epochs that the best epoch is not the last. Best at the last epoch: "
            + ("; ".join(late) + "." if late else "none."))


def fmt_best_epochs(summary: dict) -> str:
    """``31, 40 / 40`` (best epoch per seed / epochs scheduled); ``-`` where runs do not record them."""
    best = summary.get("best_epochs") or []
    if not best or any(b is None for b in best):
        return "-"
    epochs = summary.get("epochs") or []
    of = "/".join(map(str, epochs)) if epochs and None not in epochs else "?"
    return f"{', '.join(map(str, best))} / {of}"


def fmt_params(params: Any) -> str:
    if params is None:
        return "-"
    return ", ".join(f"{p:,}" for p in params) if isinstance(params, list) else f"{params:,}"


def provenance(runs: Iterable[Run]) -> str:
    """``Commits: <hash> (20 runs). Machines: x86_64/cpu/2 cpus (20 runs).`` for the runs a table read."""
    commits: dict[str, int] = {}
    machines: dict[str, int] = {}
    seen = set()
    for run in runs:
        if run.path in seen:
            continue
        seen.add(run.path)
        commits[run.commit] = commits.get(run.commit, 0) + 1
        machines[run.machine] = machines.get(run.machine, 0) + 1
    if not seen:
        return "Commits: none. Machines: none (no runs)."

    def counted(d: dict[str, int]) -> str:
        return ", ".join(f"{k} ({v} run{'s' if v != 1 else ''})" for k, v in sorted(d.items()))

    return f"Commits: {counted(commits)}. Machines: {counted(machines)}."


def _notes(notes: list[str]) -> str:
    return "".join(f"\nNote: {n}" for n in notes) + ("\n" if notes else "")


# ---------------------------------------------------------------- paired differences


def paired_by_seed(a: list[Run], b: list[Run], resamples: int = RESAMPLES, examples: bool = True) -> dict | None:
    """A - B over the seeds both have: per-seed dev differences, mean, sample std, bootstrap 95% over seeds
    (``paired.seed_bootstrap``), the same for test where both have it, and the hierarchical bootstrap over seeds
    x dev examples (``paired.compare_examples``) when every involved run has val-predictions.json (else the
    reason it is n/a). None when no seed is on both sides.

        d = paired_by_seed(apt_runs, pt2_runs); d["mean"], d["low"], d["high"], d["examples"]
    """
    a_by, b_by = {r.seed: r for r in a}, {r.seed: r for r in b}
    seeds = sorted(set(a_by) & set(b_by))
    if not seeds:
        return None
    out = {"seeds": seeds, **_diff_stats([a_by[s].dev - b_by[s].dev for s in seeds], resamples)}
    if all(a_by[s].test is not None and b_by[s].test is not None for s in seeds):
        out["test"] = _diff_stats([a_by[s].test - b_by[s].test for s in seeds], resamples)
    out["examples"] = examples_bootstrap([a_by[s] for s in seeds], [b_by[s] for s in seeds], resamples) \
        if examples else "not computed (--no-examples)"
    return out


def _diff_stats(diffs: list[float], resamples: int) -> dict:
    low, high = paired.seed_bootstrap(diffs, resamples)
    return {"diffs": diffs, "mean": statistics.fmean(diffs), "std": statistics.stdev(diffs) if len(diffs) > 1 else None,
            "low": low, "high": high}


def examples_bootstrap(a: list[Run], b: list[Run], resamples: int = RESAMPLES) -> dict | str:
    """``{"mean", "low", "high", "units", "seeds"}`` of the paired bootstrap over seeds and dev examples (crossed),
    or "n/a (no predictions)" when a run lacks val-predictions.json, or "n/a (<why>)" when paired.py refuses."""
    if not all(r.predictions.is_file() for r in (*a, *b)):
        return "n/a (no predictions)"
    try:
        c = paired.compare_examples({r.seed: (r.path, r.results) for r in a}, {r.seed: (r.path, r.results) for r in b},
                                    resamples=resamples)
    except SystemExit as err:  # paired.py's refusals (predictions of another epoch, scores that disagree, ...)
        return f"n/a ({err})"
    except (AssertionError, KeyError, ValueError, TypeError) as err:  # a malformed predictions file: say so, go on
        return f"n/a ({type(err).__name__}: {err})"
    return {"mean": c.mean_diff, "low": c.low, "high": c.high, "units": c.units, "seeds": c.seeds}


def fmt_interval(d: dict) -> str:
    return f"[{fmt_diff(d['low'])}, {fmt_diff(d['high'])}]"


# ---------------------------------------------------------------- 1. defaults


def setting_of(sweep: str, task: str) -> str:
    """The setting a defaults sweep varies, from its name: ``setting_of("cb-gate-pooling", "cb") == "gate_pooling"``."""
    return sweep[len(task) + 1:].replace("-", "_") if sweep.startswith(task + "-") else sweep.replace("-", "_")


def _value_key(value: Any) -> str:
    return json.dumps(float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value)


def defaults_sweep(folder: Path, resamples: int = RESAMPLES) -> dict | None:
    """One defaults sweep (``defaults/<task>-<setting>``): per setting value, its runs at its chosen lr (the lr of
    best mean dev among the lrs with the most seeds, when the sweep has several), per-seed dev scores, mean and std, and every other value minus the
    reference value paired by seed. None when the folder has no runs.

        s = defaults_sweep(Path("benchmarks/results/defaults/cb-attention-dropout"))
        s["settings"][0]["mean"], s["paired"][0]["mean"], s["paired"][0]["low"]
    """
    notes: list[str] = []
    runs = load_runs(folder, notes)
    if not runs:
        return None
    task = runs[0].task
    setting = setting_of(folder.name, task)
    if any(setting not in r.results.get("train_args", {}) for r in runs):
        notes.append(f"{folder.name}: '{setting}' is not a training argument of every run")
    groups: dict[str, list[Run]] = {}
    values: dict[str, Any] = {}
    for run in runs:
        value = run.results.get("train_args", {}).get(setting)
        if value is None and setting in REFERENCE:
            # a copy of the main table's identical run (paper.py copies only that), which left the setting at its
            # default: attention dropout at the backbone's (copied only where that is 0.1), pooling and bias unset
            value = REFERENCE[setting]
        key = _value_key(value)
        values.setdefault(key, value)
        groups.setdefault(key, []).append(run)
    lrs = sorted({r.lr for r in runs if r.lr is not None})
    reference = next((k for k, v in values.items() if setting in REFERENCE and v == REFERENCE[setting]), None)
    order = sorted(values, key=lambda k: (k != reference, str(values[k])))
    settings = []
    for key in order:
        by_lr: dict[float | None, list[Run]] = {}
        for run in groups[key]:
            by_lr.setdefault(run.lr, []).append(run)
        lr_stats = {lr: summarize(one_per_seed(rs, notes, f"{folder.name} {setting}={values[key]} lr {fmt_lr(lr)}"))
                    for lr, rs in sorted(by_lr.items(), key=lambda kv: (kv[0] is None, kv[0] or 0.0))}
        # the lr of best mean dev among those with the most seeds in (a one-seed arm of a partial sweep does not
        # outrank a five-seed one); first of equal means: the smallest lr
        most = max(st["n"] for st in lr_stats.values())
        chosen = max((lr for lr in lr_stats if lr_stats[lr]["n"] == most), key=lambda lr: lr_stats[lr]["mean"])
        settings.append({**lr_stats[chosen], "value": values[key], "reference": key == reference, "lr": chosen,
                         "lr_means": [{"lr": lr, "mean": s["mean"], "n": s["n"]} for lr, s in lr_stats.items()],
                         "_runs": one_per_seed(by_lr[chosen])})
    base = settings[0]
    comparisons = []
    for s in settings[1:]:
        d = paired_by_seed(s["_runs"], base["_runs"], resamples, examples=False)
        if d is None:
            notes.append(f"{folder.name}: {setting}={s['value']} shares no seed with {base['value']}")
            continue
        d.pop("examples", None)
        comparisons.append({"value": s["value"], "minus": base["value"], **d})
    return {"sweep": folder.name, "task": task, "method": runs[0].method, "setting": setting, "metric": runs[0].metric,
            "lr_grid": len(lrs) > 1, "lrs": lrs, "settings": settings, "paired": comparisons, "notes": notes,
            "provenance": provenance(runs), "runs": len(runs)}


def defaults_table(defaults_dir: Path, resamples: int = RESAMPLES) -> list[dict]:
    """Every defaults sweep under ``defaults_dir`` (protocol order first, then any other), as
    :func:`defaults_sweep` makes them; [] when the phase is not there."""
    if not defaults_dir.is_dir():
        return []
    names = [p.name for p in defaults_dir.iterdir() if has_runs(p)]
    rank = {f"{t}-{s}": i for i, (t, s) in enumerate((t, s) for t in DEFAULTS_TASKS for s in DEFAULTS_SETTINGS)}
    names.sort(key=lambda n: (rank.get(n, len(rank)), n))
    return [s for s in (defaults_sweep(defaults_dir / n, resamples) for n in names) if s is not None]


def defaults_markdown(sweeps: list[dict]) -> str:
    """Markdown of :func:`defaults_table`'s sweeps, one table each with its provenance line."""
    out = ["## 1. Defaults\n"]
    if not sweeps:
        return out[0] + "\nNo defaults runs.\n"
    for s in sweeps:
        out.append(f"### {s['sweep']} ({LABEL.get(s['method'], s['method'])}, {s['task']}: {s['setting']}; "
                   f"dev {s['metric']} x100)\n")
        out.append(f"| {s['setting']} | lr | seeds | dev {s['metric']} per seed | mean ± sd |")
        out.append("|---|---|---|---|---|")
        for st in s["settings"]:
            label = f"{st['value']}" + (" (default)" if st["reference"] else "")
            out.append(f"| {label} | {fmt_lr(st['lr'])} | {','.join(map(str, st['seeds']))} | "
                       f"{', '.join(fmt(x) for x in st['dev'])} | {fmt_pm(st['mean'], st['std'])} |")
        for d in s["paired"]:
            out.append(f"| paired difference ({d['value']} - {d['minus']}) |  | {','.join(map(str, d['seeds']))} | "
                       f"{', '.join(fmt_diff(x) for x in d['diffs'])} | {fmt_diff_pm(d)}, bootstrap 95% over "
                       f"seeds {fmt_interval(d)} |")
        if s["lr_grid"]:
            out.append("\nlr chosen per setting: the lr of best mean dev among those with the most seeds in "
                       "(dev mean x100, seeds): "
                       + "; ".join(f"{st['value']}: " + ", ".join(
                           (f"**{fmt_lr(m['lr'])} {fmt(m['mean'])}**" if m["lr"] == st["lr"] else
                            f"{fmt_lr(m['lr'])} {fmt(m['mean'])}") + f" ({m['n']})" for m in st["lr_means"])
                           for st in s["settings"]) + ".")
        out.append(f"\n{s['provenance']}{_notes(s['notes'])}\n")
    return "\n".join(out)


# ---------------------------------------------------------------- 2. main table


def _same_lr(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9)


def _stage(folder: Path, task: str, method: str) -> tuple[list[dict], dict | None]:
    """(``adaprefix report`` rows of a stage folder, the configuration it chooses: best mean dev)."""
    if not has_runs(folder):
        return [], None
    rows = collect_rows([folder])
    best = best_per_method(rows).get(f"{task}/{method}")
    return rows, (best["config"] if best else None)


def chosen_point(main_dir: Path, task: str, method: str, notes: list[str] | None = None) -> tuple[dict | None, dict]:
    """(point, how): the lr chosen by the lr stage (seed 11, best dev) and, for prefix methods, the length chosen
    by the len stage at that lr, as ``{"lr": 0.01, "prefix_len": 8}`` (prefix_len None for FT); where the lr
    stage is missing, the point the seeds stage ran at. ``how`` holds each stage's scores for the report.

        point, how = chosen_point(Path("benchmarks/results/main"), "cb", "apt")
    """
    notes = notes if notes is not None else []
    where = f"main/{task}-{method}"
    lr_rows, lr_best = _stage(main_dir / f"{task}-{method}-lr", task, method)
    len_rows, len_best = _stage(main_dir / f"{task}-{method}-len", task, method) if method != "finetune" else ([], None)
    how = {"lr_stage": [{"lr": r["config"].get("lr"), "mean": r["dev"]["mean"], "seeds": r["seeds"]} for r in lr_rows],
           "len_stage": [{"prefix_len": r["config"].get("prefix_len"), "lr": r["config"].get("lr"),
                          "mean": r["dev"]["mean"], "seeds": r["seeds"]} for r in len_rows],
           "source": "stages"}
    how["lr_stage"].sort(key=lambda x: x["lr"] or 0.0)
    how["len_stage"].sort(key=lambda x: (0, x["prefix_len"], "") if isinstance(x["prefix_len"], int)
                          else (1, 0, str(x["prefix_len"])))  # 8 before 16
    seeds_runs = load_runs(main_dir / f"{task}-{method}-seeds")
    if lr_best is None:
        if not seeds_runs:
            return None, how
        first = seeds_runs[0]
        notes.append(f"{where}: no lr stage; the point is the one the seeds stage ran at")
        how["source"] = "seeds stage"
        return {"lr": first.lr, "prefix_len": first.prefix_len}, how
    point = {"lr": lr_best.get("lr"), "prefix_len": None}
    if len(lr_rows) < LR_GRID_SIZE:
        notes.append(f"{where}-lr: {len(lr_rows)} of {LR_GRID_SIZE} lrs in")
    if method != "finetune":
        point["prefix_len"] = lr_best.get("prefix_len")
        if len_best is None:
            notes.append(f"{where}-len: missing; the length is the lr stage's ({fmt_len(point['prefix_len'])})")
        else:
            if not _same_lr(len_best.get("lr"), point["lr"]):
                notes.append(f"{where}-len ran at lr {fmt_lr(len_best.get('lr'))}, the lr stage chooses "
                             f"{fmt_lr(point['lr'])}")
            point["prefix_len"] = len_best.get("prefix_len")
            if len(len_rows) < 2:
                notes.append(f"{where}-len: {len(len_rows)} of 2 lengths in")
    return point, how


def _at_point(run: Run, point: dict) -> bool:
    return _same_lr(run.lr, point["lr"]) and (run.method == "finetune" or run.prefix_len == point["prefix_len"])


def main_cell(main_dir: Path, task: str, method: str, notes: list[str] | None = None,
              runs_out: list[Run] | None = None) -> dict | None:
    """One cell of the main table: :func:`summarize` of the runs at :func:`chosen_point` (seed 11 from the len
    stage, else the lr stage; the other seeds from the seeds stage), with ``point`` and ``how``; None when the
    task and method have no run. ``runs_out`` receives every run read (for provenance).

        cell = main_cell(Path("benchmarks/results/main"), "cb", "apt"); cell["mean"], cell["partial"]
    """
    notes = notes if notes is not None else []
    point, how = chosen_point(main_dir, task, method, notes)
    if point is None:
        return None
    candidates = []
    for stage in ("len", "lr", "seeds"):
        stage_runs = load_runs(main_dir / f"{task}-{method}-{stage}", notes)
        if runs_out is not None:
            runs_out.extend(stage_runs)
        off = [r for r in stage_runs if not _at_point(r, point)]
        if stage == "seeds" and off:
            notes.append(f"main/{task}-{method}-seeds: seeds {[r.seed for r in off]} ran at lr "
                         f"{fmt_lr(off[0].lr)}, length {fmt_len(off[0].prefix_len)}, not at the chosen point; left out")
        candidates += [r for r in stage_runs if _at_point(r, point)]
    cell_runs = one_per_seed(candidates, notes, f"main/{task}-{method} at the chosen point")
    cell = summarize(cell_runs, expected_seeds(task))
    cell.update({"task": task, "method": method, "point": point, "how": how, "_runs": cell_runs})
    return cell


def _main_tasks(main_dir: Path) -> list[str]:
    found = set()
    if main_dir.is_dir():
        for p in main_dir.iterdir():
            m = re.fullmatch(r"(.+)-(prefix|apt|finetune)-(lr|len|seeds)", p.name)
            if m and has_runs(p):
                found.add(m.group(1))
    return [t for t in MAIN_TASKS if t in found] + sorted(found - set(MAIN_TASKS))


def main_table(main_dir: Path, resamples: int = RESAMPLES, examples: bool = True) -> dict:
    """The main table: ``{"tasks", "cells": {task: {method: cell | None}}, "paired": {task: APT - PT2 | None},
    "notes", "provenance"}`` (cells as :func:`main_cell`, paired as :func:`paired_by_seed`).

        t = main_table(Path("benchmarks/results/main"), examples=False); t["cells"]["cb"]["apt"]["mean"]
    """
    notes: list[str] = []
    runs: list[Run] = []
    tasks = _main_tasks(main_dir)
    cells = {t: {m: main_cell(main_dir, t, m, notes, runs) for m in METHODS} for t in tasks}
    comparisons, classes = {}, {}
    for t in tasks:
        apt, pt2 = cells[t]["apt"], cells[t]["prefix"]
        comparisons[t] = paired_by_seed(apt["_runs"], pt2["_runs"], resamples, examples) if apt and pt2 else None
        classes[t] = main_per_class(cells[t])
    return {"tasks": tasks, "cells": cells, "paired": comparisons, "per_class": classes, "notes": notes,
            "subsets": train_subsets(runs), "provenance": provenance(runs)}


def train_subsets(runs: list[Run]) -> dict[str, str]:
    """Per task whose runs trained or were scored on a stated subset (``--train-subset``, ``--eval-subset``), what
    that was: "2,000 of 27,243 training records; 1,002 of 4,848 dev records" (counts from the runs' results; runs
    that disagree are said, e.g. some on the whole files)."""
    found: dict[str, set] = {}
    for run in runs:
        doc, args = run.results, run.results.get("train_args") or {}
        train = (doc.get("train_examples"), doc.get("train_records")) if args.get("train_subset") else None
        dev = (doc.get("val_examples"), doc.get("val_records")) if args.get("eval_subset") else None
        found.setdefault(run.task, set()).add((train, dev))
    out = {}
    for task, kinds in sorted(found.items()):
        parts = []
        for index, what in ((0, "training records"), (1, "dev records")):
            cuts = sorted({k[index] for k in kinds if k[index] is not None}, key=str)
            if cuts:
                parts.append(" / ".join(f"{n:,} of {total:,}" if total else f"{n:,}" for n, total in cuts) + f" {what}")
        if parts:
            out[task] = "; ".join(parts) + (", other runs on the whole files" if (None, None) in kinds else "")
    return out


def main_per_class(cells: dict[str, dict | None]) -> dict | None:
    """:func:`per_class.per_class_table` of one task's main-table runs (every method with runs, APT - PT2 paired
    by seed); None for multiple-choice tasks, or when APT or PT2 is missing or a run has no predictions."""
    present = [m for m in METHODS if cells[m]]
    if not {"apt", "prefix"} <= set(present) or \
            not all(r.predictions.is_file() for m in present for r in cells[m]["_runs"]):
        return None
    groups = {LABEL[m]: {r.seed: r.predictions for r in cells[m]["_runs"]} for m in present}
    return per_class.per_class_table(groups, (LABEL["apt"], LABEL["prefix"]))


def _how_line(task: str, method: str, cell: dict) -> str:
    how, point = cell["how"], cell["point"]
    if how["source"] != "stages":
        return f"- {task} {LABEL[method]}: no lr stage; point from the {how['source']}"
    parts = ["lr stage " + ", ".join(
        (f"**{fmt_lr(s['lr'])}: {fmt(s['mean'])}**" if _same_lr(s["lr"], point["lr"]) else
         f"{fmt_lr(s['lr'])}: {fmt(s['mean'])}") for s in how["lr_stage"])]
    if method != "finetune":
        parts.append("len stage " + (", ".join(
            (f"**{fmt_len(s['prefix_len'])}: {fmt(s['mean'])}**" if s["prefix_len"] == point["prefix_len"] else
             f"{fmt_len(s['prefix_len'])}: {fmt(s['mean'])}") for s in how["len_stage"]) or "missing"))
    return f"- {task} {LABEL[method]}: " + "; ".join(parts) + f" -> lr {fmt_lr(point['lr'])}" + \
        (f", length {fmt_len(point['prefix_len'])}" if method != "finetune" else "")


def main_markdown(table: dict) -> str:
    """Markdown of :func:`main_table`: the scores, the points and costs, APT - PT2, how the points were chosen."""
    out = ["## 2. Main table\n"]
    if not table["tasks"]:
        return out[0] + "\nNo main-table runs.\n"
    out.append("Dev = the selection metric at the best epoch (x100, mean ± sd over seeds); NER cells also give test "
               "F1 at that epoch. (n) = seeds; 'partial' = fewer than the task's expected seeds (5 for CB, COPA, "
               "WSC; 3 otherwise); '-' = no run.\n")
    out.append("| task | metric | " + " | ".join(LABEL[m] for m in METHODS) + " |")
    out.append("|---|---|" + "---|" * len(METHODS))
    for t in table["tasks"]:
        cells = table["cells"][t]
        metric = next((c["metric"] for c in cells.values() if c), "-")
        label = f"{t} (subset)" if t in table.get("subsets", {}) else t
        out.append(f"| {label} | {metric} | " + " | ".join(fmt_cell(cells[m], with_test=t in NER_TASKS)
                                                           for m in METHODS) + " |")
    for t, cut in table.get("subsets", {}).items():
        out.append(f"\n(subset) {t}: a fixed random {cut} (`--train-subset`, `--eval-subset`: the same draw for "
                   "every run; a split not named is whole): not comparable with a full-data row.")
    other_lines = []
    for t in table["tasks"]:
        cells = table["cells"][t]
        names = sorted({n for c in cells.values() if c for n in c.get("other", {})})
        for name in names:
            parts = [f"{LABEL[m]} {fmt_pm(cells[m]['other'][name]['mean'], cells[m]['other'][name]['std'])}"
                     for m in METHODS if cells[m] and name in cells[m].get("other", {})]
            other_lines.append(f"- {t} {name}: " + " · ".join(parts))
    if other_lines:
        out.append("\nOther dev metrics at the same (best) epochs, x100, mean ± sd over the same seeds:\n")
        out.extend(other_lines)
    out.append("\nChosen points and cost (best epoch per seed, of the epochs scheduled):\n")
    out.append("| task | method | seeds | lr | prefix len | params (no head) | train examples/s | best epoch |")
    out.append("|---|---|---|---|---|---|---|---|")
    for t in table["tasks"]:
        for m in METHODS:
            c = table["cells"][t][m]
            if not c:
                out.append(f"| {t} | {LABEL[m]} | - | - | - | - | - | - |")
                continue
            speed = "-" if c["examples_per_s"] is None else f"{c['examples_per_s']:.1f}"
            out.append(f"| {t} | {LABEL[m]} | {','.join(map(str, c['seeds'])) or '-'} {fmt_count(c)} | "
                       f"{fmt_lr(c['point']['lr'])} | {fmt_len(c['point']['prefix_len'])} | {fmt_params(c['params'])} "
                       f"| {speed} | {fmt_best_epochs(c)} |")
    out.append("\n" + last_epoch_line([(f"{t} {LABEL[m]}", table["cells"][t][m])
                                         for t in table["tasks"] for m in METHODS]))
    out.append("\nAPT - PT2, paired by seed (x100; bootstrap 95% intervals over seeds, and over seeds x dev examples, "
               "crossed, from val-predictions.json):\n")
    out.append("| task | score | seeds | per seed | mean ± sd | 95% over seeds | 95% over seeds x examples |")
    out.append("|---|---|---|---|---|---|---|")
    for t in table["tasks"]:
        d = table["paired"][t]
        if d is None:
            out.append(f"| {t} | - | - | - | - | - | n/a (APT or PT2 missing) |")
            continue
        metric = table["cells"][t]["apt"]["metric"]
        rows = [("dev " + metric, d, fmt_examples(d["examples"], units=True))]
        if "test" in d:
            rows.append(("test " + metric, d["test"], "n/a (dev predictions only)"))
        for label, s, ex_cell in rows:
            out.append(f"| {t} | {label} | {','.join(map(str, d['seeds']))} | "
                       f"{', '.join(fmt_diff(x) for x in s['diffs'])}"
                       f" | {fmt_diff_pm(s)} | {fmt_interval(s)} | {ex_cell} |")
    with_classes = [t for t in table["tasks"] if table.get("per_class", {}).get(t)]
    if with_classes:
        out.append("\nPer class (labels; entity types for NER), dev F1 x100 at the same epochs, mean ± sd over the "
                   "same seeds (`per_class.py`; support = gold examples or entities in dev):\n")
        for t in with_classes:
            out.append(per_class.per_class_markdown(table["per_class"][t], f"{t}:\n"))
    out.append("\nHow the points were chosen (seed 11, dev x100; chosen in bold: the best dev, ties to fewer "
               "trainable parameters, then the smaller learning rate, as the sweeps chose):\n")
    for t in table["tasks"]:
        for m in METHODS:
            c = table["cells"][t][m]
            out.append(_how_line(t, m, c) if c else f"- {t} {LABEL[m]}: no run")
    out.append(f"\n{table['provenance']}{_notes(table['notes'])}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- 3. ablations


def ablations_table(root: Path, main: dict | None = None, resamples: int = RESAMPLES, examples: bool = True) -> dict:
    """Per task with ablation runs: PT2 and APT (the main table's cells) and each ablation sweep's
    :func:`summarize` (all its runs, one per seed), as ``{"tasks", "rows": {task: [{"variant", ...summary,
    "vs_apt"}]}, "notes", "provenance"}``. ``vs_apt`` is the variant minus APT, paired by seed
    (:func:`paired_by_seed`; None for APT itself or when no seed is on both sides). ``main`` is
    :func:`main_table`'s result (built without the examples bootstrap when not given).

        a = ablations_table(Path("benchmarks/results")); a["rows"]["cb"][2]["mean"]  # APT w/o token gate
    """
    notes: list[str] = []
    abl_dir = root / "ablations"
    found = set()
    if abl_dir.is_dir():
        for p in abl_dir.iterdir():
            m = re.fullmatch(r"(.+)-(" + "|".join(map(re.escape, {**ABLATIONS, **AT_PT2_LR})) + ")", p.name)
            if m and has_runs(p):
                found.add(m.group(1))
    tasks = [t for t in ABLATION_TASKS if t in found] + sorted(found - set(ABLATION_TASKS))
    if tasks and main is None:
        main = main_table(root / "main", examples=False)
    runs: list[Run] = []
    rows: dict[str, list[dict]] = {}
    for t in tasks:
        task_rows = []
        cells = (main or {}).get("cells", {}).get(t, {})
        for method in ("prefix", "apt"):
            cell = cells.get(method)
            if cell:
                runs.extend(cell["_runs"])
            task_rows.append({"variant": LABEL[method], "sweep": f"main/{t}-{method}-*", **(
                {k: v for k, v in cell.items() if k not in ("how", "_runs")} if cell else
                summarize([], expected_seeds(t)))})
        apt_cell = cells.get("apt") or {}
        apt_point, apt_runs = apt_cell.get("point"), apt_cell.get("_runs", [])
        pt2_runs = (cells.get("prefix") or {}).get("_runs", [])
        task_rows[0]["vs_apt"] = paired_by_seed(pt2_runs, apt_runs, resamples, examples)
        task_rows[1]["vs_apt"] = None
        for name, label in {**ABLATIONS, **{k: v for k, v in AT_PT2_LR.items() if has_runs(abl_dir / f"{t}-{k}")}}.items():
            sweep_runs = one_per_seed(load_runs(abl_dir / f"{t}-{name}", notes), notes, f"ablations/{t}-{name}")
            runs.extend(sweep_runs)
            s = summarize(sweep_runs, expected_seeds(t))
            if name not in AT_PT2_LR and sweep_runs and apt_point and \
                    any(not _same_lr(r.lr, apt_point["lr"]) for r in sweep_runs):
                notes.append(f"ablations/{t}-{name}: lr {fmt_lr(sweep_runs[0].lr)}, the main table's APT point has "
                             f"{fmt_lr(apt_point['lr'])}")
            task_rows.append({"variant": label, "sweep": f"ablations/{t}-{name}", **s,
                              "vs_apt": paired_by_seed(sweep_runs, apt_runs, resamples, examples)})
        rows[t] = task_rows
    return {"tasks": tasks, "rows": rows, "notes": notes, "provenance": provenance(runs)}


def ablations_markdown(table: dict) -> str:
    """Markdown of :func:`ablations_table`: one row per task and variant."""
    out = ["## 3. Ablations\n"]
    if not table["tasks"]:
        return out[0] + "\nNo ablation runs.\n"
    out.append("Dev x100, mean ± sd over seeds (NER: test F1 too); PT2 and APT are the main table's cells. "
               "'- APT' = the variant's dev minus APT's, paired by seed: mean ± sd, bootstrap 95% over seeds, and "
               "over seeds x dev examples (crossed) where every run kept its predictions.\n")
    out.append("| task | variant | dev | test | seeds | lr | prefix len | params (no head) | best epoch | - APT (dev) "
               "| 95% over seeds | 95% over seeds x examples |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for t in table["tasks"]:
        for r in table["rows"][t]:
            if not r["n"]:
                out.append(f"| {t} | {r['variant']} | - | - | - | - | - | - | - | - | - | - |")
                continue
            length = r["prefix_len"][0] if len(r["prefix_len"]) == 1 else r["prefix_len"]
            out.append(f"| {t} | {r['variant']} | {fmt_pm(r['mean'], r['std'])} ({r['metric']}) | "
                       f"{fmt_pm(r['test_mean'], r['test_std']) if r['test'] is not None else ''} | "
                       f"{r['n']}{'/' + str(r['expected']) + ', partial' if r['partial'] else ''} | "
                       f"{', '.join(map(fmt_lr, r['lr'])) or '-'} | {fmt_len(length)} | {fmt_params(r['params'])} | "
                       f"{fmt_best_epochs(r)} | {_vs_apt_cells(r.get('vs_apt'))} |")
    out.append("\n" + last_epoch_line([(f"{t} {r['variant']}", r) for t in table["tasks"] for r in table["rows"][t]]))
    out.append(f"\n{table['provenance']}{_notes(table['notes'])}")
    return "\n".join(out) + "\n"


def _vs_apt_cells(d: dict | None) -> str:
    """The three '- APT' cells of an ablation row: per-seed mean ± sd (n), interval over seeds, over examples."""
    if d is None:
        return "- | - | -"
    return f"{fmt_diff_pm(d)} ({len(d['seeds'])}) | {fmt_interval(d)} | {fmt_examples(d['examples'])}"


# ---------------------------------------------------------------- 4. few-shot


def fewshot_table(fewshot_dir: Path, resamples: int = RESAMPLES, examples: bool = True) -> dict:
    """Per task and K, FT / PT2 / APT :func:`summarize` over the draws (dev score at the epoch chosen on the select
    split; 'partial' below five draws) and APT - PT2 paired by draw (:func:`paired_by_seed`: a draw is its seed,
    the same for every method): ``{"rows": [{"task", "shots", "cells": {method: summary | None}, "paired"}], ...}``.

        f = fewshot_table(Path("benchmarks/results/fewshot")); f["rows"][0]["cells"]["apt"]["mean"]
    """
    notes: list[str] = []
    runs: list[Run] = []
    found: dict[tuple[str, int], dict[str, Path]] = {}
    if fewshot_dir.is_dir():
        for p in fewshot_dir.iterdir():
            m = re.fullmatch(r"(.+)-k(\d+)-(prefix|apt|finetune)", p.name)
            if m and has_runs(p):
                found.setdefault((m.group(1), int(m.group(2))), {})[m.group(3)] = p
    rank = {t: i for i, t in enumerate(FEWSHOT_TASKS)}
    rows = []
    for task, shots in sorted(found, key=lambda k: (rank.get(k[0], len(rank)), k[0], k[1])):
        cells: dict[str, dict | None] = {}
        by_method: dict[str, list[Run]] = {}
        for method in METHODS:
            folder = found[(task, shots)].get(method)
            sweep_runs = one_per_seed(load_runs(folder, notes), notes, f"fewshot/{folder.name}") if folder else []
            runs.extend(sweep_runs)
            off = [r for r in sweep_runs if r.results.get("train_args", {}).get("shots") not in (None, shots)]
            if off:
                notes.append(f"fewshot/{folder.name}: seeds {[r.seed for r in off]} ran with other K")
            cells[method] = summarize(sweep_runs, FEWSHOT_DRAWS) if sweep_runs else None
            by_method[method] = sweep_runs
        paired_draws = paired_by_seed(by_method["apt"], by_method["prefix"], resamples, examples) \
            if by_method["apt"] and by_method["prefix"] else None
        rows.append({"task": task, "shots": shots, "cells": cells, "paired": paired_draws})
    return {"rows": rows, "notes": notes, "provenance": provenance(runs)}


def fewshot_markdown(table: dict) -> str:
    """Markdown of :func:`fewshot_table`: rows = task and K, columns = FT / PT2 / APT."""
    out = ["## 4. Few-shot\n"]
    if not table["rows"]:
        return out[0] + "\nNo few-shot runs.\n"
    out.append("Dev x100 at the epoch chosen on K per class drawn from train (disjoint from the training draw), "
               "mean ± "
               f"sd over draws; (n) = draws, 'partial' below {FEWSHOT_DRAWS}.\n")
    out.append("| task | K | metric | " + " | ".join(LABEL[m] for m in METHODS) + " |")
    out.append("|---|---|---|" + "---|" * len(METHODS))
    for r in table["rows"]:
        metric = next((c["metric"] for c in r["cells"].values() if c), "-")
        out.append(f"| {r['task']} | {r['shots']} | {metric} | " + " | ".join(fmt_cell(r["cells"][m]) for m in METHODS)
                   + " |")
    out.append("\nAPT - PT2, paired by draw (the same draws for both; x100; bootstrap 95% intervals over draws, and "
               "over draws x dev examples, crossed):\n")
    out.append("| task | K | draws | per draw | mean ± sd | 95% over draws | 95% over draws x examples |")
    out.append("|---|---|---|---|---|---|---|")
    for r in table["rows"]:
        d = r["paired"]
        if d is None:
            out.append(f"| {r['task']} | {r['shots']} | - | - | - | - | n/a (APT or PT2 missing) |")
            continue
        out.append(f"| {r['task']} | {r['shots']} | {','.join(map(str, d['seeds']))} | "
                   f"{', '.join(fmt_diff(x) for x in d['diffs'])} | {fmt_diff_pm(d)} | {fmt_interval(d)} | "
                   f"{fmt_examples(d['examples'], units=True)} |")
    out.append("\n" + last_epoch_line([(f"{r['task']} K={r['shots']} {LABEL[m]}", r["cells"][m])
                                       for r in table["rows"] for m in METHODS], unit="draws"))
    out.append(f"\n{table['provenance']}{_notes(table['notes'])}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- what is missing


def pt2_lr_differs(main_dir: Path, task: str) -> bool | None:
    """Whether the main table's lr stages chose different rates for PT2 and APT (then ``paper.py`` also runs PT2+
    and PT2* at PT2's lr); None while either lr stage is incomplete.

        pt2_lr_differs(Path("benchmarks/results/main"), "conll04")  # True: PT2 2e-2, APT 1e-2
    """
    lrs = []
    for method in ("prefix", "apt"):
        point, how = chosen_point(main_dir, task, method, notes=[])
        if point is None or how["source"] != "stages" or len(how["lr_stage"]) < LR_GRID_SIZE:
            return None
        lrs.append(point["lr"])
    return not _same_lr(*lrs)


def epochs_check_due(main_dir: Path, task: str) -> bool | None:
    """Whether the epochs phase trains ``task`` (as ``paper.py --phase epochs`` decides): True where a main-table
    PT2 or APT run at its chosen point peaked at its last epoch; False where none did and both cells are complete;
    None (not known yet) where a cell is missing, or partial with no such run.

        epochs_check_due(Path("benchmarks/results/main"), "conll03")  # True: PT2 seeds 11 and 13 peaked at 10
    """
    cells = [main_cell(main_dir, task, m, notes=[]) for m in paper.EPOCH_CHECK_METHODS]
    if any(cell is None for cell in cells):
        return None
    if any(run.best_epoch == run.epochs for cell in cells for run in cell["_runs"]):
        return True
    return None if any(cell["partial"] for cell in cells) else False


def epochs_rounds_due(root: Path, task: str) -> list[int] | None:
    """The epochs of each epochs-phase round the committed results (``root``) call for, as ``paper.py --phase
    epochs`` goes on (``paper.check_rounds``): round 1 where :func:`epochs_check_due`, each next one once both
    methods' runs of the round before are committed and one of them peaked at its last epoch. [] where no round is
    due; None while not known.

        epochs_rounds_due(Path("benchmarks/results"), "ontonotes")  # [8, 12]: both 8-epoch runs peaked at 8
    """
    rounds = _committed_rounds(root, task)
    return rounds if rounds is None or not rounds else rounds[0]


def longer_epochs_due(root: Path, task: str) -> int | None:
    """The epochs ``paper.py --phase longer`` runs ``task``'s main row at, as the committed epoch check settles
    them (``paper.check_rounds``, as ``Protocol.settled_epochs``): the first round where neither run peaked at its
    last epoch, or the last round there is; None while not settled, or for a task whose longer runs would not
    continue the main runs (linear decay: SuperGLUE).

        longer_epochs_due(Path("benchmarks/results"), "conll03")  # 15: the 15-epoch runs peaked at 14
    """
    rounds = _committed_rounds(root, task)
    return rounds[1] if rounds and paper.continues_shorter_runs(task) else None


def _committed_rounds(root: Path, task: str) -> tuple[list[int], int | None] | list | None:
    """``paper.check_rounds`` over the committed epochs-phase runs of ``task`` (any seed); [] where no round is
    due, None while that is not known (see :func:`epochs_check_due`)."""
    due = epochs_check_due(root / "main", task)
    if not due:
        return None if due is None else []

    def bests(longer: int) -> list[int] | None:
        runs = [sorted((root / "epochs" / name).glob("*/results.json"))
                for name in paper.epochs_check_sweeps(task, longer=longer).values()]
        return [json.loads(r.read_text()).get("best_epoch") for rs in runs for r in rs] if all(runs) else None

    return paper.check_rounds(paper.epochs_check_lengths(task), bests)


def edge_due(main_dir: Path, task: str, method: str) -> float | None:
    """The lr ``paper.py --phase edges`` trains ``task`` / ``method`` at: one step past the grid's edge where the
    main table's complete lr stage chose an edge lr; None where it chose inside the grid or has not chosen yet.

        edge_due(Path("benchmarks/results/main"), "conll03", "prefix")  # 0.04: PT2 chose 2e-2
    """
    point, how = chosen_point(main_dir, task, method, notes=[])
    if point is None or how["source"] != "stages" or len(how["lr_stage"]) < LR_GRID_SIZE:
        return None
    return paper.edge_lr(point["lr"])


def expected_sweeps(root: Path | None = None) -> dict[str, list[str]]:
    """Every sweep folder the protocol makes, per phase (``paper.py``'s defaults, main, ablations, fewshot); with
    the results folder ``root``, also the ablations at PT2's lr where its main table shows they are needed."""
    return {
        "defaults": [f"{t}-{s}" for t in DEFAULTS_TASKS for s in DEFAULTS_SETTINGS],
        "main": [f"{t}-{m}-{stage}" for t in MAIN_TASKS for m in METHODS
                 for stage in (("lr", "seeds") if m == "finetune" else ("lr", "len", "seeds"))],
        "ablations": [f"{t}-{a}" for t in ABLATION_TASKS
                      for a in [*ABLATIONS, *(AT_PT2_LR if root and pt2_lr_differs(root / "main", t) else [])]],
        "fewshot": [f"{t}-k{k}-{m}" for t in FEWSHOT_TASKS for k in SHOTS for m in METHODS],
        # the epoch check where the main table already calls for it (tasks not known yet are left out)
        "epochs": [name for t in MAIN_TASKS if root for longer in epochs_rounds_due(root, t) or []
                   for name in paper.epochs_check_sweeps(t, longer=longer).values()],
        # one lr past the grid's edge where the main table chose an edge (prefix methods, first seed)
        "edges": [paper.edge_sweep(t, m, lr) for t in MAIN_TASKS if root for m in paper.EDGE_METHODS
                  if (lr := edge_due(root / "main", t, m)) is not None],
        # the main rows again at the epochs the epoch check settled on (NER)
        "longer": [f"{t}-{m}-epochs{n}" for t in MAIN_TASKS if root and (n := longer_epochs_due(root, t))
                   for m in METHODS],
    }


def missing_sweeps(root: Path, expected: dict[str, list[str]] | None = None) -> dict[str, list[str]]:
    """Per phase, the expected sweeps (``expected``, default :func:`expected_sweeps` of ``root``) with no run under
    ``root`` (a phase whose folder is absent lists them all)."""
    expected = expected_sweeps(root) if expected is None else expected
    return {phase: [n for n in names if not has_runs(root / phase / n)] for phase, names in expected.items()}


def missing_markdown(missing: dict[str, list[str]], expected: dict[str, list[str]]) -> str:
    out = ["## Missing\n"]
    for phase, names in missing.items():
        if not names:
            out.append(f"- {phase}: complete ({len(expected[phase])} sweeps)")
        elif len(names) == len(expected[phase]):
            out.append(f"- {phase}: no runs yet ({len(names)} sweeps expected)")
        else:
            out.append(f"- {phase}: {len(names)} of {len(expected[phase])} sweeps missing: {', '.join(names)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- all together


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, Path):
        return str(x)
    return x


TABLES = ("defaults", "main", "ablations", "fewshot", "gates", "epochs", "longer", "edges")


FIGURES = {"main": "paper-main.png", "ablations": "paper-ablations.png", "fewshot": "paper-fewshot.png",
           "gates": "paper-gates.png", "epochs": "paper-epochs.png", "headline": "paper-apt-vs-pt2.png"}


def shown_path(path: Path) -> str:
    """``path`` as the tables name it: relative to the working folder when inside it, so the committed
    paper-tables.md and .json read the same whether the campaign (absolute paths) or a user (relative) rebuilt them."""
    resolved, here = Path(path).resolve(), Path.cwd().resolve()
    return str(resolved.relative_to(here)) if resolved.is_relative_to(here) else str(path)


def build(root: Path, tables: Iterable[str] = TABLES, resamples: int = RESAMPLES,
          examples: bool = True, figures: Path | None = None, link_base: str | None = None) -> tuple[str, dict]:
    """(markdown, JSON document) of the chosen tables of the results folder ``root``; with ``figures``, each
    table's figure (:data:`FIGURES`) is drawn in that folder and linked from its section as ``link_base/name``
    (default the bare name).

        md, doc = build(Path("benchmarks/results"), ["defaults"])
    """
    tables = list(tables)
    shown = shown_path(root)
    doc: dict[str, Any] = {"root": shown}
    parts = [f"# The paper's tables\n\nRebuilt by `python benchmarks/paper_tables.py {shown}` from the collected "
             f"results.json files.\n"]
    main = None

    def figure(table: str, draw, data) -> str | None:  # draw the table's figure; its markdown link, or None
        if figures is None:
            return None
        draw(data, Path(figures) / FIGURES[table])
        return f"{link_base}/{FIGURES[table]}" if link_base else FIGURES[table]

    def image(table: str, link: str | None) -> str:
        return f"\n![{table} figure]({link})\n" if link else ""

    if "defaults" in tables:
        doc["defaults"] = defaults_table(root / "defaults", resamples)
        parts.append(defaults_markdown(doc["defaults"]))
    if {"main", "ablations", "gates", "epochs", "longer", "edges"} & set(tables):
        main = main_table(root / "main", resamples, examples and "main" in tables)
        if "longer" in tables:  # before the main section: its headline figure adds the longer rows
            doc["longer"] = paper_epochs.longer_table(root / "longer", main, resamples, examples)
        if "main" in tables:
            doc["main"] = main
            headline = (figure("headline", lambda m, path: paper_plots.plot_headline(m, path, doc.get("longer")), main)
                        if any(main["paired"].values()) else None)
            parts.append(main_markdown(main) + image("main", figure("main", paper_plots.plot_main, main)
                                                     if main["tasks"] else None) + image("APT - PT2", headline))
    if "ablations" in tables:
        doc["ablations"] = ablations_table(root, main, resamples, examples)
        abl = doc["ablations"]
        parts.append(ablations_markdown(abl) + image("ablations", figure("ablations", paper_plots.plot_ablations, abl)
                                                     if abl["tasks"] else None))
    if "fewshot" in tables:
        doc["fewshot"] = fewshot_table(root / "fewshot", resamples, examples)
        few = doc["fewshot"]
        parts.append(fewshot_markdown(few) + image("fewshot", figure("fewshot", paper_plots.plot_fewshot, few)
                                                   if few["rows"] else None))
    if "gates" in tables:
        apt_runs = {t: main["cells"][t]["apt"]["_runs"] for t in main["tasks"] if main["cells"][t]["apt"]}
        apt_runs, retrained_notes = gate_runs(root, apt_runs)
        doc["gates"] = paper_gates.gates_table(apt_runs)
        doc["gates"]["notes"] += retrained_notes
        link = figure("gates", paper_gates.plot_gates, doc["gates"]) if doc["gates"]["tasks"] else None
        parts.append(paper_gates.gates_markdown(doc["gates"], link))
    if "epochs" in tables:
        doc["epochs"] = paper_epochs.epochs_table(root / "epochs", main)
        link = figure("epochs", paper_epochs.plot_epochs, doc["epochs"]) if doc["epochs"]["rows"] else None
        parts.append(paper_epochs.epochs_markdown(doc["epochs"], link))
    if "longer" in tables:
        parts.append(paper_epochs.longer_markdown(doc["longer"]))
    if "edges" in tables:
        doc["edges"] = paper_edges.edges_table(root / "edges", main)
        parts.append(paper_edges.edges_markdown(doc["edges"]))
    expected = expected_sweeps(root)  # reads the main table's lr stages once
    doc["missing"] = {p: v for p, v in missing_sweeps(root, expected).items() if p in tables}
    parts.append(missing_markdown(doc["missing"], expected))
    return "\n".join(parts), _jsonable(doc)


def gate_runs(root: Path, apt_runs: dict[str, list[Run]]) -> tuple[dict[str, list[Run]], list[str]]:
    """The main table's APT runs per task for the gate table, each run without a probe replaced by its retrained
    copy under ``root/gates/`` (``paper.py --phase gates`` retrains a run whose adapter a fresh checkout lost)
    where that copy has one; with a note per task naming those seeds and whether each copy's dev score matches
    the original's (runs are deterministic on one machine and thread count; a mismatch is said, not hidden)."""
    out, notes = {}, []
    for task, runs in apt_runs.items():
        out[task], swapped = [], []
        for run in runs:
            copy = root / "gates" / paper.retrained_sweep(task, run.seed) / paper.run_name("apt", {}, run.seed)
            copies = load_runs(copy) if paper_gates.probe_file(run) is None else []
            if copies and paper_gates.probe_file(copies[0]) is not None:
                same = "same dev" if math.isclose(copies[0].dev, run.dev, abs_tol=1e-12) else \
                    f"dev {copies[0].dev * 100:.1f}, the original's {run.dev * 100:.1f}"
                swapped.append(f"{run.seed} ({same})")
                out[task].append(copies[0])
            else:
                out[task].append(run)
        if swapped:
            notes.append(f"{task}: seeds {', '.join(swapped)} probed on a retrained copy (gates/), the original's "
                         "adapter being lost")
    return out, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", help="the collected results folder (benchmarks/results)")
    ap.add_argument("--output", help="write the markdown here (default: stdout)")
    ap.add_argument("--json", help="write the numbers as JSON here")
    ap.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    ap.add_argument("--resamples", type=int, default=RESAMPLES, help=f"bootstrap replicates (default {RESAMPLES})")
    ap.add_argument("--no-examples", action="store_true", help="skip the bootstrap over seeds x dev examples")
    ap.add_argument("--figures", help="draw the figures in this folder (default: beside --output; none without)")
    ns = ap.parse_args(argv)
    root = Path(ns.results)
    if not root.is_dir():
        raise SystemExit(f"{root}: no such results folder")
    figures = Path(ns.figures) if ns.figures else (Path(ns.output).parent if ns.output else None)
    link = os.path.relpath(figures.resolve(), Path(ns.output).resolve().parent) if figures and ns.output else None
    md, doc = build(root, ns.tables, ns.resamples, not ns.no_examples, figures, None if link == "." else link)
    expected = expected_sweeps(root) if any(doc["missing"].values()) else {}
    for phase, names in doc["missing"].items():
        if names:
            print(f"[paper_tables] {phase}: {len(names)} of {len(expected[phase])} sweeps missing",
                  file=sys.stderr)
    if ns.output:
        Path(ns.output).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.output).write_text(md, encoding="utf-8")
    else:
        print(md)
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
