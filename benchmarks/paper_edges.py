"""Table 8 of the paper protocol: the grid-edge check (``paper.py --phase edges``), from the collected results.

The main table chooses each prefix method's learning rate from 5e-3 / 1e-2 / 2e-2 on the first seed. Where it
chose an edge (2e-2 or 5e-3), the edges phase trains that seed once more one step past it (4e-2 or 2.5e-3) at the
chosen length, in ``edges/<task>-<method>-lr<LR>``. This table sets that run beside the chosen point's run of the
same seed: where the run past the edge scores higher, the grid bound the choice, and the main table's cell (and
APT - PT2 with it) may say more about the grid than about the method.

    import paper_tables as pt, paper_edges        # with benchmarks/ on sys.path
    main = pt.main_table(Path("benchmarks/results/main"), examples=False)
    table = paper_edges.edges_table(Path("benchmarks/results/edges"), main)
    print(paper_edges.edges_markdown(table))
"""

from __future__ import annotations

import re
from pathlib import Path

SWEEP = re.compile(r"(?P<task>.+)-(?P<method>prefix|apt)-lr(?P<lr>[0-9.e+-]+)")
NAMES = {"prefix": "PT2", "apt": "APT"}


def edges_table(edges_dir: Path, main: dict) -> dict:
    """Rows (one per run past an edge): the chosen point's lr and its seed's dev, the lr past the edge and its
    dev, their difference and whether the edge binds (the run past it is better). ``main`` is
    :func:`paper_tables.main_table`'s result (its cells hold the runs and the lr stage's scores)."""
    import paper_tables as pt

    rows: list[dict] = []
    notes: list[str] = []
    for folder, match in pt.named_sweeps(edges_dir, SWEEP, "<task>-<method>-lr<LR>", notes):
        task, method = match["task"], match["method"]
        cell = (main.get("cells", {}).get(task) or {}).get(method)
        for edge in pt.load_runs(folder, notes):
            base = next((r for r in (cell or {}).get("_runs", []) if r.seed == edge.seed), None)
            if base is None:
                notes.append(f"{folder.name}: seed {edge.seed} has no main-table run at the chosen point; left out")
                continue
            rows.append({"task": task, "method": method, "seed": edge.seed, "metric": edge.metric,
                         "prefix_len": base.prefix_len, "lr": base.lr, "dev": base.dev,
                         "best_epoch": base.best_epoch, "edge_lr": edge.lr, "edge_dev": edge.dev,
                         "edge_best_epoch": edge.best_epoch, "epochs": edge.epochs,
                         "gain": edge.dev - base.dev, "binds": edge.dev > base.dev,
                         "lr_stage": cell["how"]["lr_stage"], "_runs": [base, edge]})
    rows.sort(key=lambda r: (pt.MAIN_TASKS.index(r["task"]) if r["task"] in pt.MAIN_TASKS else 99,
                             r["method"] != "prefix"))
    runs = [run for r in rows for run in r["_runs"]]
    return {"rows": rows, "notes": notes, "provenance": pt.provenance(runs) if runs else ""}


def edges_markdown(table: dict) -> str:
    """Section 8 of paper-tables.md."""
    import paper_tables as pt

    out = ["## 8. Grid edges: one learning rate past the chosen edge\n",
           "Where the main table chose a prefix method's lr at an edge of its grid (5e-3 / 1e-2 / 2e-2), the "
           "first seed once more one step past it (x2 above 2e-2, /2 below 5e-3) at the chosen length "
           "(`paper.py --phase edges`). Dev x100 at the best epoch (its epoch / epochs); 'binds' = the run past "
           "the edge scores higher, so the grid limited the main table's choice on that seed.\n"]
    if not table["rows"]:
        return "\n".join(out) + "\nNo edges-phase runs yet.\n"
    out += ["| task | method | seed | length | lr stage (length 16) | chosen lr: dev | past the edge: dev | "
            "difference | binds |", "|---|---|---|---|---|---|---|---:|---|"]
    for r in table["rows"]:
        stage = ", ".join(f"{pt.fmt_lr(s['lr'])}: {pt.fmt(s['mean'])}" for s in r["lr_stage"]) or "-"
        out.append(f"| {r['task']} | {NAMES[r['method']]} | {r['seed']} | {pt.fmt_len(r['prefix_len'])} | {stage} | "
                   f"{pt.fmt_lr(r['lr'])}: {pt.fmt(r['dev'])} ({r['best_epoch']}) | {pt.fmt_lr(r['edge_lr'])}: "
                   f"{pt.fmt(r['edge_dev'])} ({r['edge_best_epoch']}/{r['epochs']}) | {pt.fmt_diff(r['gain'])} | "
                   f"{'yes' if r['binds'] else 'no'} |")
    binding = [f"{r['task']} {NAMES[r['method']]}" for r in table["rows"] if r["binds"]]
    out.append(f"\nThe edge binds on {len(binding)} of {len(table['rows'])} checked cells"
               + (f": {', '.join(binding)}." if binding else "."))
    out += [f"\n{table['provenance']}"] if table["provenance"] else []
    out += [f"- {n}" for n in table["notes"]]
    return "\n".join(out) + "\n"
