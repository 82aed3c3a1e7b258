"""benchmarks/paper_tables.py: the paper's tables rebuilt from a results folder. A synthetic tree of hand-written
results.json files (main, ablations, few-shot, a defaults sweep with an lr grid) whose numbers are known, checked
against values computed here; and the committed CB defaults sweeps against the figures BENCHMARKS.md quotes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
pt = load_benchmark("paper_tables")

RESAMPLES = 2000


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def sd(xs: list[float]) -> float:
    m = mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def write(root: Path, phase: str, sweep: str, task: str, method: str, seed: int, score: float, lr: float,
          prefix_len: int | list | None = 16, test: float | None = None, metric: str = "accuracy",
          params: int = 1000, speed: float = 10.0, commit: str = "c0ffee", shots: int | None = None,
          extra_args: dict | None = None, name: str | None = None, best_epoch: int = 3) -> Path:
    """A collected run folder with a hand-written results.json."""
    if method == "finetune":
        prefix_len = None
    lengths = None if prefix_len is None else (prefix_len if isinstance(prefix_len, list) else [prefix_len] * 6)
    folder = root / phase / sweep / (name or f"{method}-lr{lr}-prefix_len{prefix_len}-s{seed}")
    folder.mkdir(parents=True)
    results = {
        "task": task, "method": method, "model": "minilm", "seed": seed, "prefix_lengths": lengths,
        "train_args": {"task": task, "method": method, "model": "minilm", "lr": lr, "epochs": 20, "seed": seed,
                       "output": str(folder), "prefix_len": 16 if isinstance(prefix_len, list) else prefix_len,
                       "shots": shots, **(extra_args or {})},
        "best_epoch": best_epoch, "best": {"val": {metric: score}, **({"test": {metric: test}} if test is not None else {})},
        "selection_metric": f"val.{metric}", "trainable_params": params + 99, "trainable_params_without_head": params,
        "train_examples_per_s": speed, "wall_s": 1.0, "adaprefix_commit": commit, "machine": "x86_64", "cuda": None,
        "cpus": 2,
    }
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def write_with_predictions(root: Path, sweep: str, method: str, seed: int, lr: float, right: int) -> None:
    """An RTE run right on the first ``right`` of 200 dev examples, with its val-predictions.json."""
    from adaprefix.training import prediction_records, prediction_task

    rng = np.random.default_rng(5)
    gold = [["entailment", "not_entailment"][k] for k in rng.integers(0, 2, 200)]
    flip = {"entailment": "not_entailment", "not_entailment": "entailment"}
    entries = [{"id": i, "gold": g, "pred": g if i < right else flip[g]} for i, g in enumerate(gold)]
    doc = {"task": "rte", "epoch": 3, "split": "val"}
    task = prediction_task(doc)
    scores = task.score(*prediction_records(task, entries))
    folder = write(root, "main", sweep, "rte", method, seed, scores["accuracy"], lr)
    results = json.loads((folder / "results.json").read_text())
    results["best"]["val"] = scores
    results["val_predictions"] = "val-predictions.json"
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "val-predictions.json").write_text(json.dumps({**doc, "scores": scores, "examples": entries}))


# CB: PT2 picks lr 0.01 then length 8; APT picks lr 0.02 then length 16 (seeds 12, 13 only: partial); FT 3e-5
# on seed 11 alone (partial).
PT2_LR = {0.005: 0.70, 0.01: 0.75, 0.02: 0.72}
PT2_LEN = {8: 0.78, 16: 0.75}
PT2_SEEDS = {12: 0.80, 13: 0.76, 14: 0.74, 15: 0.79}
APT_LR = {0.005: 0.71, 0.01: 0.74, 0.02: 0.77}
APT_LEN = {8: 0.76, 16: 0.775}  # seed 11 at (0.02, 16) scored 0.77 in the lr stage
APT_SEEDS = {12: 0.81, 13: 0.79}
FT_LR = {1e-5: 0.60, 3e-5: 0.66, 5e-5: 0.65}
# CoNLL04 fine-tuning: dev and test F1 of seeds 11 (lr stage), 12, 13
NER_LR = {1e-5: (0.50, 0.48), 3e-5: (0.55, 0.52), 5e-5: (0.61, 0.58)}
NER_SEEDS = {12: (0.63, 0.60), 13: (0.58, 0.57)}
ABL_NO_TOKEN = {11: 0.70, 12: 0.73, 13: 0.69, 14: 0.72, 15: 0.71}
ABL_PLUS = {11: 0.74, 12: 0.75, 13: 0.73, 14: 0.77, 15: 0.76}
ABL_STAR = {11: 0.79, 12: 0.78, 13: 0.80}
ABL_PLUS_PT2_LR = {11: 0.77, 12: 0.76, 13: 0.78, 14: 0.75, 15: 0.74}  # PT2+ again at PT2's lr (0.01)
STAR_LENGTHS = [4, 8, 8, 16, 24, 36]
FEW_APT = {11: 0.55, 12: 0.60, 13: 0.48, 14: 0.52, 15: 0.58}
FEW_PT2 = {11: 0.50, 12: 0.45, 13: 0.53}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("results")
    for lr, s in PT2_LR.items():
        write(root, "main", "cb-prefix-lr", "cb", "prefix", 11, s, lr, params=2000, speed=20.0)
    for length, s in PT2_LEN.items():
        write(root, "main", "cb-prefix-len", "cb", "prefix", 11, s, 0.01, length, params=1000 * length // 8)
    for seed, s in PT2_SEEDS.items():
        write(root, "main", "cb-prefix-seeds", "cb", "prefix", seed, s, 0.01, 8, speed=30.0)
    write(root, "main", "cb-prefix-seeds", "cb", "prefix", 16, 0.99, 0.01, 16)  # not at the chosen point
    for lr, s in APT_LR.items():
        write(root, "main", "cb-apt-lr", "cb", "apt", 11, s, lr, params=3000)
    for length, s in APT_LEN.items():
        write(root, "main", "cb-apt-len", "cb", "apt", 11, s, 0.02, length, params=3000, speed=12.0)
    for seed, s in APT_SEEDS.items():
        write(root, "main", "cb-apt-seeds", "cb", "apt", seed, s, 0.02, 16, params=3000, speed=18.0)
    for lr, s in FT_LR.items():
        write(root, "main", "cb-finetune-lr", "cb", "finetune", 11, s, lr, params=22_000_000)
    for lr, (d, t) in NER_LR.items():
        write(root, "main", "conll04-finetune-lr", "conll04", "finetune", 11, d, lr, test=t, metric="f1")
    for seed, (d, t) in NER_SEEDS.items():
        write(root, "main", "conll04-finetune-seeds", "conll04", "finetune", seed, d, 5e-5, test=t, metric="f1")
    for method, right in (("prefix", 150), ("apt", 170)):  # RTE: APT right on 20 more of 200 in every seed
        write_with_predictions(root, f"rte-{method}-lr", method, 11, 0.01, right)
        for seed in (12, 13):
            write_with_predictions(root, f"rte-{method}-seeds", method, seed, 0.01, right)
    for seed, s in ABL_NO_TOKEN.items():
        write(root, "ablations", "cb-no-token-gate", "cb", "apt", seed, s, 0.02, params=2900)
    for seed, s in ABL_PLUS.items():
        write(root, "ablations", "cb-pt2-plus", "cb", "prefix", seed, s, 0.02, 24, params=3000)
    for seed, s in ABL_STAR.items():  # seed 13 peaks at the last of its 20 epochs
        write(root, "ablations", "cb-pt2-star", "cb", "prefix", seed, s, 0.02, STAR_LENGTHS, params=2976,
              best_epoch=20 if seed == 13 else 3)
    for seed, s in ABL_PLUS_PT2_LR.items():
        write(root, "ablations", "cb-pt2-plus-pt2-lr", "cb", "prefix", seed, s, 0.01, 24, params=3000)
    for seed, s in FEW_APT.items():
        write(root, "fewshot", "cb-k16-apt", "cb", "apt", seed, s, 0.02, shots=16)
    for seed, s in FEW_PT2.items():
        write(root, "fewshot", "cb-k16-prefix", "cb", "prefix", seed, s, 0.01, shots=16)
    for seed, s in {11: 0.61, 12: 0.57, 13: 0.59, 14: 0.60, 15: 0.62}.items():  # draws 12, 15 peak at epoch 20
        write(root, "fewshot", "rte-k32-finetune", "rte", "finetune", seed, s, 3e-5, shots=32,
              best_epoch=20 if seed in (12, 15) else 3)
    return root


@pytest.fixture(scope="module")
def main(tree) -> dict:
    return pt.main_table(tree / "main", resamples=RESAMPLES)


def test_chosen_points_follow_the_lr_then_length_stages(main):
    cells = main["cells"]["cb"]
    assert cells["prefix"]["point"] == {"lr": 0.01, "prefix_len": 8}
    assert cells["apt"]["point"] == {"lr": 0.02, "prefix_len": 16}
    assert cells["finetune"]["point"] == {"lr": 3e-5, "prefix_len": None}
    assert main["cells"]["conll04"]["finetune"]["point"]["lr"] == 5e-5
    how = cells["prefix"]["how"]
    assert [(s["lr"], s["mean"]) for s in how["lr_stage"]] == sorted(PT2_LR.items())
    assert [(s["prefix_len"], s["mean"]) for s in how["len_stage"]] == sorted(PT2_LEN.items())
    assert main["tasks"] == ["cb", "rte", "conll04"]  # the protocol's order


def test_main_cells_means_std_and_partial(main):
    cells = main["cells"]["cb"]
    pt2 = [PT2_LEN[8], *PT2_SEEDS.values()]  # seed 11 from the len stage at length 8; seed 16 is off the point
    assert cells["prefix"]["seeds"] == [11, 12, 13, 14, 15] and cells["prefix"]["dev"] == pt2
    assert cells["prefix"]["mean"] == pytest.approx(mean(pt2)) and cells["prefix"]["std"] == pytest.approx(sd(pt2))
    assert not cells["prefix"]["partial"] and cells["prefix"]["params"] == 1000
    assert cells["prefix"]["examples_per_s"] == pytest.approx(mean([10.0] + [30.0] * 4))
    apt = [APT_LEN[16], *APT_SEEDS.values()]  # seed 11 in both the lr and len stages: the len stage's, once
    assert cells["apt"]["dev"] == apt and cells["apt"]["n"] == 3 and cells["apt"]["partial"]
    assert any("seed 11 twice with different dev scores" in n and "77.5 (kept)" in n for n in main["notes"])
    assert cells["apt"]["mean"] == pytest.approx(mean(apt)) and cells["apt"]["std"] == pytest.approx(sd(apt))
    assert cells["finetune"]["dev"] == [0.66] and cells["finetune"]["partial"] and cells["finetune"]["std"] is None
    ner = main["cells"]["conll04"]["finetune"]
    dev = [NER_LR[5e-5][0], *(d for d, _ in NER_SEEDS.values())]
    test = [NER_LR[5e-5][1], *(t for _, t in NER_SEEDS.values())]
    assert ner["n"] == 3 and not ner["partial"] and ner["metric"] == "f1"
    assert ner["mean"] == pytest.approx(mean(dev)) and ner["test_mean"] == pytest.approx(mean(test))
    assert ner["test_std"] == pytest.approx(sd(test))
    assert main["cells"]["conll04"]["apt"] is None and main["paired"]["conll04"] is None
    assert any("cb-prefix-seeds: seeds [16]" in n for n in main["notes"])

    md = pt.main_markdown(main)
    f = lambda xs: f"{100 * mean(xs):.1f} ± {100 * sd(xs):.1f}"  # noqa: E731
    assert f"| cb | accuracy | 66.0 (1/5, partial) | {f(pt2)} (5) | {f(apt)} (3/5, partial) |" in md
    assert f"| conll04 | f1 | dev {f(dev)} · test {f(test)} (3) | - | - |" in md
    assert "| cb | PT2 | 11,12,13,14,15 (5) | 0.01 | 8 | 1,000 |" in md
    assert ("- cb PT2: lr stage 0.005: 70.0, **0.01: 75.0**, 0.02: 72.0; len stage **8: 78.0**, 16: 75.0 "
            "-> lr 0.01, length 8") in md


def test_best_epochs_and_the_last_epoch_rule(tmp_path):
    # CoNLL04 FT scheduled for 20 epochs (write's train_args): seeds 11 and 13 peak at the last one, 12 at epoch 7.
    for seed, (lr, best) in {11: (5e-5, 20), 12: (5e-5, 7), 13: (5e-5, 20)}.items():
        sweep = "conll04-finetune-lr" if seed == 11 else "conll04-finetune-seeds"
        write(tmp_path, "main", sweep, "conll04", "finetune", seed, 0.6, lr, test=0.5, metric="f1", best_epoch=best)
    for seed in (11, 12, 13):  # PT2 never at the last epoch
        sweep = "conll04-prefix-lr" if seed == 11 else "conll04-prefix-seeds"
        write(tmp_path, "main", sweep, "conll04", "prefix", seed, 0.5, 0.01, 16, test=0.4, metric="f1",
              best_epoch=seed)
    table = pt.main_table(tmp_path / "main", resamples=RESAMPLES)
    ft = table["cells"]["conll04"]["finetune"]
    assert ft["best_epochs"] == [20, 7, 20] and ft["epochs"] == [20]
    assert pt.last_epoch_peaks(ft) == [11, 13]
    assert pt.last_epoch_peaks(table["cells"]["conll04"]["prefix"]) == []
    md = pt.main_markdown(table)
    assert "| 20, 7, 20 / 20 |" in md and "| 11, 12, 13 / 20 |" in md
    assert "Best at the last epoch: conll04 FT (2 of 3 seeds)." in md


def test_apt_minus_pt2_paired_by_seed(main):
    d = main["paired"]["cb"]
    pt2 = {11: PT2_LEN[8], **PT2_SEEDS}
    apt = {11: APT_LEN[16], **APT_SEEDS}
    diffs = [apt[s] - pt2[s] for s in (11, 12, 13)]
    assert d["seeds"] == [11, 12, 13] and d["diffs"] == pytest.approx(diffs)
    assert d["mean"] == pytest.approx(mean(diffs)) and d["std"] == pytest.approx(sd(diffs))
    assert min(diffs) <= d["low"] < d["mean"] < d["high"] <= max(diffs)
    assert d["examples"] == "n/a (no predictions)"
    md = pt.main_markdown(main)
    assert (f"| cb | dev accuracy | 11,12,13 | {', '.join(f'{100 * x:+.1f}' for x in diffs)} | "
            f"{100 * mean(diffs):+.1f} ± {100 * sd(diffs):.1f} |") in md


def test_headline_figure_rows_are_the_seeds_differences_and_their_intervals(main):
    """The APT - PT2 figure's rows: CB's per-seed differences (computed here from the scores written), RTE's +10
    on every seed with its over-examples interval; no row for CoNLL04 (no APT runs)."""
    rows = {r["label"]: r for r in pt.paper_plots.headline_rows(main)}
    assert list(rows) == ["cb (20 ep)", "rte (20 ep)"]
    pt2 = {11: PT2_LEN[8], **PT2_SEEDS}
    apt = {11: APT_LEN[16], **APT_SEEDS}
    diffs = [100 * (apt[s] - pt2[s]) for s in (11, 12, 13)]
    cb = rows["cb (20 ep)"]
    assert cb["diffs"] == pytest.approx(diffs) and cb["mean"] == pytest.approx(mean(diffs))
    assert min(diffs) <= cb["seeds"][0] < cb["mean"] < cb["seeds"][1] <= max(diffs)
    assert cb["examples"] is None  # no predictions files: no interval over examples, and no crash
    rte = rows["rte (20 ep)"]
    assert rte["diffs"] == pytest.approx([10.0] * 3) and 5 < rte["examples"][0] < 8 and 12 < rte["examples"][1] < 15


def test_examples_bootstrap_where_every_run_has_predictions(main):
    """RTE: APT right on 170 of 200, PT2 on 150, every seed: +10 points; each replicate is the share of those 20
    examples in a draw of 200 (Binomial(200, 0.1) / 200), whose 95% range is about [0.06, 0.14]."""
    d = main["paired"]["rte"]
    assert d["diffs"] == pytest.approx([0.1] * 3) and d["std"] == pytest.approx(0.0, abs=1e-12)
    ex = d["examples"]
    assert isinstance(ex, dict) and ex["units"] == 200 and ex["seeds"] == [11, 12, 13]
    assert ex["mean"] == pytest.approx(0.1) and 0.05 < ex["low"] < 0.08 and 0.12 < ex["high"] < 0.15
    assert main["cells"]["rte"]["prefix"]["point"] == {"lr": 0.01, "prefix_len": 16}  # no len stage: lr stage's
    assert any("rte-prefix-len: missing" in n for n in main["notes"])


def test_ablations(tree, main):
    a = pt.ablations_table(tree, main)
    assert a["tasks"] == ["cb"]
    rows = {r["variant"]: r for r in a["rows"]["cb"]}
    assert list(rows) == ["PT2", "APT", "APT w/o token gate", "APT w/o layer gate", "PT2+", "PT2*",
                          "PT2+ at PT2's lr"]  # PT2* at PT2's lr has no runs: no row
    again = list(ABL_PLUS_PT2_LR.values())
    assert rows["PT2+ at PT2's lr"]["mean"] == pytest.approx(mean(again)) and rows["PT2+ at PT2's lr"]["lr"] == [0.01]
    assert not any("cb-pt2-plus-pt2-lr" in n for n in a["notes"])  # its lr differs from APT's on purpose
    assert rows["PT2"]["mean"] == pytest.approx(main["cells"]["cb"]["prefix"]["mean"])
    assert rows["APT"]["partial"] and rows["APT"]["params"] == 3000
    no_token = list(ABL_NO_TOKEN.values())
    assert rows["APT w/o token gate"]["mean"] == pytest.approx(mean(no_token))
    assert rows["APT w/o token gate"]["std"] == pytest.approx(sd(no_token))
    assert rows["APT w/o token gate"]["params"] == 2900
    assert rows["APT w/o layer gate"]["n"] == 0
    assert rows["PT2+"]["prefix_len"] == [24] and rows["PT2+"]["mean"] == pytest.approx(mean(list(ABL_PLUS.values())))
    assert rows["PT2*"]["prefix_len"] == [STAR_LENGTHS] and rows["PT2*"]["partial"] and rows["PT2*"]["n"] == 3
    md = pt.ablations_markdown(a)
    star = list(ABL_STAR.values())
    assert (f"| cb | PT2* | {100 * mean(star):.1f} ± {100 * sd(star):.1f} (accuracy) |  | 3/5, partial | 0.02 | "
            f"[4,8,8,16,24,36] | 2,976 | 3, 3, 20 / 20 |") in md
    assert "| cb | APT w/o layer gate | - |" in md
    assert "Best at the last epoch: cb PT2* (1 of 3 seeds)." in md


def test_ablations_paired_against_apt(tree, main):
    """Each variant minus APT on the seeds both have (APT has 11, 12, 13 here), worked by hand."""
    a = pt.ablations_table(tree, main, resamples=RESAMPLES, examples=False)
    rows = {r["variant"]: r for r in a["rows"]["cb"]}
    apt = {11: APT_LEN[16], **APT_SEEDS}
    for variant, scores in (("APT w/o token gate", ABL_NO_TOKEN), ("PT2*", ABL_STAR),
                            ("PT2", {11: PT2_LEN[8], **PT2_SEEDS})):
        diffs = [scores[s] - apt[s] for s in (11, 12, 13)]
        d = rows[variant]["vs_apt"]
        assert d["seeds"] == [11, 12, 13] and d["diffs"] == pytest.approx(diffs)
        assert d["mean"] == pytest.approx(mean(diffs)) and d["std"] == pytest.approx(sd(diffs))
        assert min(diffs) <= d["low"] <= d["high"] <= max(diffs)
    assert rows["APT"]["vs_apt"] is None and rows["APT w/o layer gate"]["vs_apt"] is None
    md = pt.ablations_markdown(a)
    diffs = [ABL_NO_TOKEN[s] - apt[s] for s in (11, 12, 13)]
    assert (f"| 2,900 | 3, 3, 3, 3, 3 / 20 | {100 * mean(diffs):+.1f} ± {100 * sd(diffs):.1f} (3) | [") in md
    assert "not computed (--no-examples)" in md


def test_figure_panels_hold_every_seed_and_its_mean(tree, main):
    """What the main and ablation figures draw: each cell's per-seed dev x100, mean and sd, partial flagged."""
    panels = pt.paper_plots.main_panels(main)
    cb = {c["label"]: c for c in panels["cb"]}
    assert list(cb) == ["FT", "PT2", "APT"]
    pt2 = [100 * v for v in (PT2_LEN[8], *PT2_SEEDS.values())]
    assert cb["PT2"]["values"] == pytest.approx(pt2) and cb["PT2"]["mean"] == pytest.approx(mean(pt2))
    assert cb["PT2"]["sd"] == pytest.approx(sd(pt2)) and not cb["PT2"]["partial"]
    assert cb["FT"]["values"] == pytest.approx([66.0]) and cb["FT"]["sd"] is None and cb["FT"]["partial"]
    assert [c["label"] for c in panels["conll04"]] == ["FT"]  # no PT2 / APT runs: left out
    abl = {c["label"]: c for c in pt.paper_plots.ablation_panels(pt.ablations_table(tree, main, examples=False))["cb"]}
    assert "APT w/o layer gate" not in abl
    assert abl["PT2*"]["values"] == pytest.approx([100 * v for v in ABL_STAR.values()]) and abl["PT2*"]["partial"]
    few = pt.paper_plots.fewshot_panels(pt.fewshot_table(tree / "fewshot", resamples=200, examples=False))
    assert list(few) == ["cb K=16", "rte K=32"] and [c["label"] for c in few["cb K=16"]] == ["PT2", "APT"]
    apt = {c["label"]: c for c in few["cb K=16"]}["APT"]
    assert apt["values"] == pytest.approx([100 * v for v in FEW_APT.values()]) and not apt["partial"]
    assert apt["mean"] == pytest.approx(100 * mean(FEW_APT.values()))


