"""Figures of the paper protocol's main, ablation and few-shot tables: every seed (draw) as a dot, the mean ± sd
beside it; and the headline, APT - PT2 per task with its intervals (a forest plot).

With 3-5 seeds and dev sets of 56-104 examples, a table of means hides how far apart the seeds are; these
figures show each seed's dev score so an overlap (or its absence) is visible at a glance.

    import paper_tables as pt, paper_plots, paper_epochs      # with benchmarks/ on sys.path
    main = pt.main_table(Path("benchmarks/results/main"), examples=False)
    paper_plots.plot_main(main, "benchmarks/results/paper-main.png")
    longer = paper_epochs.longer_table(Path("benchmarks/results/longer"), main)
    paper_plots.plot_headline(main, "paper-apt-vs-pt2.png", longer)   # APT - PT2, main and longer rows
    paper_plots.plot_ablations(pt.ablations_table(Path("benchmarks/results"), main), "paper-ablations.png")
    paper_plots.plot_fewshot(pt.fewshot_table(Path("benchmarks/results/fewshot")), "paper-fewshot.png")

``paper_tables.py`` draws them (beside ``--output`` unless ``--figures DIR`` says where).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

METHOD_ORDER = (("finetune", "FT"), ("prefix", "PT2"), ("apt", "APT"))


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (the tables are rebuilt on machines without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    """Lay ``fig`` out, write it to ``path`` (folders made), close it; returns ``path``."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    pyplot().close(fig)
    return path


def panel(label_cells: list[tuple[str, dict | None]]) -> list[dict]:
    """Per labelled cell (a ``paper_tables.summarize`` result, or None for no runs): the label, each seed's dev
    score x100 (in seed order), their mean and sample sd x100 (sd None below two seeds) and whether the cell is
    partial. Cells without runs are left out. This is what a panel of either figure draws.

        panel([("PT2", {"dev": [0.73, 0.75], "seeds": [11, 12], "partial": False})])
        # -> [{"label": "PT2", "values": [73.0, 75.0], "mean": 74.0, "sd": 1.41..., "partial": False, ...}]
    """
    out = []
    for label, cell in label_cells:
        if not cell or not cell.get("dev"):
            continue
        values = [100 * v for v in cell["dev"]]
        out.append({"label": label, "values": values, "seeds": list(cell.get("seeds", [])),
                    "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else None,
                    "partial": bool(cell.get("partial"))})
    return out


def main_panels(table: dict) -> dict[str, list[dict]]:
    """The main figure's panels: per task of ``paper_tables.main_table``, FT / PT2 / APT (those with runs)."""
    return {t: panel([(label, table["cells"][t][m]) for m, label in METHOD_ORDER]) for t in table["tasks"]}


def ablation_panels(table: dict) -> dict[str, list[dict]]:
    """The ablation figure's panels: per task of ``paper_tables.ablations_table``, each variant with runs."""
    return {t: panel([(r["variant"], r if r.get("n") else None) for r in table["rows"][t]]) for t in table["tasks"]}


def fewshot_panels(table: dict) -> dict[str, list[dict]]:
    """The few-shot figure's panels: per row of ``paper_tables.fewshot_table`` ("cb K=16"), FT / PT2 / APT draws."""
    return {f"{r['task']} K={r['shots']}": panel([(label, r["cells"][m]) for m, label in METHOD_ORDER])
            for r in table["rows"]}


def _metric(cells) -> str:
    return next((c["metric"] for c in cells if c and c.get("metric")), "score")


def plot_panels(panels: dict[str, list[dict]], metrics: dict[str, str], title: str, path: str | Path,
                reference: str | None = None) -> Path:
    """One panel per task: each cell's seeds as dots, its mean ± sd as a bar beside them; partial cells hollow.
    ``reference`` names a cell whose mean is drawn across the panel as a dashed line. Returns ``path``."""
    plt = pyplot()
    tasks = [t for t, cells in panels.items() if cells]
    # one colour per label across panels and figures (PT2 is orange in every task and in both figures)
    colours: dict[str, str] = {label: f"C{i}" for i, (_, label) in enumerate(METHOD_ORDER)}
    for t in tasks:
        for c in panels[t]:
            colours.setdefault(c["label"], f"C{len(colours) % 10}")
    cols = min(3, max(1, len(tasks)))
    rows = max(1, math.ceil(len(tasks) / cols))
    widest = max((len(panels[t]) for t in tasks), default=1)
    fig, axes = plt.subplots(rows, cols, figsize=(max(5.0, 0.9 * widest + 1.2) * cols, 3.2 * rows + 0.4), squeeze=False)
    for ax in axes.flat[len(tasks):]:
        ax.axis("off")
    for ax, task in zip(axes.flat, tasks):
        cells = panels[task]
        for i, c in enumerate(cells):
            colour = colours[c["label"]]
            offsets = [(j - (len(c["values"]) - 1) / 2) * 0.06 for j in range(len(c["values"]))]
            ax.scatter([i - 0.12 + o for o in offsets], c["values"], s=18, zorder=3,
                       facecolors="none" if c["partial"] else colour, edgecolors=colour)
            ax.errorbar([i + 0.18], [c["mean"]], yerr=[c["sd"] or 0.0], fmt="s", color=colour, capsize=4,
                        markersize=5, zorder=3)
            if reference and c["label"] == reference:
                ax.axhline(c["mean"], color=colour, linestyle="--", linewidth=0.8, zorder=1)
        ax.set_xticks(range(len(cells)))
        ax.set_xticklabels([c["label"] + (f"\n({len(c['values'])}, partial)" if c["partial"] else f"\n({len(c['values'])})")
                            for c in cells], fontsize=8)
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_title(f"{task} (dev {metrics.get(task, 'score')} x100)", fontsize=9)
        ax.grid(axis="y", linewidth=0.3)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


