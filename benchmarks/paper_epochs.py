"""Table 6 of the paper protocol: the epoch check (``paper.py --phase epochs``), from the collected results.

The protocol wants enough epochs that the best epoch is not the last. Where a main-table prefix run peaked at its
last epoch, the epochs phase trains PT2 and APT at their chosen points once more, with 1.5x the epochs, on the first
seed at which a run peaked at its last, in ``epochs/<task>-<method>-epochs<N>`` (and again at 1.5x that while a
longer run still peaks at its last: one row per round). This table sets each such run
beside the main table's run of the same seed: the best dev score (and its epoch) within the main table's E epochs,
within the longer run's N, the test score at each best epoch, and APT - PT2 at E and at N. For NER (rate decayed by
0.95 per epoch, whatever the number of epochs) the longer run's first E epochs are the main run again: the table
checks that its best dev score over those epochs equals the main run's ("same" / the two values), which also shows
that nothing but the extra epochs differs.

    import paper_tables as pt, paper_epochs        # with benchmarks/ on sys.path
    main = pt.main_table(Path("benchmarks/results/main"), examples=False)
    table = paper_epochs.epochs_table(Path("benchmarks/results/epochs"), main)
    print(paper_epochs.epochs_markdown(table))
    paper_epochs.plot_epochs(table, "benchmarks/results/paper-epochs.png")   # dev per epoch, both lengths
"""

from __future__ import annotations

import math
import re
from pathlib import Path

SWEEP = re.compile(r"(?P<task>.+)-(?P<method>prefix|apt)-epochs(?P<epochs>\d+)")
NAMES = {"prefix": "PT2", "apt": "APT"}


def best_within(results: dict, metric: str, epochs: int) -> tuple[float, int] | None:
    """(best dev score, its epoch) over the first ``epochs`` epochs of a run's history (``results["epochs"]``),
    the first epoch on ties as the trainer keeps it; None where the history holds no scored epoch there."""
    best = None
    for entry in results.get("epochs") or []:
        score = (entry.get("val") or {}).get(metric)
        if entry.get("epoch", math.inf) <= epochs and score is not None and (best is None or score > best[0]):
            best = (score, entry["epoch"])
    return best


def first_epoch(results: dict) -> dict:
    """The run's epoch-1 history entry ({} where it has none): its ``train_loss`` and ``lr`` tell why a longer run
    does not replay its main run. Runs with the same settings whose epoch-1 loss differs differed in arithmetic from
    the first steps on (another host type or code), not in a later epoch's data or schedule."""
    return next((e for e in results.get("epochs") or [] if e.get("epoch") == 1), {})


def host(results: dict) -> str:
    """The host type a run trained on: ``cpu_id`` where results.json has it (since edd5d7c), else the model name
    and speed-relevant flags, which is all older runs record."""
    if results.get("cuda"):
        return str(results["cuda"])
    if results.get("cpu_id"):
        return str(results["cpu_id"])
    return f"{results.get('cpu_model')} [{' '.join(results.get('cpu_flags') or [])}]"


def divergence_note(row: dict) -> str:
    """Why a longer run's first E epochs do not replay its main run, as far as the two results.json files say."""
    base, longer = (run.results for run in row["_runs"])
    name = f"{row['task']} {NAMES[row['method']]} seed {row['seed']}"
    firsts = first_epoch(base), first_epoch(longer)
    rates = [first.get("lr") for first in firsts]
    if None not in rates and rates[0] != rates[1]:
        return (f"{name}: first {row['main_epochs']} epochs not a replay, nor meant to be: the rate decays over the "
                f"whole run (rate after epoch 1: {rates[0]:.4g} main, {rates[1]:.4g})")
    losses = [first.get("train_loss") for first in firsts]
    if None in losses:
        return f"{name}: first {row['main_epochs']} epochs not an exact replay (no epoch-1 loss to compare)"
    hosts = host(base), host(longer)
    where = (f"both recorded as {hosts[0]}, which can name several host types" if hosts[0] == hosts[1]
             else f"hosts {hosts[0]} (main) and {hosts[1]}")
    if losses[0] == losses[1]:
        return (f"{name}: first {row['main_epochs']} epochs not an exact replay, though epoch 1's training loss is "
                f"the same ({losses[0]!r}): a later epoch's data, schedule or state differed ({where})")
    return (f"{name}: first {row['main_epochs']} epochs not an exact replay: epoch 1's training loss already "
            f"differs ({losses[0]!r} main, {losses[1]!r}), so the arithmetic differed from the first steps on "
            f"({where}); runs replay bit for bit only on one host type")