def test_figures_are_drawn_and_linked(tree, tmp_path):
    out = tmp_path / "report" / "tables.md"
    assert pt.main([str(tree), "--output", str(out), "--tables", "main", "ablations", "fewshot", "--resamples",
                    "200", "--no-examples"]) == 0
    md = out.read_text()
    for name in ("paper-main.png", "paper-apt-vs-pt2.png", "paper-ablations.png", "paper-fewshot.png"):
        assert f"]({name})" in md and (out.parent / name).read_bytes()[:4] == b"\x89PNG"
    figs = tmp_path / "figs"
    assert pt.main([str(tree), "--output", str(out), "--tables", "main", "--figures", str(figs), "--resamples",
                    "200", "--no-examples"]) == 0
    assert "](../figs/paper-main.png)" in out.read_text() and (figs / "paper-main.png").is_file()


def test_fewshot(tree):
    f = pt.fewshot_table(tree / "fewshot")
    assert [(r["task"], r["shots"]) for r in f["rows"]] == [("cb", 16), ("rte", 32)]
    cb = f["rows"][0]["cells"]
    apt, pt2 = list(FEW_APT.values()), list(FEW_PT2.values())
    assert cb["apt"]["mean"] == pytest.approx(mean(apt)) and cb["apt"]["std"] == pytest.approx(sd(apt))
    assert not cb["apt"]["partial"] and cb["prefix"]["partial"] and cb["finetune"] is None
    md = pt.fewshot_markdown(f)
    assert (f"| cb | 16 | accuracy | - | {100 * mean(pt2):.1f} ± {100 * sd(pt2):.1f} (3/5, partial) | "
            f"{100 * mean(apt):.1f} ± {100 * sd(apt):.1f} (5) |") in md
    assert "Best at the last epoch: rte K=32 FT (2 of 5 draws)." in md