def plot_main(table: dict, path: str | Path) -> Path:
    """The main table as a figure: per task, FT / PT2 / APT seeds and mean ± sd."""
    metrics = {t: _metric(table["cells"][t].values()) for t in table["tasks"]}
    return plot_panels(main_panels(table), metrics, "Main table\ndev score per seed (dots), mean ± sd (squares)",
                       path)


def plot_ablations(table: dict, path: str | Path) -> Path:
    """The ablation table as a figure: per task, every variant's seeds and mean ± sd, APT's mean dashed."""
    metrics = {t: _metric(table["rows"][t]) for t in table["tasks"]}
    return plot_panels(ablation_panels(table), metrics,
                       "Ablations: dev per seed (dots)\nmean ± sd (squares); APT's mean dashed", path,
                       reference="APT")


def plot_fewshot(table: dict, path: str | Path) -> Path:
    """The few-shot table as a figure: per task and K, each method's draws and mean ± sd."""
    metrics = {f"{r['task']} K={r['shots']}": _metric(r["cells"].values()) for r in table["rows"]}
    return plot_panels(fewshot_panels(table), metrics, "Few-shot\ndev score per draw (dots), mean ± sd (squares)",
                       path)


def headline_rows(main: dict, longer: dict | None = None) -> list[dict]:
    """The headline figure's rows: per task of ``paper_tables.main_table`` with APT - PT2 paired by seed, the
    per-seed differences x100, their mean, the 95% interval over seeds and (where computed) over seeds x dev
    examples; after each task that ``paper_epochs.longer_table`` ran at more epochs, a row for that run too
    (partial where either method lacks seeds).

        headline_rows(pt.main_table(Path("benchmarks/results/main")))
        # -> [{"label": "cb", "diffs": [1.8, ...], "mean": 2.1, "seeds": (1.1, 3.2), "examples": (-5.7, 10.0), ...}]
    """

    def row(label: str, paired: dict, cells: dict) -> dict:
        examples = paired.get("examples")
        examples = examples if isinstance(examples, dict) else None  # else a note: no predictions, or not computed
        return {"label": label, "diffs": [100 * d for d in paired["diffs"]], "mean": 100 * paired["mean"],
                "seeds": (100 * paired["low"], 100 * paired["high"]),
                "examples": (100 * examples["low"], 100 * examples["high"]) if examples else None,
                "partial": any(cells[m]["partial"] for m in ("prefix", "apt"))}

    def name(task: str, epochs: list[int]) -> str:  # "ontonotes (5 ep, subset)"
        notes = [f"{max(epochs)} ep"] if epochs else []
        notes += ["subset"] if task in (main.get("subsets") or {}) else []  # a stated training subset
        return f"{task} ({', '.join(notes)})" if notes else task

    rows = []
    for task in main["tasks"]:
        paired = (main.get("paired") or {}).get(task)
        if paired:
            cells = main["cells"][task]
            epochs = [e for m in ("prefix", "apt") for e in cells[m].get("epochs", [])]
            rows.append(row(name(task, epochs), paired, cells))
        more = ((longer or {}).get("tasks") or {}).get(task)
        if more and more.get("paired"):
            rows.append(row(name(task, [more["epochs"]]), more["paired"], more["cells"]))
    return rows


def plot_headline(main: dict, path: str | Path, longer: dict | None = None) -> Path:
    """APT - PT2 per task as a forest plot: each seed's difference as a dot, the mean as a square, the interval
    over seeds as a thick bar and over seeds x dev examples as a thin one; partial rows hollow. Returns ``path``."""
    plt = pyplot()
    rows = headline_rows(main, longer)
    fig, ax = plt.subplots(figsize=(7.5, 0.42 * len(rows) + 1.4))
    for y, r in enumerate(rows):
        colour = "C2" if r["seeds"][0] > 0 else "C3" if r["seeds"][1] < 0 else "C7"
        if r["examples"]:
            ax.plot(r["examples"], [y, y], color=colour, linewidth=1, zorder=2)
        ax.plot(r["seeds"], [y, y], color=colour, linewidth=4, alpha=0.6, zorder=2, solid_capstyle="butt")
        ax.scatter(r["diffs"], [y + 0.18] * len(r["diffs"]), s=12, color=colour, zorder=3,
                   facecolors="none" if r["partial"] else colour)
        ax.scatter([r["mean"]], [y], marker="s", s=30, color="black", zorder=4)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r["label"] + (" (partial)" if r["partial"] else "") for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("APT - PT2, dev score x100 (accuracy or F1)", fontsize=9)
    ax.grid(axis="x", linewidth=0.3)
    ax.set_title("APT - PT2 per task: seeds (dots), mean (square), 95% interval over seeds (thick)\n"
                 "and over seeds x dev examples (thin); green / red: the seeds' interval excludes 0", fontsize=9)
    return save_figure(fig, path)