def curve(results: dict, metric: str) -> tuple[list[int], list[float]]:
    """(epochs, dev score x100) of a run's scored epochs, in epoch order: what :func:`plot_epochs` draws."""
    points = sorted((e["epoch"], 100 * e["val"][metric]) for e in results.get("epochs") or []
                    if (e.get("val") or {}).get(metric) is not None and "epoch" in e)
    return [p[0] for p in points], [p[1] for p in points]


def epochs_table(epochs_dir: Path, main: dict) -> dict:
    """Rows (one per longer run) and, per task, APT - PT2 at the main table's epochs and at the longer ones.
    ``main`` is :func:`paper_tables.main_table`'s result (its cells hold the runs)."""
    import paper_tables as pt

    rows: list[dict] = []
    notes: list[str] = []
    for folder, match in pt.named_sweeps(epochs_dir, SWEEP, "<task>-<method>-epochs<N>", notes):
        task, method = match["task"], match["method"]
        cell = (main.get("cells", {}).get(task) or {}).get(method)
        for longer in pt.load_runs(folder, notes):
            base = next((r for r in (cell or {}).get("_runs", []) if r.seed == longer.seed), None)
            if base is None:
                notes.append(f"{folder.name}: seed {longer.seed} has no main-table run at the chosen point; left out")
                continue
            replay = best_within(longer.results, longer.metric, base.epochs)
            rows.append({
                "task": task, "method": method, "seed": longer.seed, "metric": longer.metric,
                "main_epochs": base.epochs, "main_dev": base.dev, "main_best_epoch": base.best_epoch,
                "main_test": base.test,
                "epochs": longer.epochs, "dev": longer.dev, "best_epoch": longer.best_epoch, "test": longer.test,
                "replay_dev": replay[0] if replay else None,
                "replay_same": replay is not None and math.isclose(replay[0], base.dev, abs_tol=1e-12),
                "_runs": [base, longer],
            })
    rows.sort(key=lambda r: (r["task"], r["epochs"], r["method"] != "prefix", r["seed"]))  # rounds in order
    gaps = {}
    for task in sorted({r["task"] for r in rows}):
        gaps[task] = []
        for epochs in sorted({r["epochs"] for r in rows if r["task"] == task}):  # one entry per round and seed
            by = {(r["method"], r["seed"]): r for r in rows if r["task"] == task and r["epochs"] == epochs}
            seeds = sorted({s for m, s in by if (("prefix", s) in by and ("apt", s) in by)})
            gaps[task] += [{"seed": s, "epochs": epochs, "main": by["apt", s]["main_dev"] - by["prefix", s]["main_dev"],
                            "longer": by["apt", s]["dev"] - by["prefix", s]["dev"]} for s in seeds]
    runs = [run for r in rows for run in r["_runs"]]
    return {"rows": rows, "apt_minus_pt2": gaps, "notes": notes, "provenance": pt.provenance(runs) if runs else ""}


def _score(x: float | None) -> str:
    return "" if x is None else f"{x * 100:.1f}"