def test_fewshot_paired_by_draw(tree):
    """APT - PT2 over the draws both have (PT2 has 11-13 only); no pair where a method is missing."""
    f = pt.fewshot_table(tree / "fewshot", resamples=200)
    cb, rte = f["rows"][0]["paired"], f["rows"][1]["paired"]
    diffs = [FEW_APT[s] - FEW_PT2[s] for s in sorted(FEW_PT2)]
    assert cb["seeds"] == [11, 12, 13] and cb["diffs"] == pytest.approx(diffs)
    assert cb["mean"] == pytest.approx(mean(diffs)) and cb["std"] == pytest.approx(sd(diffs))
    assert min(diffs) <= cb["low"] <= cb["mean"] <= cb["high"] <= max(diffs)
    assert cb["examples"] == "n/a (no predictions)" and rte is None
    md = pt.fewshot_markdown(f)
    per_draw = ", ".join(f"{100 * d:+.1f}" for d in diffs)
    assert f"| cb | 16 | 11,12,13 | {per_draw} | {100 * mean(diffs):+.1f} ± {100 * sd(diffs):.1f} |" in md
    assert "| rte | 32 | - | - | - | - | n/a (APT or PT2 missing) |" in md


def test_defaults_lr_grid_chooses_per_setting(tmp_path):
    """Token-gate bias 0 vs 3 at two lrs: each setting is reported at its own best-mean lr, and paired there."""
    scores = {(0, 0.005): [0.70, 0.72, 0.71], (0, 0.01): [0.74, 0.73, 0.75],
              (3, 0.005): [0.78, 0.76, 0.77], (3, 0.01): [0.69, 0.70, 0.74]}
    for (bias, lr), values in scores.items():
        for seed, s in zip((11, 12, 13), values):
            write(tmp_path, "defaults", "rte-token-gate-bias", "rte", "apt", seed, s, lr,
                  extra_args={"token_gate_bias": bias}, name=f"apt-b{bias}-lr{lr}-s{seed}")
    [s] = pt.defaults_table(tmp_path / "defaults", RESAMPLES)
    assert s["setting"] == "token_gate_bias" and s["lr_grid"]
    by = {st["value"]: st for st in s["settings"]}
    assert [st["value"] for st in s["settings"]] == [0, 3]  # the default first
    assert by[0]["lr"] == 0.01 and by[3]["lr"] == 0.005
    assert by[3]["dev"] == scores[(3, 0.005)] and by[3]["mean"] == pytest.approx(mean(scores[(3, 0.005)]))
    diffs = [a - b for a, b in zip(scores[(3, 0.005)], scores[(0, 0.01)])]
    [d] = s["paired"]
    assert d["diffs"] == pytest.approx(diffs) and d["mean"] == pytest.approx(mean(diffs))
    md = pt.defaults_markdown([s])
    assert "lr chosen per setting: the lr of best mean dev" in md
    assert f"3: **0.005 {100 * mean(scores[(3, 0.005)]):.1f}** (3), 0.01 {100 * mean(scores[(3, 0.01)]):.1f} (3)" in md


