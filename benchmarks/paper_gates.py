"""Table 5 of the paper protocol: where APT's learned gates put their weight, per task, over seeds.

For every task whose main-table APT runs (the chosen point, every seed) have a probe
(``benchmarks/paper.py --phase gates`` runs ``adaprefix probe RUN --split train`` on each), per layer i:

* the gate weight w_i = |lambda_i| x mean alpha_i (``gates.json``'s ``weight``);
* its share s_i = w_i / sum_j w_j (shares sum to 1; uniform = 1/L), mean ± sd over seeds;
* the lower-half share: sum of s_i over layers i < L/2 (0.5 = balanced; above = the lower layers weigh more);
* the centre of mass c = sum_i i s_i / (L - 1): 0 = all weight at the first layer, 1 = all at the last.

The paper (their Fig. 2, BERT-large) reports CoNLL04's weight in lower layers and COPA's in upper ones; these
numbers say what a 6-layer MiniLM shows, with the spread over seeds that decides whether a difference is there.

    import paper_gates
    table = paper_gates.gates_table({"cb": cb_apt_runs})   # runs: anything with .path (results.json) and .seed
    print(paper_gates.gates_markdown(table, "paper-gates.png"))
    paper_gates.plot_gates(table, "benchmarks/results/paper-gates.png")
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Iterable, Mapping

SPLIT = "train"  # the protocol probes on train (what PT2*'s plan is built from)


def probe_file(run: Any, split: str = SPLIT) -> Path | None:
    """The gates.json of ``run``'s probe on ``split``, where one is: beside the run as ``paper.py --collect``
    leaves it (``<sweep>/<run>-probe-train/gates.json``) or inside a live run folder (``<run>/probe-train/``)."""
    run_dir = Path(run.path).parent
    for candidate in (run_dir.parent / f"{run_dir.name}-probe-{split}" / "gates.json",
                      run_dir / f"probe-{split}" / "gates.json"):
        if candidate.is_file():
            return candidate
    return None


def layer_shares(gates: dict) -> list[float]:
    """Each layer's share of the total gate weight: ``[w_i / sum(w)]`` (layers without a prefix weigh 0)."""
    weights = [float(layer.get("weight") or 0.0) for layer in gates["layers"]]
    total = sum(weights)
    if total <= 0:
        raise ValueError(f"{gates.get('task')}: every layer's gate weight is 0")
    return [w / total for w in weights]


