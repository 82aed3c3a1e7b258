"""Tables from run directories: configurations as rows, mean +- std over seeds, the best per method.

``adaprefix report DIR...`` finds every ``results.json`` under the given folders (sweeps, campaigns, single
runs), groups runs that differ only in their seed, and writes one markdown table and one JSON document.

Usage::

    rows = collect_rows(["sweeps/rte", "runs/cb-apt"])
    print(markdown_table(rows))
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from ..training import TrainArgs

# Settings that do not define a configuration: runs that differ only here are seeds of one configuration.
NOT_CONFIGURATION = frozenset({"seed", "output", "resume", "progress", "data_dir", "eval_batch_size", "prefix_source"})


def find_results(paths: list[str | Path]) -> list[Path]:
    """Every results.json at or below ``paths`` (checkpoint folders skipped), sorted."""
    found: set[Path] = set()
    for path in map(Path, paths):
        if path.is_file() and path.name == "results.json":
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob("results.json") if "checkpoint" not in p.parts)
        else:
            raise FileNotFoundError(f"{path}: no such run directory or results.json")
    return sorted(found)


def configuration(results: dict) -> dict:
    """What identifies a run's configuration (everything but the seed and where it ran).

    A setting the run's adaprefix did not have yet takes its default, as it could not have changed that run:
    a run from before ``--eval-subset`` existed groups with today's runs that leave it unset.
    """
    stored = results.get("train_args", {})
    settings = {**TrainArgs.defaults(), **stored} if stored else {}
    args = {k: v for k, v in settings.items() if k not in NOT_CONFIGURATION}
    args["task"], args["method"] = results["task"], results["method"]
    if results.get("prefix_lengths") is not None and args.get("method") != "finetune":
        args["prefix_len"] = results["prefix_lengths"] if len(set(results["prefix_lengths"])) > 1 else results["prefix_lengths"][0]
    return args


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": len(values), "values": values}


def collect_rows(paths: list[str | Path]) -> list[dict]:
    """One row per configuration: dev score (the selection metric), test score where there is one, seeds,
    parameters, time and examples per second, each as mean +- std over seeds."""
    groups: dict[str, list[tuple[Path, dict]]] = {}
    for path in find_results(paths):
        try:
            results = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path}: not a readable results.json ({err})") from None
        groups.setdefault(_key(configuration(results)), []).append((path, results))
    rows = []
    for key, runs in groups.items():
        runs.sort(key=lambda r: r[1].get("seed", 0))
        first = runs[0][1]
        metric = first["selection_metric"].split(".", 1)[1]
        dev = [r["best"]["val"][metric] for _, r in runs]
        test = [r["best"]["test"][metric] for _, r in runs if "test" in r["best"] and metric in r["best"]["test"]]
        rows.append({
            "config": json.loads(key), "task": first["task"], "method": first["method"], "metric": metric,
            "seeds": [r.get("seed") for _, r in runs], "dev": _stats(dev), "test": _stats(test) if test else None,
            "trainable_params": first.get("trainable_params"),
            "trainable_params_without_head": first.get("trainable_params_without_head"),
            "best_epoch": [r.get("best_epoch") for _, r in runs],
            "wall_s": _stats([r.get("wall_s") or 0.0 for _, r in runs]),
            "examples_per_s": _stats([r.get("train_examples_per_s") or 0.0 for _, r in runs]),
            "runs": [str(p.parent) for p, _ in runs],
            "commits": sorted({str(r.get("adaprefix_commit")) for _, r in runs}),
            "machines": sorted({f"{r.get('machine')}/{r.get('cuda') or 'cpu'}/{r.get('cpus')} cpus" for _, r in runs}),
        })
    rows.sort(key=lambda r: (r["task"], r["method"], -r["dev"]["mean"]))
    return rows


def best_per_method(rows: list[dict]) -> dict[str, dict]:
    """Per task and method, the configuration with the best mean dev score (chosen on dev only).

    Ties (frequent on dev sets of 56 to 104 examples) go to the cheaper configuration: fewer trainable parameters
    (without the head), then the smaller learning rate; a rule, so the choice does not depend on row order.
    """
    def rank(row: dict) -> tuple:
        params = row.get("trainable_params_without_head")
        lr = row.get("config", {}).get("lr")
        return (row["dev"]["mean"], -(params if params is not None else 0), -(lr if lr is not None else 0.0))

    best: dict[str, dict] = {}
    for row in rows:
        key = f"{row['task']}/{row['method']}"
        if key not in best or rank(row) > rank(best[key]):
            best[key] = row
    return best


def _varying(rows: list[dict]) -> list[str]:
    keys = sorted({k for r in rows for k in r["config"]})
    return [k for k in keys if k not in ("task", "method")
            and len({json.dumps(r["config"].get(k), default=str) for r in rows}) > 1]


def _pm(stats: dict | None, scale: float = 100.0) -> str:
    if not stats:
        return ""
    return f"{stats['mean'] * scale:.1f} ± {stats['std'] * scale:.1f}"


def markdown_table(rows: list[dict]) -> str:
    """A markdown table: task, method, the settings that vary, dev and test (x100, mean ± std), seeds, params."""
    varying = _varying(rows)
    chosen = {id(r) for r in best_per_method(rows).values()}
    header = ["task", "method", *varying, "dev", "test", "seeds", "params (no head)", "s / run", "chosen"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["task"], r["method"], *[str(r["config"].get(k, "")) for k in varying],
                 f"{_pm(r['dev'])} ({r['metric']})", _pm(r["test"]), str(len(r["seeds"])),
                 f"{r['trainable_params_without_head']:,}" if r["trainable_params_without_head"] is not None else "",
                 f"{r['wall_s']['mean']:.0f}", "yes" if id(r) in chosen else ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(paths: list[str | Path], output: str | Path | None = None, title: str = "Results",
                 extra: dict | None = None) -> tuple[str, dict]:
    """Markdown and JSON for ``paths``; written as ``output``.md / .json when ``output`` is given.

    Written to a file, each row's run folders are given relative to that file's folder, so the document reads the
    same whichever working directory (or absolute path) the report was made from, and stays valid when moved
    together with its runs.
    """
    from ..fileio import atomic_write

    rows = collect_rows(paths)
    if not rows:
        raise ValueError(f"no results.json under {', '.join(map(str, paths))}")
    if output is not None:
        home = Path(output).parent.resolve()
        for row in rows:
            row["runs"] = [os.path.relpath(Path(run).resolve(), home) for run in row["runs"]]
    best = best_per_method(rows)
    doc = {"rows": rows, "chosen": {k: v["config"] for k, v in best.items()}, **(extra or {})}
    md = (f"# {title}\n\nScores x100, mean ± std over seeds (sample std); dev = the selection metric at the best "
          f"epoch, test = at that epoch (NER). 'chosen' = best mean dev per task and method (ties: fewer trainable "
          f"parameters, then the smaller learning rate).\n\n"
          + markdown_table(rows)
          + f"\nCommits: {', '.join(sorted({c for r in rows for c in r['commits']}))}. "
          + f"Machines: {', '.join(sorted({m for r in rows for m in r['machines']}))}.\n")
    if output is not None:
        out = Path(output)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out.with_suffix(".md"), lambda p: p.write_text(md, encoding="utf-8"))
        atomic_write(out.with_suffix(".json"), lambda p: p.write_text(json.dumps(doc, indent=1) + "\n"))
    return md, doc