def test_missing_and_command_line(tree, tmp_path):
    missing = pt.missing_sweeps(tree)
    assert len(missing["defaults"]) == 9 and "cb-prefix-len" not in missing["main"] and "wsc-apt-lr" in missing["main"]
    assert "cb-no-layer-gate" in missing["ablations"] and "cb-no-token-gate" not in missing["ablations"]
    # CB's PT2 chose 0.01, APT 0.02: the arms at PT2's lr are expected; PT2+'s is there, PT2*'s is not
    assert "cb-pt2-star-pt2-lr" in missing["ablations"] and "cb-pt2-plus-pt2-lr" not in missing["ablations"]
    assert len(pt.expected_sweeps(tree)["ablations"]) == len(pt.expected_sweeps()["ablations"]) + 2
    out, js = tmp_path / "tables.md", tmp_path / "tables.json"
    assert pt.main([str(tree), "--output", str(out), "--json", str(js), "--resamples", "500", "--no-examples"]) == 0
    md, doc = out.read_text(), json.loads(js.read_text())
    assert "No defaults runs." in md and "- defaults: no runs yet (9 sweeps expected)" in md
    assert doc["main"]["cells"]["cb"]["apt"]["dev"] == [APT_LEN[16], *APT_SEEDS.values()]
    assert doc["main"]["paired"]["rte"]["examples"] == "not computed (--no-examples)"
    assert "Commits: c0ffee (" in md