def lower_half_share(shares: list[float]) -> float:
    """Sum of the shares of layers i < L/2 (for odd L the middle layer counts half to each side)."""
    n = len(shares)
    full = sum(shares[: n // 2])
    return full + (shares[n // 2] / 2 if n % 2 else 0.0)


def centre_of_mass(shares: list[float]) -> float:
    """sum_i i s_i / (L - 1): 0 = all weight at layer 0, 1 = all at the last layer."""
    n = len(shares)
    return sum(i * s for i, s in enumerate(shares)) / (n - 1) if n > 1 else 0.0


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def gates_table(runs_by_task: Mapping[str, Iterable[Any]], split: str = SPLIT) -> dict:
    """Per task, the probes of its runs (one per seed) summarised: ``{"tasks", "rows": {task: row}, "notes"}``,
    a row holding ``seeds``, per-seed ``shares``, ``share_mean`` / ``share_sd`` per layer, ``lambda_mean`` and
    ``alpha_mean`` per layer, ``lower_half`` and ``centre`` (each ``{"per_seed", "mean", "sd"}``), and
    ``unprobed`` (seeds with a run but no probe). Tasks with no probe at all are left out, with a note."""
    rows: dict[str, dict] = {}
    notes: list[str] = []
    for task, runs in runs_by_task.items():
        probed, unprobed = [], []
        for run in sorted(runs, key=lambda r: r.seed):
            path = probe_file(run, split)
            if path is None:
                unprobed.append(run.seed)
            else:
                probed.append((run.seed, json.loads(path.read_text(encoding="utf-8"))))
        if not probed:
            if unprobed:
                notes.append(f"{task}: no probe on {split} for any of seeds {unprobed}")
            continue
        depth = {len(g["layers"]) for _, g in probed}
        if len(depth) != 1:
            raise ValueError(f"{task}: probes with different layer counts {sorted(depth)}")
        shares = [layer_shares(g) for _, g in probed]
        per_layer = list(zip(*shares))
        lambdas = list(zip(*[[layer.get("lambda") for layer in g["layers"]] for _, g in probed]))
        alphas = list(zip(*[[statistics.fmean(layer["alpha_mean"]) if layer.get("alpha_mean") else None
                             for layer in g["layers"]] for _, g in probed]))
        lower = [lower_half_share(s) for s in shares]
        centre = [centre_of_mass(s) for s in shares]
        rows[task] = {
            "seeds": [seed for seed, _ in probed], "layers": depth.pop(), "unprobed": unprobed,
            "examples": sorted({g.get("examples") for _, g in probed}, key=str), "shares": shares,
            "share_mean": [statistics.fmean(v) for v in per_layer],
            "share_sd": [statistics.stdev(v) if len(v) > 1 else None for v in per_layer],
            "lambda_mean": [statistics.fmean(v) if None not in v else None for v in lambdas],
            "alpha_mean": [statistics.fmean(v) if None not in v else None for v in alphas],
            "lower_half": {"per_seed": lower, **dict(zip(("mean", "sd"), _mean_sd(lower)))},
            "centre": {"per_seed": centre, **dict(zip(("mean", "sd"), _mean_sd(centre)))},
        }
        if unprobed:
            notes.append(f"{task}: seeds {unprobed} have no probe on {split}")
    return {"tasks": list(rows), "rows": rows, "split": split, "notes": notes}


def _pm(mean: float, sd: float | None, scale: float = 100.0, digits: int = 1) -> str:
    return f"{scale * mean:.{digits}f}" + ("" if sd is None else f" ± {scale * sd:.{digits}f}")


def gates_markdown(table: dict, figure: str | None = None) -> str:
    """Markdown of :func:`gates_table`: one row per task with each layer's share (%), the lower-half share and
    the centre of mass; ``figure`` (a path relative to the markdown) is linked where given."""
    out = ["## 5. Gates\n"]
    if not table["tasks"]:
        notes = "".join(f"\n- {n}" for n in table["notes"])
        return out[0] + f"\nNo probed APT runs.{notes}\n"
    depth = max(table["rows"][t]["layers"] for t in table["tasks"])
    out.append(f"APT's gate weight w_i = |lambda_i| x mean alpha_i per layer, probed on {table['split']} at the main "
               "table's chosen APT point, as each layer's share of the total (%, mean ± sd over seeds; uniform = "
               f"{100 / depth:.1f}%). Lower half = share of layers below L/2 (50 = balanced); centre = "
               "sum_i i s_i / (L-1) (0 = first layer, 100 = last). The paper's Fig. 2 (BERT-large): CoNLL04 "
               "weighs lower layers, COPA upper ones.\n")
    out.append("| task | seeds | " + " | ".join(f"layer {i}" for i in range(depth)) + " | lower half | centre |")
    out.append("|---|---|" + "---|" * depth + "---|---|")
    for t in table["tasks"]:
        r = table["rows"][t]
        cells = [_pm(m, s) for m, s in zip(r["share_mean"], r["share_sd"])] + [""] * (depth - r["layers"])
        out.append(f"| {t} | {','.join(map(str, r['seeds']))} | " + " | ".join(cells) +
                   f" | {_pm(r['lower_half']['mean'], r['lower_half']['sd'])} | "
                   f"{_pm(r['centre']['mean'], r['centre']['sd'])} |")
    out.append("\nLayer gates lambda_i and mean token gates alpha_i (mean over seeds):\n")
    out.append("| task | " + " | ".join(f"layer {i}" for i in range(depth)) + " |")
    out.append("|---|" + "---|" * depth)
    for t in table["tasks"]:
        r = table["rows"][t]
        cells = []
        for lam, alpha in zip(r["lambda_mean"], r["alpha_mean"]):
            lam_text = "-" if lam is None else f"{lam:.2f}"
            alpha_text = "-" if alpha is None else f"{alpha:.2f}"
            cells.append(f"λ {lam_text}, α {alpha_text}")
        out.append(f"| {t} | " + " | ".join(cells + [""] * (depth - r["layers"])) + " |")
    if figure:
        out.append(f"\n![Gate weight share per layer]({figure})")
    if table["notes"]:
        out.append("\n" + "\n".join(f"- {n}" for n in table["notes"]))
    return "\n".join(out) + "\n"


def plot_gates(table: dict, path: str | Path) -> Path:
    """One line per task: each layer's share of the gate weight, mean over seeds with ± sd bars, and the uniform
    share dashed. Returns ``path``."""
    import paper_plots

    plt = paper_plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    depth = 1
    for t in table["tasks"]:
        r = table["rows"][t]
        depth = max(depth, r["layers"])
        sd = [0.0 if s is None else 100 * s for s in r["share_sd"]]
        ax.errorbar(range(r["layers"]), [100 * m for m in r["share_mean"]], yerr=sd, marker="o", capsize=3,
                    label=f"{t} ({len(r['seeds'])} seed{'s' if len(r['seeds']) > 1 else ''})")
    ax.axhline(100 / depth, color="grey", linestyle="--", linewidth=1, label="uniform")
    ax.set_xlabel("layer")
    ax.set_ylabel("share of gate weight (%)")
    ax.set_xticks(range(depth))
    ax.set_title(f"APT gate weight per layer (probe on {table['split']}; mean ± sd over seeds)")
    ax.legend(fontsize=8)
    return paper_plots.save_figure(fig, path, dpi=120)