def plot_epochs(table: dict, path: str | Path) -> Path:
    """One panel per task: dev score per epoch of each method's main-table run (dashed) and of its longer run
    (solid), the main table's last epoch as a vertical line and each run's best epoch marked. Where the solid
    line still climbs past that line, the main table stopped early. Returns ``path``."""
    import paper_plots

    plt = paper_plots.pyplot()
    tasks = sorted({r["task"] for r in table["rows"]})
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(4.6 * max(1, len(tasks)), 3.4), squeeze=False)
    colours = {"prefix": "C1", "apt": "C2"}  # PT2 / APT as in the other paper figures
    for ax, task in zip(axes.flat, tasks):
        rows = [r for r in table["rows"] if r["task"] == task]
        for method in sorted({r["method"] for r in rows}, reverse=True):
            colour, name = colours[method], NAMES[method]
            mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["epochs"], reverse=True)
            # the main run once (dashed), then each round longest first (solid; earlier rounds fainter, under it)
            drawn = [(mine[0]["_runs"][0], "--", 0.9, 1.0, f"{name}, {mine[0]['main_epochs']} epochs")]
            drawn += [(r["_runs"][1], "-", 1.1, 1.0 if i == 0 else 0.45, f"{name}, {r['epochs']} epochs")
                      for i, r in enumerate(mine)]
            for run, style, width, alpha, label in drawn:
                xs, ys = curve(run.results, mine[0]["metric"])
                ax.plot(xs, ys, style, color=colour, linewidth=width, alpha=alpha, label=label)
                if run.best_epoch in xs:
                    ax.plot([run.best_epoch], [ys[xs.index(run.best_epoch)]], "*", color=colour, markersize=9,
                            alpha=alpha)
        ax.axvline(rows[0]["main_epochs"], color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(f"{task}, seed {rows[0]['seed']} (dev {rows[0]['metric']} x100; * best epoch)", fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(linewidth=0.3)
        ax.legend(fontsize=7)
    return paper_plots.save_figure(fig, path)


def epochs_markdown(table: dict, figure: str | None = None) -> str:
    """Section 6 of paper-tables.md; ``figure`` (a path relative to the markdown) is linked where given."""
    import paper_tables as pt

    factor = f"{pt.paper.EPOCH_CHECK_FACTOR:g}x"
    out = [f"## 6. Epoch check: the main table's runs against {factor} the epochs\n",
           "Where a main-table prefix run at its chosen point peaked at its last epoch, PT2 and APT train once more "
           f"at that point with {factor} the epochs (`paper.py --phase epochs`), both on the first seed at which a "
           f"run peaked at its last; while a longer run still peaks at its last epoch, another round at {factor} "
           f"that (at most {pt.paper.EPOCH_CHECK_ROUNDS}; NER's longer runs continue the shorter one's checkpoint). "
           "Dev = the best dev score (its epoch); "
           "test = at that epoch. 'first E epochs' = the longer run's best dev over the main table's epochs: for "
           "NER (rate decayed per epoch) it equals the main run's ('same') where both ran on one host type; a note "
           "below says where it does not, and why as far as the results tell.\n"]
    if not table["rows"]:
        return "\n".join(out) + "\nNo epochs-phase runs yet.\n"
    out += ["| task | method | seed | E | dev at E (epoch) | test | N | dev at N (epoch) | test | first E epochs |",
            "|---|---|---|---:|---|---:|---:|---|---:|---|"]
    for r in table["rows"]:
        replay = "same" if r["replay_same"] else f"{_score(r['replay_dev'])} (main {_score(r['main_dev'])})"
        out.append(f"| {r['task']} | {NAMES[r['method']]} | {r['seed']} | {r['main_epochs']} | "
                   f"{_score(r['main_dev'])} ({r['main_best_epoch']}) | {_score(r['main_test'])} | {r['epochs']} | "
                   f"{_score(r['dev'])} ({r['best_epoch']}) | {_score(r['test'])} | {replay} |")
    lines = [f"- {task}, seed {g['seed']}: APT - PT2 {g['main'] * 100:+.1f} at the main table's epochs, "
             f"{g['longer'] * 100:+.1f} at {g['epochs']}"
             for task, gaps in table["apt_minus_pt2"].items() for g in gaps]
    out += ["", *lines] if lines else []
    out += [f"- {divergence_note(r)}" for r in table["rows"] if not r["replay_same"]]
    out += [f"\n{table['provenance']}"] if table["provenance"] else []
    out += [f"- {n}" for n in table["notes"]]
    out += [f"\n![epochs figure]({figure})"] if figure else []
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- 7. the main rows at the settled epochs

LONGER = re.compile(r"(?P<task>.+)-(?P<method>prefix|apt|finetune)-epochs(?P<epochs>\d+)")


def longer_table(longer_dir: Path, main: dict, resamples: int | None = None, examples: bool = True) -> dict:
    """Per task of ``paper.py --phase longer`` (``longer/<task>-<method>-epochs<N>``): each method's cell at N
    epochs (:func:`paper_tables.summarize` over its seeds) beside the main table's cell at its epochs, and APT -
    PT2 paired by seed at N (:func:`paper_tables.paired_by_seed`) beside the main table's.

        t = longer_table(Path("benchmarks/results/longer"), pt.main_table(Path("benchmarks/results/main")))
        t["tasks"]["ontonotes"]["cells"]["apt"]["mean"], t["tasks"]["ontonotes"]["paired"]["mean"]
    """
    import paper_tables as pt

    resamples = resamples or pt.RESAMPLES
    notes: list[str] = []
    found: dict[str, dict[str, tuple[int, list]]] = {}
    for folder, match in pt.named_sweeps(longer_dir, LONGER, "<task>-<method>-epochs<N>", notes):
        runs = pt.one_per_seed(pt.load_runs(folder, notes), notes, f"longer/{folder.name}")
        found.setdefault(match["task"], {})[match["method"]] = (int(match["epochs"]), runs)
    tasks = {}
    for task, methods in found.items():
        epochs = sorted({n for n, _ in methods.values()})
        if len(epochs) > 1:
            notes.append(f"{task}: longer-phase sweeps at {epochs} epochs; the table shows {epochs[-1]}")
        methods = {m: runs for m, (n, runs) in methods.items() if n == epochs[-1]}
        cells = {m: pt.summarize(runs, pt.expected_seeds(task)) | {"_runs": runs} for m, runs in methods.items()}
        main_cells = (main.get("cells", {}).get(task) or {})
        paired = (pt.paired_by_seed(methods["apt"], methods["prefix"], resamples, examples)
                  if "apt" in methods and "prefix" in methods else None)
        tasks[task] = {"epochs": epochs[-1], "cells": cells, "paired": paired,
                       "main_cells": {m: main_cells.get(m) for m in pt.METHODS},
                       "main_paired": (main.get("paired") or {}).get(task)}
    runs = [r for t in tasks.values() for c in t["cells"].values() for r in c["_runs"]]
    return {"tasks": tasks, "notes": notes, "provenance": pt.provenance(runs) if runs else ""}


def longer_markdown(table: dict) -> str:
    """Section 7 of paper-tables.md."""
    import paper_tables as pt

    out = ["## 7. Main rows at the epochs the epoch check settled on\n",
           "Where the epoch check (section 6) settled a NER task on more epochs than the main table's, "
           "`paper.py --phase longer` runs its whole main row again at that many: every method and seed at its "
           "chosen point, each run its main run continued from its checkpoint (the schedule, 0.95 per epoch, does "
           "not depend on the number of epochs) or, without one on the disk, trained afresh. Dev x100, mean ± sd "
           "over seeds (test for NER); best epoch per seed / epochs.\n"]
    if not table["tasks"]:
        return "\n".join(out) + "\nNo longer-phase runs yet.\n"
    out += ["| task | method | main table (E epochs) | best epochs | at N epochs | best epochs |",
            "|---|---|---|---|---|---|"]
    for task, t in table["tasks"].items():
        for m in pt.METHODS:
            main, cell = t["main_cells"].get(m), t["cells"].get(m)
            out.append(f"| {task} | {pt.LABEL[m]} | {pt.fmt_cell(main, with_test=True)} | "
                       f"{pt.fmt_best_epochs(main) if main else '-'} | {pt.fmt_cell(cell, with_test=True)} | "
                       f"{pt.fmt_best_epochs(cell) if cell else '-'} |")
    out.append("")
    for task, t in table["tasks"].items():
        for label, d in (("main table", t["main_paired"]), (f"{t['epochs']} epochs", t["paired"])):
            if d is None:
                out.append(f"- {task}, {label}: APT - PT2 n/a (APT or PT2 missing)")
                continue
            test = f"; test {pt.fmt_diff_pm(d['test'])}" if "test" in d else ""
            out.append(f"- {task}, {label}: APT - PT2 {pt.fmt_diff_pm(d)} (seeds {', '.join(map(str, d['seeds']))}: "
                       f"{', '.join(pt.fmt_diff(x) for x in d['diffs'])}; over seeds {pt.fmt_interval(d)}; over "
                       f"seeds x examples {pt.fmt_examples(d['examples'])}){test}")
        out.append("- " + pt.last_epoch_line([(f"{task} {pt.LABEL[m]}", c) for m, c in t["cells"].items()]))
    out += [f"\n{table['provenance']}"] if table["provenance"] else []
    out += [f"- {n}" for n in table["notes"]]
    return "\n".join(out) + "\n"