def test_header_names_the_results_folder_relative_to_the_working_folder(tree, monkeypatch):
    # the campaign passes an absolute path, a user a relative one: the committed tables must read the same
    monkeypatch.chdir(tree.parent)
    for given in (tree.resolve(), Path(tree.name)):
        md, doc = pt.build(given, ["defaults"])
        assert f"`python benchmarks/paper_tables.py {tree.name}`" in md and doc["root"] == tree.name
    outside = tree.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    monkeypatch.chdir(outside)
    assert pt.build(tree.resolve(), ["defaults"])[1]["root"] == str(tree.resolve())


def test_committed_cb_defaults_reproduce_the_quoted_figures():
    sweeps = {s["sweep"]: s for s in pt.defaults_table(ROOT / "benchmarks" / "results" / "defaults")}
    dropout = sweeps["cb-attention-dropout"]
    by = {st["value"]: st for st in dropout["settings"]}
    assert dropout["settings"][0]["value"] == 0.1 and by[0.1]["seeds"] == [11, 12, 13, 14, 15]
    assert [round(100 * x, 1) for x in by[0.1]["dev"]] == [75.0, 76.8, 76.8, 75.0, 78.6]
    assert round(100 * by[0.1]["mean"], 1) == 76.4 and round(100 * by[0.1]["std"], 1) == 1.5
    assert round(100 * by[0.0]["mean"], 1) == 74.6 and round(100 * by[0.0]["std"], 1) == 2.0
    [d] = dropout["paired"]
    assert d["value"] == 0.0 and d["minus"] == 0.1
    assert [round(100 * x, 1) + 0.0 for x in d["diffs"]] == [-3.6, -1.8, -1.8, 0.0, -1.8]
    assert (round(100 * d["mean"], 1), round(100 * d["std"], 1)) == (-1.8, 1.3)
    assert (round(100 * d["low"], 1), round(100 * d["high"], 1)) == (-2.9, -0.7)
    md = pt.defaults_markdown(list(sweeps.values()))
    assert "| 0.1 (default) | 0.01 | 11,12,13,14,15 | 75.0, 76.8, 76.8, 75.0, 78.6 | 76.4 ± 1.5 |" in md
    assert "| 0.0 | 0.01 | 11,12,13,14,15 | 71.4, 75.0, 75.0, 75.0, 76.8 | 74.6 ± 2.0 |" in md
    assert "-1.8 ± 1.3, bootstrap 95% over seeds [-2.9, -0.7]" in md
    pooling = sweeps["cb-gate-pooling"]
    assert [st["value"] for st in pooling["settings"]] == ["mean", "cls"]
    assert "| cls | 0.01 | 11,12,13,14,15 | 71.4, 73.2, 71.4, 73.2, 75.0 | 72.9 ± 1.5 |" in md
    assert "-3.6 ± 1.3, bootstrap 95% over seeds [-4.6, -2.5]" in md
    assert "Commits: e37e146422f31493f907183b3b41abe65127ca0c (10 runs). Machines: x86_64/cpu/2 cpus (10 runs)." in md


def test_other_dev_metrics_are_summarised_beside_the_selection_metric(tmp_path):
    """CB's macro-F1 at each run's best epoch: mean ± sd over the seeds of the cell, only where every run has it."""
    f1 = {11: 0.50, 12: 0.60, 13: 0.55}
    for seed, value in f1.items():
        sweep = "cb-apt-lr" if seed == 11 else "cb-apt-seeds"
        folder = write(tmp_path, "main", sweep, "cb", "apt", seed, 0.75, 0.01, 16)
        doc = json.loads((folder / "results.json").read_text())
        doc["best"]["val"].update({"macro_f1": value, "examples_scored": 56})
        (folder / "results.json").write_text(json.dumps(doc))
    write(tmp_path, "main", "cb-prefix-lr", "cb", "prefix", 11, 0.70, 0.01, 16)  # no macro-F1 recorded
    table = pt.main_table(tmp_path / "main", resamples=200, examples=False)
    other = table["cells"]["cb"]["apt"]["other"]
    assert set(other) == {"macro_f1"} and other["macro_f1"]["values"] == [0.50, 0.60, 0.55]
    assert other["macro_f1"]["mean"] == pytest.approx(0.55) and other["macro_f1"]["std"] == pytest.approx(0.05)
    assert table["cells"]["cb"]["prefix"]["other"] == {}
    assert "- cb macro_f1: APT 55.0 ± 5.0" in pt.main_markdown(table)


def test_defaults_copies_of_main_runs_count_at_the_default(tmp_path):
    """A defaults arm copied from the main table's run has the setting unset (None): it is the default's run."""
    scores = {0.1: [0.74, 0.73, 0.75], 0.0: [0.72, 0.74, 0.71]}
    for value, values in scores.items():
        for seed, s in zip((11, 12, 13), values):
            unset = value == 0.1 and seed != 13  # seeds 11 and 12 copied from main, 13 trained in the sweep
            write(tmp_path, "defaults", "conll04-attention-dropout", "conll04", "apt", seed, s, 0.01,
                  extra_args={"attention_dropout": None if unset else value}, name=f"apt-d{value}-s{seed}")
    [s] = pt.defaults_table(tmp_path / "defaults", RESAMPLES)
    assert [(st["value"], st["reference"], st["dev"]) for st in s["settings"]] == [
        (0.1, True, scores[0.1]), (0.0, False, scores[0.0])]
    [d] = s["paired"]
    assert d["diffs"] == pytest.approx([a - b for a, b in zip(scores[0.0], scores[0.1])])


def test_main_per_class(main):
    """RTE's per-label F1 in the main table: each run right on the first 150 (PT2) or 170 (APT) of 200 examples."""
    rng = np.random.default_rng(5)  # the gold of write_with_predictions
    gold = [["entailment", "not_entailment"][k] for k in rng.integers(0, 2, 200)]

    def label_f1(label: str, right: int) -> float:
        pred = [g if i < right else ("entailment" if g == "not_entailment" else "not_entailment")
                for i, g in enumerate(gold)]
        tp = sum(g == p == label for g, p in zip(gold, pred))
        fp = sum(p == label != g for g, p in zip(gold, pred))
        fn = sum(g == label != p for g, p in zip(gold, pred))
        return 2 * tp / (2 * tp + fp + fn)

    table = main["per_class"]["rte"]
    assert {r["class"]: r["support"] for r in table["rows"]} == {c: gold.count(c) for c in set(gold)}
    for row in table["rows"]:
        c = row["class"]
        assert row["cells"]["PT2"]["values"] == pytest.approx([label_f1(c, 150)] * 3)
        assert row["cells"]["APT"]["values"] == pytest.approx([label_f1(c, 170)] * 3)
        assert row["diff"]["mean"] == pytest.approx(label_f1(c, 170) - label_f1(c, 150))
    assert main["per_class"]["cb"] is None  # CB's runs here have no predictions
    assert "rte:\n\n| class | dev support | FT | PT2 | APT | APT - PT2 |" not in pt.main_markdown(main)  # no FT run
    assert "rte:\n\n| class | dev support | PT2 | APT | APT - PT2 |" in pt.main_markdown(main)


def test_a_train_subset_row_is_marked_with_its_counts(tmp_path):
    def subset_run(sweep: str, method: str, seed: int, size: int | None) -> None:
        folder = write(tmp_path, "main", sweep, "multirc", method, seed, 0.6, 0.01, 16, metric="f1a",
                       extra_args={"train_subset": size})
        doc = json.loads((folder / "results.json").read_text())
        doc.update(train_examples=size or 27243, train_records=27243)
        (folder / "results.json").write_text(json.dumps(doc))

    subset_run("multirc-apt-lr", "apt", 11, 2000)
    subset_run("multirc-prefix-lr", "prefix", 11, 2000)
    write(tmp_path, "main", "cb-apt-lr", "cb", "apt", 11, 0.7, 0.01, 16)  # a full-data task: not marked
    table = pt.main_table(tmp_path / "main", resamples=200, examples=False)
    assert table["subsets"] == {"multirc": "2,000 of 27,243 training records"}
    md = pt.main_markdown(table)
    assert "| multirc (subset) | f1a |" in md and "| cb | accuracy |" in md
    assert [r["label"] for r in pt.paper_plots.headline_rows(table)] == ["multirc (20 ep, subset)"]  # cb: no PT2
    assert "(subset) multirc: a fixed random 2,000 of 27,243 training records (`--train-subset`" in md
    subset_run("multirc-finetune-lr", "finetune", 11, None)  # one method on the whole file: said, not hidden
    table = pt.main_table(tmp_path / "main", resamples=200, examples=False)
    assert table["subsets"]["multirc"] == "2,000 of 27,243 training records, other runs on the whole files"


def test_a_dev_subset_is_marked_beside_the_training_subset(tmp_path):
    for method, seed in (("apt", 11), ("prefix", 11)):
        folder = write(tmp_path, "main", f"multirc-{method}-lr", "multirc", method, seed, 0.6, 0.01, 16, metric="f1a",
                       extra_args={"train_subset": 1000, "eval_subset": 1000})
        doc = json.loads((folder / "results.json").read_text())
        doc.update(train_examples=1000, train_records=27243, val_examples=1003, val_records=4848)
        (folder / "results.json").write_text(json.dumps(doc))
    table = pt.main_table(tmp_path / "main", resamples=200, examples=False)
    assert table["subsets"] == {"multirc": "1,000 of 27,243 training records; 1,003 of 4,848 dev records"}
    assert "| multirc (subset) | f1a |" in pt.main_markdown(table)


def _with_history(folder: Path, scores: list[float], epochs: int) -> None:
    """Give a written run a per-epoch history (dev F1 ``scores``, epochs 1..) and ``epochs`` scheduled; its best
    is the history's first maximum, as the trainer keeps it."""
    path = folder / "results.json"
    results = json.loads(path.read_text())
    best = scores.index(max(scores))
    results["epochs"] = [{"epoch": i + 1, "val": {"f1": s}} for i, s in enumerate(scores)]
    results["train_args"]["epochs"], results["best_epoch"] = epochs, best + 1
    results["best"]["val"]["f1"] = scores[best]
    path.write_text(json.dumps(results))


def test_epoch_check_sets_each_longer_run_beside_the_main_run_of_its_seed(tmp_path):
    # CoNLL04 at 4 epochs in the main table, 6 in the epochs phase. PT2 peaks at epoch 4 of 4, then rises to 0.62
    # at epoch 6; APT peaks at epoch 2 (ties at 3 keep 2) and gains nothing. PT2's longer run replays its first 4
    # epochs; APT's does not (0.57 at epoch 2 instead of 0.58): the table must say so.
    pt2, apt = [0.40, 0.50, 0.55, 0.60], [0.50, 0.58, 0.58, 0.56]
    for method, lr, scores, longer in (("prefix", 0.02, pt2, pt2 + [0.61, 0.62]),
                                       ("apt", 0.01, apt, [0.50, 0.57, 0.57, 0.56, 0.55, 0.54])):
        main = write(tmp_path, "main", f"conll04-{method}-lr", "conll04", method, 11, 0.0, lr, 16, test=0.3,
                     metric="f1")
        _with_history(main, scores, 4)
        run = write(tmp_path, "epochs", f"conll04-{method}-epochs6", "conll04", method, 11, 0.0, lr, 16, test=0.35,
                    metric="f1", name=f"{method}-s11")
        _with_history(run, longer, 6)
    write(tmp_path, "epochs", "conll04-apt-epochs6", "conll04", "apt", 12, 0.5, 0.01, 16, metric="f1",
          name="apt-s12")  # a seed the main table lacks: left out with a note
    main = pt.main_table(tmp_path / "main", examples=False)
    table = pt.paper_epochs.epochs_table(tmp_path / "epochs", main)
    rows = {r["method"]: r for r in table["rows"]}
    assert sorted(rows) == ["apt", "prefix"]
    assert (rows["prefix"]["main_dev"], rows["prefix"]["main_best_epoch"], rows["prefix"]["dev"],
            rows["prefix"]["best_epoch"]) == (0.60, 4, 0.62, 6)
    assert rows["prefix"]["replay_same"] and rows["prefix"]["replay_dev"] == 0.60
    assert (rows["apt"]["main_dev"], rows["apt"]["main_best_epoch"], rows["apt"]["dev"], rows["apt"]["best_epoch"]) \
        == (0.58, 2, 0.57, 2)
    assert not rows["apt"]["replay_same"] and rows["apt"]["replay_dev"] == 0.57
    [gap] = table["apt_minus_pt2"]["conll04"]
    assert gap["seed"] == 11 and gap["main"] == pytest.approx(0.58 - 0.60) and gap["longer"] == pytest.approx(0.57 - 0.62)
    assert any("seed 12 has no main-table run" in n for n in table["notes"])
    md = pt.paper_epochs.epochs_markdown(table)
    assert "| conll04 | PT2 | 11 | 4 | 60.0 (4) | 30.0 | 6 | 62.0 (6) | 35.0 | same |" in md
    assert "| conll04 | APT | 11 | 4 | 58.0 (2) | 30.0 | 6 | 57.0 (2) | 35.0 | 57.0 (main 58.0) |" in md
    assert "APT - PT2 -2.0 at the main table's epochs, -5.0 at 6" in md
    assert "- conll04 APT seed 11: first 4 epochs not an exact replay (no epoch-1 loss to compare)" in md
    assert "conll04 PT2 seed 11: first" not in md  # a replaying run gets no note
    # the figure draws each run's scored epochs in order, x100; it is linked where drawn
    assert pt.paper_epochs.curve(rows["prefix"]["_runs"][1].results, "f1") == \
        ([1, 2, 3, 4, 5, 6], pytest.approx([40.0, 50.0, 55.0, 60.0, 61.0, 62.0]))
    # PT2 peaked at 6 of 6: a second round at 9 epochs, one row per round and an APT - PT2 line for each
    for method, lr, scores in (("prefix", 0.02, pt2 + [0.61, 0.62, 0.63, 0.64, 0.63]),
                               ("apt", 0.01, [0.50, 0.57, 0.57, 0.56, 0.55, 0.54, 0.66, 0.65, 0.60])):
        run = write(tmp_path, "epochs", f"conll04-{method}-epochs9", "conll04", method, 11, 0.0, lr, 16, test=0.4,
                    metric="f1", name=f"{method}-s11")
        _with_history(run, scores, 9)
    table = pt.paper_epochs.epochs_table(tmp_path / "epochs", main)
    assert [(r["epochs"], r["method"], r["best_epoch"]) for r in table["rows"]] == \
        [(6, "prefix", 6), (6, "apt", 2), (9, "prefix", 8), (9, "apt", 7)]  # rounds in order, not by folder name
    assert [(g["epochs"], round(g["longer"], 6)) for g in table["apt_minus_pt2"]["conll04"]] == [(6, -0.05), (9, 0.02)]
    md = pt.paper_epochs.epochs_markdown(table)
    assert "-5.0 at 6" in md and "APT - PT2 -2.0 at the main table's epochs, +2.0 at 9" in md
    assert "| conll04 | APT | 11 | 4 | 58.0 (2) | 30.0 | 9 | 66.0 (7) | 40.0 |" in md
    out = tmp_path / "report" / "tables.md"
    assert pt.main([str(tmp_path), "--output", str(out), "--tables", "epochs", "--resamples", "50",
                    "--no-examples"]) == 0
    assert "](paper-epochs.png)" in out.read_text() and (out.parent / "paper-epochs.png").read_bytes()[:4] == b"\x89PNG"


def test_a_non_replay_is_told_apart_by_epoch_one_loss_and_host():
    """Epoch 1's loss differing means the arithmetic differed from the first steps (another host type: CoNLL03's
    APT main run trained on a Xeon, its 15-epoch run on an EPYC); the same loss points at a later epoch instead."""
    from types import SimpleNamespace

    def run(loss: float, **host) -> SimpleNamespace:
        return SimpleNamespace(results={"epochs": [{"epoch": 1, "train_loss": loss}, {"epoch": 2, "train_loss": 0.1}],
                                        **host})

    xeon = {"cpu_model": "Intel(R) Xeon(R)", "cpu_flags": ["amx_bf16", "avx2"]}
    epyc = {"cpu_model": "AMD EPYC", "cpu_id": "AuthenticAMD family 25 model 17 stepping 1", "cpu_flags": ["avx2"]}
    row = {"task": "conll03", "method": "apt", "seed": 11, "main_epochs": 10}
    note = pt.paper_epochs.divergence_note({**row, "_runs": [run(0.2480, **xeon), run(0.2482, **epyc)]})
    assert note == ("conll03 APT seed 11: first 10 epochs not an exact replay: epoch 1's training loss already "
                    "differs (0.248 main, 0.2482), so the arithmetic differed from the first steps on (hosts "
                    "Intel(R) Xeon(R) [amx_bf16 avx2] (main) and AuthenticAMD family 25 model 17 stepping 1); runs "
                    "replay bit for bit only on one host type")
    linear = [run(0.70, **epyc), run(0.70, **epyc)]  # RTE: linear decay over the run, so epoch 1's rate differs
    for r, rate in zip(linear, (0.0095, 0.009667)):
        r.results["epochs"][0]["lr"] = rate
    assert pt.paper_epochs.divergence_note({**row, "_runs": linear}).endswith(
        "not a replay, nor meant to be: the rate decays over the whole run (rate after epoch 1: 0.0095 main, 0.009667)")
    note = pt.paper_epochs.divergence_note({**row, "_runs": [run(0.2480, **epyc), run(0.2480, **epyc)]})
    assert "epoch 1's training loss is the same (0.248): a later epoch's data, schedule or state differed" in note
    assert "both recorded as AuthenticAMD family 25 model 17 stepping 1" in note


def test_committed_conll04_epoch_check_reproduces_the_quoted_figures():
    """benchmarks/results/side/epochs60/README.md quotes these (PT2 72.2 (31) -> 72.9 (52), APT 74.0 (40) ->
    74.4 (49)); both 60-epoch runs replay their main run's 40 epochs exactly."""
    root = ROOT / "benchmarks" / "results"
    table = pt.paper_epochs.epochs_table(root / "epochs", pt.main_table(root / "main", examples=False))
    rows = {r["method"]: r for r in table["rows"] if r["task"] == "conll04"}
    got = {m: (round(100 * r["main_dev"], 1), r["main_best_epoch"], round(100 * r["dev"], 1), r["best_epoch"],
               round(100 * r["test"], 1), r["replay_same"]) for m, r in rows.items()}
    assert got == {"prefix": (72.2, 31, 72.9, 52, 74.1, True), "apt": (74.0, 40, 74.4, 49, 74.4, True)}


def test_longer_phase_table_sets_each_main_row_beside_its_row_at_the_settled_epochs(tmp_path):
    """CoNLL04 at 40 epochs in the main table (seeds 11, 12; APT seed 12 peaked at 40), settled at 60 by the
    epoch check (neither 60-epoch run peaked at 60). At 60: PT2 0.70, 0.72; APT 0.73, 0.76 (APT - PT2 +3.0, +4.0
    by seed, by hand), FT 0.80, 0.82."""
    main_scores = {"prefix": (0.02, [0.68, 0.70]), "apt": (0.01, [0.69, 0.72]), "finetune": (5e-05, [0.79, 0.80])}
    for method, (lr, scores) in main_scores.items():
        for seed, score in zip((11, 12), scores):
            sweep = f"conll04-{method}-{'lr' if seed == 11 else 'seeds'}"
            folder = write(tmp_path, "main", sweep, "conll04", method, seed, score, lr, 16, test=score - 0.02,
                           metric="f1", best_epoch=40 if (method, seed) == ("apt", 12) else 33,
                           extra_args={"epochs": 40})
    assert pt.longer_epochs_due(tmp_path, "conll04") is None  # the epoch check's runs are not in
    for method, best in (("prefix", 52), ("apt", 49)):
        write(tmp_path, "epochs", f"conll04-{method}-epochs60", "conll04", method, 12, 0.7, 0.01, metric="f1",
              best_epoch=best, name=f"{method}-s12", extra_args={"epochs": 60})
    assert pt.longer_epochs_due(tmp_path, "conll04") == 60
    assert pt.expected_sweeps(tmp_path)["longer"] == [f"conll04-{m}-epochs60" for m in ("finetune", "prefix", "apt")]
    at_60 = {"prefix": (0.02, [0.70, 0.72]), "apt": (0.01, [0.73, 0.76]), "finetune": (5e-05, [0.80, 0.82])}
    for method, (lr, scores) in at_60.items():
        for seed, score in zip((11, 12), scores):
            write(tmp_path, "longer", f"conll04-{method}-epochs60", "conll04", method, seed, score, lr, 16,
                  test=score - 0.01, metric="f1", best_epoch=50 + seed, name=f"{method}-s{seed}",
                  extra_args={"epochs": 60})
    table = pt.paper_epochs.longer_table(tmp_path / "longer", pt.main_table(tmp_path / "main", examples=False),
                                         resamples=200, examples=False)
    row = table["tasks"]["conll04"]
    assert row["epochs"] == 60 and row["cells"]["apt"]["mean"] == pytest.approx(0.745)
    assert row["cells"]["finetune"]["test_mean"] == pytest.approx(0.80)
    assert row["paired"]["diffs"] == pytest.approx([0.03, 0.04]) and row["main_paired"]["diffs"] == \
        pytest.approx([0.01, 0.02])
    rows = {r["label"]: r for r in pt.paper_plots.headline_rows(pt.main_table(tmp_path / "main", examples=False),
                                                                  table)}
    assert list(rows) == ["conll04 (40 ep)", "conll04 (60 ep)"]
    assert rows["conll04 (60 ep)"]["diffs"] == pytest.approx([3.0, 4.0]) and rows["conll04 (60 ep)"]["partial"]
    assert rows["conll04 (40 ep)"]["diffs"] == pytest.approx([1.0, 2.0])
    md = pt.paper_epochs.longer_markdown(table)
    assert "| conll04 | APT | dev 70.5 ± 2.1 · test 68.5 ± 2.1 (2/3, partial) | 33, 40 / 40 | " \
           "dev 74.5 ± 2.1 · test 73.5 ± 2.1 (2/3, partial) | 61, 62 / 60 |" in md
    assert "- conll04, 60 epochs: APT - PT2 +3.5 ± 0.7 (seeds 11, 12: +3.0, +4.0;" in md
    assert "- conll04, main table: APT - PT2 +1.5 ± 0.7 (seeds 11, 12: +1.0, +2.0;" in md
    assert pt.main([str(tmp_path), "--output", str(tmp_path / "t.md"), "--tables", "longer", "--resamples", "50",
                    "--no-examples"]) == 0
    assert "## 7. Main rows at the epochs the epoch check settled on" in (tmp_path / "t.md").read_text()


def test_grid_edge_check_sets_the_run_past_the_edge_beside_the_chosen_point(tmp_path):
    """CB: PT2's lr stage peaks at the top (2e-2: 0.70) and its len stage keeps 16; APT's peaks inside (1e-2).
    The run past PT2's edge (4e-2, seed 11) scores 0.74: the edge binds (+4.0); APT has no edge to check."""
    for method, scores in (("prefix", {0.005: 0.60, 0.01: 0.65, 0.02: 0.70}),
                           ("apt", {0.005: 0.62, 0.01: 0.72, 0.02: 0.68})):
        for lr, score in scores.items():
            write(tmp_path, "main", f"cb-{method}-lr", "cb", method, 11, score, lr, 16)
    assert pt.edge_due(tmp_path / "main", "cb", "prefix") == pytest.approx(0.04)
    assert pt.edge_due(tmp_path / "main", "cb", "apt") is None  # chosen inside the grid
    assert pt.edge_due(tmp_path / "main", "copa", "apt") is None  # not chosen yet
    assert pt.expected_sweeps(tmp_path)["edges"] == ["cb-prefix-lr0.04"]
    write(tmp_path, "edges", "cb-prefix-lr0.04", "cb", "prefix", 11, 0.74, 0.04, 16, name="prefix-s11",
          best_epoch=18)
    write(tmp_path, "edges", "cb-prefix-wider", "cb", "prefix", 11, 0.9, 0.08, 16, name="prefix-s11")
    table = pt.paper_edges.edges_table(tmp_path / "edges", pt.main_table(tmp_path / "main", examples=False))
    assert table["notes"] == ["cb-prefix-wider: not a sweep name of the edges phase (<task>-<method>-lr<LR>); left out"]
    [row] = table["rows"]
    assert (row["lr"], row["dev"], row["edge_lr"], row["edge_dev"]) == (0.02, 0.70, 0.04, 0.74)
    assert row["gain"] == pytest.approx(0.04) and row["binds"]
    md = pt.paper_edges.edges_markdown(table)
    assert "| cb | PT2 | 11 | 16 | 0.005: 60.0, 0.01: 65.0, 0.02: 70.0 | 0.02: 70.0 (3) | 0.04: 74.0 (18/20) | +4.0 | " \
           "yes |" in md
    assert "The edge binds on 1 of 1 checked cells: cb PT2." in md
