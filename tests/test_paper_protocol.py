"""benchmarks/paper_gates.py (table 5: where APT's gate weight sits) and pieces of benchmarks/paper.py: hand-written
probes whose shares, lower-half share and centre of mass are worked out here by hand; the table built through
paper_tables from the main table's chosen APT runs; paper.py finding the runs that hold adapters, and running
few-shot sweeps only at a chosen main-table point."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import load_benchmark

gates_mod = load_benchmark("paper_gates")
pt = load_benchmark("paper_tables")
paper = load_benchmark("paper")


def write_probe(folder: Path, weights: list[float], task: str = "cb", alpha: float = 0.5) -> None:
    """A gates.json as `adaprefix probe` writes it: weight = |lambda| x mean alpha with every slot's alpha =
    ``alpha`` (two slots per layer), so lambda = weight / alpha."""
    layers = [{"layer": i, "length": 2, "lambda": w / alpha, "alpha_mean": [alpha, alpha], "alpha_std": [0.0, 0.0],
               "weight": w} for i, w in enumerate(weights)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gates.json").write_text(json.dumps({"task": task, "split": "train", "examples": 250, "layers": layers}))


def run_at(folder: Path, seed: int) -> SimpleNamespace:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text("{}")
    return SimpleNamespace(path=folder / "results.json", seed=seed)


UP = [1, 1, 2, 2, 3, 3]    # sum 12: lower half (1+1+2)/12 = 1/3, centre (1 + 4 + 6 + 12 + 15) / (12 x 5) = 38/60
DOWN = [3, 3, 2, 2, 1, 1]  # lower half 8/12 = 2/3, centre (3 + 4 + 6 + 4 + 5) / 60 = 22/60


def test_shares_lower_half_and_centre_by_hand(tmp_path):
    a = run_at(tmp_path / "sweep" / "apt-s11", 11)
    b = run_at(tmp_path / "sweep" / "apt-s12", 12)
    c = run_at(tmp_path / "sweep" / "apt-s13", 13)  # no probe
    write_probe(tmp_path / "sweep" / "apt-s11-probe-train", UP)  # the collected layout
    write_probe(tmp_path / "sweep" / "apt-s12" / "probe-train", DOWN)  # a live run folder
    table = gates_mod.gates_table({"cb": [b, c, a], "rte": [run_at(tmp_path / "rte" / "apt-s11", 11)]})
    assert table["tasks"] == ["cb"] and any("rte: no probe" in n for n in table["notes"])
    row = table["rows"]["cb"]
    assert row["seeds"] == [11, 12] and row["unprobed"] == [13] and row["layers"] == 6
    assert row["shares"][0] == pytest.approx([w / 12 for w in UP])
    assert row["share_mean"] == pytest.approx([4 / 24] * 6)  # UP + DOWN = 4 in every layer
    assert row["share_sd"][0] == pytest.approx(math.sqrt(2) * 1 / 12)  # |3 - 1| / 12 apart: sd = gap / sqrt(2)
    assert row["lower_half"]["per_seed"] == pytest.approx([1 / 3, 2 / 3])
    assert row["lower_half"]["mean"] == pytest.approx(0.5)
    assert row["lower_half"]["sd"] == pytest.approx((1 / 3) / math.sqrt(2))
    assert row["centre"]["per_seed"] == pytest.approx([38 / 60, 22 / 60])
    assert row["lambda_mean"][0] == pytest.approx((1 / 0.5 + 3 / 0.5) / 2) and row["alpha_mean"][0] == pytest.approx(0.5)
    md = gates_mod.gates_markdown(table, "gates.png")
    assert "| cb | 11,12 | 16.7 ± 11.8 |" in md and "| 50.0 ± 23.6 | 50.0 ± 18.9 |" in md  # centre sd: (16/60)/sqrt 2
    assert "![Gate weight share per layer](gates.png)" in md and "cb: seeds [13] have no probe on train" in md


def test_odd_layer_count_splits_the_middle_layer():
    assert gates_mod.lower_half_share([0.2, 0.5, 0.3]) == pytest.approx(0.2 + 0.25)
    assert gates_mod.centre_of_mass([0.2, 0.5, 0.3]) == pytest.approx((0.5 + 0.6) / 2)
    with pytest.raises(ValueError, match="every layer's gate weight is 0"):
        gates_mod.layer_shares({"task": "cb", "layers": [{"weight": 0.0}, {"weight": 0.0}]})


def test_paper_tables_builds_table_5_from_the_chosen_apt_runs(tmp_path):
    """APT's chosen point in this tree: lr 0.02, length 16 (seed 11 from the len stage, seeds 12-13 from the seeds
    stage); a probe beside an off-point lr-stage run must not be read."""
    root = tmp_path / "results"

    def apt(sweep: str, seed: int, score: float, lr: float, length: int | None, name: str) -> Path:
        folder = root / "main" / sweep / name
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({
            "task": "cb", "method": "apt", "seed": seed, "prefix_lengths": [length or 16] * 6,
            "train_args": {"task": "cb", "method": "apt", "lr": lr, "prefix_len": length, "seed": seed},
            "best": {"val": {"accuracy": score}}, "selection_metric": "val.accuracy",
            "trainable_params_without_head": 3000}))
        return folder

    for lr, score in ((0.005, 0.70), (0.01, 0.72), (0.02, 0.75)):
        apt("cb-apt-lr", 11, score, lr, 16, f"apt-lr{lr}-s11")
    apt("cb-apt-len", 11, 0.70, 0.02, 8, "apt-prefix_len8-s11")
    apt("cb-apt-len", 11, 0.75, 0.02, 16, "apt-prefix_len16-s11")
    for seed in (12, 13):
        apt("cb-apt-seeds", seed, 0.74, 0.02, 16, f"apt-s{seed}")
    write_probe(root / "main" / "cb-apt-len" / "apt-prefix_len16-s11-probe-train", UP)
    write_probe(root / "main" / "cb-apt-seeds" / "apt-s12-probe-train", DOWN)
    write_probe(root / "main" / "cb-apt-seeds" / "apt-s13-probe-train", UP)
    write_probe(root / "main" / "cb-apt-lr" / "apt-lr0.005-s11-probe-train", [1, 0, 0, 0, 0, 0])  # off the point
    md, doc = pt.build(root, ["gates"], figures=tmp_path / "fig")
    row = doc["gates"]["rows"]["cb"]
    assert row["seeds"] == [11, 12, 13]
    assert row["lower_half"]["per_seed"] == pytest.approx([1 / 3, 2 / 3, 1 / 3])
    assert "## 5. Gates" in md and "![Gate weight share per layer](paper-gates.png)" in md
    assert (tmp_path / "fig" / "paper-gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def chosen_tree(out: Path, length: int) -> None:
    """A main-phase output folder where the len stage chose (0.02, ``length``) for CB's APT."""
    len_dir = out / "main" / "cb-apt-len"
    len_dir.mkdir(parents=True)
    (len_dir / "summary.json").write_text(json.dumps({"chosen": {"cb/apt": {"lr": 0.02, "prefix_len": length}}}))


def finished(run: Path, adapter: bool) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.json").write_text("{}")
    if adapter:
        (run / "adapter").mkdir()
        (run / "adapter" / "adapter.safetensors").write_bytes(b"weights")
    return run


def protocol(out: Path):
    return paper.Protocol(SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                                          results=str(out / "none"), dry_run=False))


def test_chosen_runs_take_seed_11s_adapter_from_the_lr_stage_when_the_len_run_is_a_copy(tmp_path, capsys):
    out = tmp_path / "paper"
    chosen_tree(out, 16)
    main = out / "main"
    finished(main / "cb-apt-len" / "runs" / "apt-prefix_len16-s11", adapter=False)  # copied results only
    lr_run = finished(main / "cb-apt-lr" / "runs" / "apt-lr0.02-s11", adapter=True)
    s12 = finished(main / "cb-apt-seeds" / "runs" / "apt-s12", adapter=True)
    finished(main / "cb-apt-seeds" / "runs" / "apt-s13", adapter=False)  # restored from the repository
    assert protocol(out).chosen_runs("cb", "apt") == [lr_run, s12]
    assert "apt-s13: finished, but its adapter is not on this disk" in capsys.readouterr().out


def test_chosen_runs_at_length_8_use_the_len_stage_run(tmp_path):
    out = tmp_path / "paper"
    chosen_tree(out, 8)
    run = finished(out / "main" / "cb-apt-len" / "runs" / "apt-prefix_len8-s11", adapter=True)
    finished(out / "main" / "cb-apt-lr" / "runs" / "apt-lr0.02-s11", adapter=True)  # length 16: not the point
    assert protocol(out).chosen_runs("cb", "apt") == [run]


def test_reuse_copies_the_adapter_with_the_results(tmp_path):
    source = finished(tmp_path / "lr" / "apt-lr0.02-s11", adapter=True)
    (source / "val-predictions.json").write_text("[]")
    target = tmp_path / "len" / "apt-prefix_len16-s11"
    protocol(tmp_path / "paper").reuse(source, target)
    assert (target / "adapter" / "adapter.safetensors").read_bytes() == b"weights"
    assert (target / "results.json").is_file() and (target / "val-predictions.json").is_file()


def test_fewshot_runs_each_method_at_its_main_point_and_waits_for_one(tmp_path, capsys):
    out = tmp_path / "paper"
    chosen_tree(out, 8)  # APT chose lr 0.02, length 8
    ft = out / "main" / "cb-finetune-lr"
    ft.mkdir(parents=True)
    (ft / "summary.json").write_text(json.dumps({"chosen": {"cb/finetune": {"lr": 3e-5}}}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(out / "none"), dry_run=True)
    paper.Protocol(ns).fewshot(["cb"])
    lines = capsys.readouterr().out.splitlines()
    apt = next(line for line in lines if "fewshot/cb-k16-apt:" in line)
    assert "--lr 0.02 --prefix-len 8 --shots 16 --shots-dev" in apt
    assert "--lr 3e-05 --shots 32" in next(line for line in lines if "fewshot/cb-k32-finetune:" in line)
    assert "[paper] fewshot/cb-k16-prefix: the main table's point is not there yet; skipped" in lines  # no PT2 stages


def test_ablations_rerun_pt2_variants_at_pt2s_lr_only_where_it_differs(tmp_path, capsys):
    out = tmp_path / "paper"
    chosen_tree(out, 8)  # APT chose lr 0.02, length 8
    finished(out / "main" / "cb-apt-len" / "runs" / "apt-prefix_len8-s11", adapter=True)
    pt2 = out / "main" / "cb-prefix-len"
    pt2.mkdir(parents=True)
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(out / "none"), dry_run=True)

    def sweeps(pt2_lr: float) -> dict[str, str]:
        (pt2 / "summary.json").write_text(json.dumps({"chosen": {"cb/prefix": {"lr": pt2_lr, "prefix_len": 8}}}))
        paper.Protocol(ns).ablations(["cb"])
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[paper] ablations/")]
        return {line.split()[1].rstrip(":"): line for line in lines}

    differs = sweeps(0.005)
    assert list(differs) == [f"ablations/cb-{n}" for n in ("no-token-gate", "no-layer-gate", "pt2-plus", "pt2-star",
                                                            "pt2-plus-pt2-lr", "pt2-star-pt2-lr")]
    assert "--lr 0.02 --match-params" in differs["ablations/cb-pt2-plus"]
    assert "--lr 0.005 --match-params" in differs["ablations/cb-pt2-plus-pt2-lr"]
    assert "--lr 0.005 --prefix-plan" in differs["ablations/cb-pt2-star-pt2-lr"]
    assert "pt2-lr" not in " ".join(sweeps(0.02))  # same lr as APT: nothing more to run


def test_a_fresh_checkout_takes_the_main_point_pt2_plus_size_and_pt2_star_plan_from_committed_results(tmp_path,
                                                                                                     capsys):
    """No run folders here (runs/ does not survive a checkout): the main table's choice, PT2+'s parameter count
    and PT2*'s plan come from what --collect committed, but only once every run of the choosing stage is in."""
    out, committed = tmp_path / "paper", tmp_path / "results" / "main"
    len_dir = committed / "cb-apt-len"
    finished(len_dir / "apt-prefix_len16-s11", adapter=False)
    (committed / "cb-apt-len.json").write_text(json.dumps({"chosen": {"cb/apt": {"lr": 0.02, "prefix_len": 16}}}))
    plan = len_dir / "apt-prefix_len16-s11-probe-train" / "plan.json"
    plan.parent.mkdir(parents=True)
    plan.write_text(json.dumps({"prefix_len": [4, 3]}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=["apt"],
                         results=str(tmp_path / "results"), dry_run=True)

    def lines(phase) -> dict[str, str]:
        phase(["cb"])
        found = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[paper] ")]
        return {line.split()[1].rstrip(":"): line for line in found}

    # the len stage's length-8 run is not committed yet: its choice is not final
    assert "the main table's APT point is not there yet" in " ".join(lines(paper.Protocol(ns).ablations).values())
    finished(len_dir / "apt-prefix_len8-s11", adapter=False)
    sweeps = lines(paper.Protocol(ns).ablations)
    assert "--lr 0.02 --prefix-len 16 --no-token-gate" in sweeps["ablations/cb-no-token-gate"]
    assert f"--match-params {len_dir / 'apt-prefix_len16-s11'}" in sweeps["ablations/cb-pt2-plus"]
    assert f"--prefix-plan {plan}" in sweeps["ablations/cb-pt2-star"]
    assert "--lr 0.02 --prefix-len 16 --shots 16" in lines(paper.Protocol(ns).fewshot)["fewshot/cb-k16-apt"]
    plan.unlink()  # results committed, but not the probe: PT2+ / PT2* wait for an adapter to probe
    assert "to size PT2+ and plan PT2*; skipped" in " ".join(lines(paper.Protocol(ns).ablations).values())


def test_conll04_runs_its_protocol_epochs_unless_the_user_sets_them(tmp_path, capsys):
    out = tmp_path / "paper"
    for extra, expected in (([], "--epochs 40"), (["--epochs", "7"], "--epochs 7")):
        ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=extra, methods=["apt"],
                             results=str(out / "none"), dry_run=True)
        paper.Protocol(ns).main(["conll04", "cb"])
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[paper] main/")]
        conll = [line for line in lines if line.split()[1].startswith("main/conll04-")]
        cb = [line for line in lines if line.split()[1].startswith("main/cb-")]
        assert conll and all(line.count("--epochs") == 1 and expected in line for line in conll)
        assert cb and all(("--epochs" in line) == bool(extra) for line in cb)  # CB keeps its default (20)
    assert paper.epochs_for("conll04") == 40 and paper.epochs_for("cb") == 20


def test_multirc_runs_at_max_length_512_unless_the_user_sets_one(tmp_path, capsys):
    for extra, expected in (([], "--max-length 512"), (["--max-length", "256"], "--max-length 256")):
        ns = SimpleNamespace(output=str(tmp_path / "paper"), data_dir="data", model="minilm", extra=extra,
                             methods=["apt"], results=str(tmp_path / "none"), dry_run=True)
        paper.Protocol(ns).main(["multirc", "cb"])
        lines = {line.split()[1].rstrip(":"): line for line in capsys.readouterr().out.splitlines()}
        assert lines["main/multirc-apt-lr"].count("--max-length") == 1 and expected in lines["main/multirc-apt-lr"]
        assert ("--max-length" in lines["main/cb-apt-lr"]) == bool(extra)  # CB keeps its default (128)
    assert paper.max_length_for("multirc") == 512 and paper.max_length_for("cb") == 128


def test_defaults_arms_at_every_default_copy_the_same_finished_run_and_committed_results_win(tmp_path, monkeypatch):
    out = tmp_path / "paper"
    commands = []
    monkeypatch.setattr(paper.subprocess, "run", lambda cmd, check: commands.append(cmd))
    monkeypatch.setattr(paper, "backbone_attention_dropout", lambda model: 0.1)
    lr_stage = out / "main" / "conll04-apt-lr" / "runs"
    for lr in ("0.005", "0.01"):
        finished(lr_stage / f"apt-lr{lr}-s11", adapter=True)
        (lr_stage / f"apt-lr{lr}-s11" / "results.json").write_text(json.dumps({"lr": lr}))
    committed = tmp_path / "committed" / "defaults" / "conll04-gate-pooling" / "apt-gate_poolingmean-lr0.01-s11"
    committed.mkdir(parents=True)
    (committed / "results.json").write_text(json.dumps({"committed": True}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(tmp_path / "committed"), dry_run=False)
    paper.Protocol(ns).defaults(["conll04"])

    def read(sweep: str, run: str) -> dict | None:
        path = out / "defaults" / f"conll04-{sweep}" / "runs" / run / "results.json"
        return json.loads(path.read_text()) if path.is_file() else None

    assert read("attention-dropout", "apt-attention_dropout0.1-lr0.01-s11") == {"lr": "0.01"}
    assert read("token-gate-bias", "apt-lr0.01-token_gate_bias0.0-s11") == {"lr": "0.01"}
    assert read("token-gate-bias", "apt-lr0.005-token_gate_bias0.0-s11") == {"lr": "0.005"}
    assert read("gate-pooling", "apt-gate_poolingmean-lr0.01-s11") == {"committed": True}  # not overwritten
    assert (out / "defaults" / "conll04-attention-dropout" / "runs" / "apt-attention_dropout0.1-lr0.01-s11" /
            "adapter" / "adapter.safetensors").read_bytes() == b"weights"
    # no run at 2e-2 or at another seed has finished: nothing to copy; changed settings are never copies
    assert read("token-gate-bias", "apt-lr0.02-token_gate_bias0.0-s11") is None
    assert read("attention-dropout", "apt-attention_dropout0.1-lr0.01-s12") is None
    assert read("attention-dropout", "apt-attention_dropout0.0-lr0.01-s11") is None
    assert read("token-gate-bias", "apt-lr0.01-token_gate_bias3.0-s11") is None
    assert [cmd[cmd.index("--output") + 1].rsplit("/", 1)[1] for cmd in commands] == [
        "conll04-attention-dropout", "conll04-gate-pooling", "conll04-token-gate-bias"]


def test_a_backbone_without_attention_dropout_01_has_no_default_dropout_arm(tmp_path, monkeypatch):
    monkeypatch.setattr(paper, "backbone_attention_dropout", lambda model: 0.0)
    runs = protocol(tmp_path / "paper").baseline_runs("conll04", 0.01, 12)
    assert [r.parent.parent.name for r in runs] == ["conll04-gate-pooling", "conll04-token-gate-bias"]


def test_main_seeds_stage_copies_defaults_runs_only_at_length_16(tmp_path, monkeypatch):
    monkeypatch.setattr(paper.subprocess, "run", lambda cmd, check: None)
    monkeypatch.setattr(paper, "backbone_attention_dropout", lambda model: 0.1)
    for length in (8, 16):
        out = tmp_path / f"paper{length}"
        for stage, choice in (("lr", {"lr": 0.01}), ("len", {"lr": 0.01, "prefix_len": length})):
            (out / "main" / f"conll04-apt-{stage}").mkdir(parents=True)
            (out / "main" / f"conll04-apt-{stage}" / "summary.json").write_text(
                json.dumps({"chosen": {"conll04/apt": choice}}))
        finished(out / "defaults" / "conll04-gate-pooling" / "runs" / "apt-gate_poolingmean-lr0.01-s12", adapter=True)
        ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=["apt"],
                             results=str(out / "none"), dry_run=False)
        paper.Protocol(ns).main(["conll04"])
        seeds = out / "main" / "conll04-apt-seeds" / "runs"
        assert (seeds / "apt-s12" / "adapter").is_dir() == (length == 16)
        assert not (seeds / "apt-s13").exists()


def committed_choice(results: Path, probed_seeds: tuple[int, ...] = ()) -> Path:
    """Committed results (collect's layout) where CB's APT len stage chose (0.02, 16), with probes beside the
    runs of ``probed_seeds``."""
    main = results / "main"
    for length in (8, 16):
        finished(main / "cb-apt-len" / f"apt-prefix_len{length}-s11", adapter=False)
    (main / "cb-apt-len.json").write_text(json.dumps({"chosen": {"cb/apt": {"lr": 0.02, "prefix_len": 16}}}))
    for seed in (12, 13, 14):
        finished(main / "cb-apt-seeds" / f"apt-s{seed}", adapter=False)
    for seed in probed_seeds:
        run = main / "cb-apt-len" / "apt-prefix_len16-s11" if seed == 11 else main / "cb-apt-seeds" / f"apt-s{seed}"
        write_probe(run.parent / f"{run.name}-probe-train", [1, 1, 2, 2, 3, 3])
    return main


def test_gates_phase_retrains_only_finished_seeds_with_neither_adapter_nor_probe(tmp_path, capsys):
    """Seed 11: probe committed; 12: adapter on this disk; 13: results only (retrained); 14: its retrained copy's
    probe committed; 15: not trained yet (nothing to retrain)."""
    out, results = tmp_path / "paper", tmp_path / "results"
    committed_choice(results, probed_seeds=(11,))
    s12 = finished(out / "main" / "cb-apt-seeds" / "runs" / "apt-s12", adapter=True)
    write_probe(results / "gates" / "cb-apt-s14" / "apt-s14-probe-train", [1, 1, 1, 1, 1, 1])
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(results), dry_run=True)
    paper.Protocol(ns).gates(["cb"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[paper] gates/")]
    sweeps = [line for line in lines if " sweep " in line]
    assert len(sweeps) == 1 and "gates/cb-apt-s13: sweep --task cb --method apt --seeds 13 " in sweeps[0]
    assert sweeps[0].endswith("--lr 0.02 --prefix-len 16")  # the main table's point
    assert f"[paper] gates/cb: probe {s12}" in lines


def test_a_retrained_copy_stands_in_for_a_run_without_adapter(tmp_path):
    out, results = tmp_path / "paper", tmp_path / "results"
    committed_choice(results)
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(results), dry_run=True)
    protocol = paper.Protocol(ns)
    finished(out / "main" / "cb-apt-len" / "runs" / "apt-prefix_len16-s11", adapter=False)
    copy = finished(out / "gates" / "cb-apt-s11" / "runs" / "apt-s11", adapter=True)
    assert protocol.chosen_runs("cb", "apt") == [copy]
    run, plan = protocol.first_apt_sizes("cb")  # PT2+ is sized and PT2* planned from the copy
    assert run == copy and plan == copy / "probe-train" / "plan.json"


def gate_run(folder: Path, seed: int, dev: float) -> "pt.Run":
    results = {"seed": seed, "task": "cb", "method": "apt", "selection_metric": "val.accuracy",
               "best": {"val": {"accuracy": dev}}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(results))
    return pt.Run(folder / "results.json", results)


def test_gate_table_probes_a_retrained_copy_where_the_run_has_no_probe_and_says_so(tmp_path):
    root = tmp_path / "results"
    own = gate_run(root / "main" / "cb-apt-seeds" / "apt-s12", 12, 0.70)
    write_probe(root / "main" / "cb-apt-seeds" / "apt-s12-probe-train", UP)
    lost = gate_run(root / "main" / "cb-apt-seeds" / "apt-s13", 13, 0.70)
    differs = gate_run(root / "main" / "cb-apt-seeds" / "apt-s14", 14, 0.70)
    unprobed = gate_run(root / "main" / "cb-apt-seeds" / "apt-s15", 15, 0.70)
    gate_run(root / "gates" / "cb-apt-s12" / "apt-s12", 12, 0.70)  # a copy of a probed run: not used
    write_probe(root / "gates" / "cb-apt-s12" / "apt-s12-probe-train", DOWN)
    gate_run(root / "gates" / "cb-apt-s13" / "apt-s13", 13, 0.70)
    write_probe(root / "gates" / "cb-apt-s13" / "apt-s13-probe-train", DOWN)
    gate_run(root / "gates" / "cb-apt-s14" / "apt-s14", 14, 0.65)
    write_probe(root / "gates" / "cb-apt-s14" / "apt-s14-probe-train", DOWN)
    gate_run(root / "gates" / "cb-apt-s15" / "apt-s15", 15, 0.70)  # retrained, not probed yet: not used
    runs, notes = pt.gate_runs(root, {"cb": [own, lost, differs, unprobed]})
    assert [r.path.parent.parent.parent.name for r in runs["cb"]] == ["main", "gates", "gates", "main"]
    assert notes == ["cb: seeds 13 (same dev), 14 (dev 65.0, the original's 70.0) probed on a retrained copy "
                     "(gates/), the original's adapter being lost"]
    table = gates_mod.gates_table(runs)
    assert table["rows"]["cb"]["seeds"] == [12, 13, 14] and table["rows"]["cb"]["unprobed"] == [15]
    assert table["rows"]["cb"]["lower_half"]["per_seed"] == pytest.approx([1 / 3, 2 / 3, 2 / 3])  # UP, DOWN, DOWN


def test_train_subset_goes_to_that_tasks_full_data_sweeps_only(tmp_path, capsys):
    ns = SimpleNamespace(output=str(tmp_path / "paper"), data_dir="data", model="minilm", extra=[], methods=["apt"],
                         results=str(tmp_path / "none"), dry_run=True,
                         train_subset=paper.parse_subsets(["multirc=2000"]),
                         eval_subset=paper.parse_subsets(["multirc=1000"], option="--eval-subset"))
    protocol = paper.Protocol(ns)
    protocol.main(["multirc", "cb"])
    protocol.sweep("fewshot", "multirc-k16-apt", "multirc", "apt", [], [11], ["--shots", "16"])
    lines = {line.split()[1].rstrip(":"): line for line in capsys.readouterr().out.splitlines()}
    assert "--train-subset 2000 --eval-subset 1000" in lines["main/multirc-apt-lr"]
    for flag in ("--train-subset", "--eval-subset"):
        assert flag not in lines["main/cb-apt-lr"] and flag not in lines["fewshot/multirc-k16-apt"]
    with pytest.raises(ValueError, match="--eval-subset 'multirc': expected TASK=N"):
        paper.parse_subsets(["multirc"], option="--eval-subset")
    for bad in (["multirc"], ["multirc=0"], ["boolq=10"], ["multirc=1e3"]):
        with pytest.raises(ValueError, match="expected TASK=N"):
            paper.parse_subsets(bad)


def test_epochs_phase_checks_only_where_a_chosen_prefix_run_peaked_at_its_last_epoch(tmp_path, capsys):
    """CoNLL04 (protocol: 40 epochs): PT2 chose (0.02, 16), APT (0.01, 16). Its runs at those points peak before
    epoch 40 (nothing to check) until one seed's run, committed rather than here, peaks at 40: then both methods'
    first seed that peaked there (13) trains at 60 epochs, with --epochs given once; once seed 11 peaks at 40 too,
    seed 11 does."""
    out, committed = tmp_path / "paper", tmp_path / "results"
    for method, lr in (("prefix", 0.02), ("apt", 0.01)):
        stage = out / "main" / f"conll04-{method}-len"
        stage.mkdir(parents=True)
        (stage / "summary.json").write_text(json.dumps({"chosen": {f"conll04/{method}": {"lr": lr, "prefix_len": 16}}}))
        for name, best in ((f"{method}-prefix_len16-s11", 31), (f"{method}-prefix_len8-s11", 40)):  # len 8: not chosen
            (finished(stage / "runs" / name, adapter=False) / "results.json").write_text(json.dumps({"best_epoch": best}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(committed), dry_run=True)

    def sweeps() -> list[str]:
        paper.Protocol(ns).epochs(["conll04", "cb"])
        return capsys.readouterr().out.splitlines()

    lines = sweeps()
    assert "[paper] epochs/conll04: no main-table prefix run peaked at its last epoch (40); nothing to check" in lines
    assert "[paper] epochs/cb: the main table's PT2 and APT points are not both there yet; skipped" in lines
    late = committed / "main" / "conll04-apt-seeds" / "apt-s13"
    late.mkdir(parents=True)
    (late / "results.json").write_text(json.dumps({"best_epoch": 40}))
    lines = sweeps()
    assert "[paper] epochs/conll04: apt seed 13 peaked at the last epoch (40); 60 epochs on seed 13" in lines
    runs = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("[paper] epochs/conll04-")}
    assert list(runs) == ["epochs/conll04-prefix-epochs60", "epochs/conll04-apt-epochs60"]
    assert "--seeds 13 " in runs["epochs/conll04-prefix-epochs60"] and "--seeds 13 " in runs["epochs/conll04-apt-epochs60"]
    assert "--lr 0.02 --prefix-len 16 --epochs 60" in runs["epochs/conll04-prefix-epochs60"]
    assert "--lr 0.01 --prefix-len 16 --epochs 60" in runs["epochs/conll04-apt-epochs60"]
    assert all(line.count("--epochs") == 1 for line in runs.values())  # not also the protocol's 40
    chosen = out / "main" / "conll04-prefix-len" / "runs" / "prefix-prefix_len16-s11" / "results.json"
    chosen.write_text(json.dumps({"best_epoch": 40}))
    assert "[paper] epochs/conll04: prefix seed 11, apt seed 13 peaked at the last epoch (40); 60 epochs on seed 11" \
        in sweeps()
    chosen.write_text(json.dumps({"best_epoch": 31}))
    ns.methods = ["apt"]  # a stream may take one method
    assert [line for line in sweeps() if line.startswith("[paper] epochs/conll04-")] == \
        [line for line in lines if line.startswith("[paper] epochs/conll04-apt")]


def test_epochs_phase_goes_on_in_rounds_while_a_longer_run_peaks_last_and_ner_continues_the_shorter_run(tmp_path,
                                                                                                       capsys):
    """CoNLL04 (NER, 40 epochs; rounds of 60, 90, 135): PT2's seed 11 peaked at 40, so round 1 trains 60. Its
    committed PT2 run peaked at 60 again: round 2 at 90, where APT continues round 1's checkpoint found on this
    disk (PT2's is not here: it trains afresh). Both 90s committed, PT2 peaked at 90: round 3 at 135, then no
    further round however its runs end."""
    out, committed = tmp_path / "paper", tmp_path / "results"
    for method, lr in (("prefix", 0.02), ("apt", 0.01)):
        stage = out / "main" / f"conll04-{method}-len"
        stage.mkdir(parents=True)
        (stage / "summary.json").write_text(json.dumps({"chosen": {f"conll04/{method}": {"lr": lr, "prefix_len": 16}}}))
        run = finished(stage / "runs" / f"{method}-prefix_len16-s11", adapter=False)
        (run / "results.json").write_text(json.dumps({"best_epoch": 40 if method == "prefix" else 31}))

    def commit(epochs: int, bests: dict) -> None:
        for method, best in bests.items():
            run = committed / "epochs" / f"conll04-{method}-epochs{epochs}" / f"{method}-s11"
            run.mkdir(parents=True)
            (run / "results.json").write_text(json.dumps({"best_epoch": best}))

    shorter = out / "epochs" / "conll04-apt-epochs60" / "runs" / "apt-s11"  # round 1's APT run, on this disk
    (shorter / "checkpoint").mkdir(parents=True)
    (shorter / "checkpoint" / "trainer_state.pt").write_bytes(b"state")
    (shorter / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(1, 61)))
    (shorter / "results.json").write_text(json.dumps({"best_epoch": 52}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(committed), dry_run=True)

    def sweeps() -> list[str]:
        paper.Protocol(ns).epochs(["conll04"])
        return capsys.readouterr().out.splitlines()

    def epochs_flags(lines: list[str]) -> list[str]:
        return [line.split()[1].rstrip(":") + " " + line.split("--epochs ")[1] for line in lines
                if line.startswith("[paper] epochs/conll04-")]

    assert epochs_flags(sweeps()) == ["epochs/conll04-prefix-epochs60 60", "epochs/conll04-apt-epochs60 60"]
    commit(60, {"prefix": 60, "apt": 52})
    lines = sweeps()
    assert "[paper] epochs/conll04: prefix peaked at the last epoch again (60); 90 epochs on seed 11" in lines
    assert epochs_flags(lines)[2:] == ["epochs/conll04-prefix-epochs90 90", "epochs/conll04-apt-epochs90 90"]
    assert [line for line in lines if "from its checkpoint" in line] == [
        f"[paper] {out}/epochs/conll04-apt-epochs90/runs/apt-s11: continues {shorter} from its checkpoint (epoch 60)"]
    commit(90, {"prefix": 90, "apt": 70})
    assert epochs_flags(sweeps())[4:] == ["epochs/conll04-prefix-epochs135 135", "epochs/conll04-apt-epochs135 135"]
    commit(135, {"prefix": 135, "apt": 135})
    assert "[paper] epochs/conll04: prefix, apt still peaked at the last epoch (135) after 3 rounds; no further round" \
        in sweeps()
    # outside a dry run the longer run gets the shorter one's checkpoint and log, never its results
    ns.dry_run = False
    longer = tmp_path / "longer" / "apt-s11"
    paper.Protocol(ns).continue_run([tmp_path / "missing", shorter], longer)
    assert (longer / "checkpoint" / "trainer_state.pt").read_bytes() == b"state"
    assert (longer / "metrics.jsonl").read_text() == (shorter / "metrics.jsonl").read_text()
    assert not (longer / "results.json").exists()
    assert paper.continues_shorter_runs("conll04") and not paper.continues_shorter_runs("rte")  # linear decay
    assert paper.epochs_check_lengths("ontonotes") == [8, 12, 18] and paper.epochs_check_lengths("rte") == [30, 45, 68]
    # the rule itself: pending while a run is missing, again while one peaked at N, settled otherwise or at the end
    assert paper.check_rounds([8, 12, 18], {8: [8, 7], 12: [11, 10]}.get) == ([8, 12], 12)
    assert paper.check_rounds([8, 12, 18], {8: [8, 7]}.get) == ([8, 12], None)
    assert paper.check_rounds([8, 12, 18], {8: [8, 7], 12: [12, 9], 18: [18, 18]}.get) == ([8, 12, 18], 18)
    assert paper.check_rounds([8, 12, 18], {}.get) == ([8], None)


def test_longer_phase_continues_every_main_run_to_the_epochs_the_check_settled_on(tmp_path, capsys):
    """CoNLL04 (NER, 40 epochs): APT seed 12 peaked at 40, so the check trained seed 12 at 60, where neither
    method peaked at its last: settled at 60. The longer phase then runs every method and seed at its chosen
    point at 60 epochs; runs whose main-run checkpoint is on this disk continue it, the check's own seed-12 runs
    are copied rather than trained again, the rest train afresh."""
    out, committed = tmp_path / "paper", tmp_path / "results"
    main = out / "main"
    for method, lr in (("prefix", 0.02), ("apt", 0.01), ("finetune", 5e-05)):
        stage = main / f"conll04-{method}-{'lr' if method == 'finetune' else 'len'}"
        stage.mkdir(parents=True)
        point = {"lr": lr} if method == "finetune" else {"lr": lr, "prefix_len": 16}
        (stage / "summary.json").write_text(json.dumps({"chosen": {f"conll04/{method}": point}}))
        first = f"finetune-lr{lr}-s11" if method == "finetune" else f"{method}-prefix_len16-s11"
        for run in (stage / "runs" / first, *(main / f"conll04-{method}-seeds" / "runs" / f"{method}-s{s}"
                                               for s in (12, 13))):
            finished(run, adapter=False)
            late = method == "apt" and run.name.endswith("s12")
            (run / "results.json").write_text(json.dumps({"best_epoch": 40 if late else 33}))
    resumable = main / "conll04-apt-seeds" / "runs" / "apt-s13"
    (resumable / "checkpoint").mkdir()
    (resumable / "checkpoint" / "trainer_state.pt").write_bytes(b"state")
    (resumable / "metrics.jsonl").write_text(json.dumps({"epoch": 40}) + "\n")
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(committed), dry_run=True)

    def longer() -> list[str]:
        paper.Protocol(ns).longer(["conll04"])
        return capsys.readouterr().out.splitlines()

    assert longer() == ["[paper] longer/conll04: the epoch check has not settled on more epochs; skipped"]
    for method, best in (("prefix", 52), ("apt", 49)):  # the check's runs (seed 12): APT's on this disk, PT2's
        check = out / "epochs" / f"conll04-{method}-epochs60" / "runs" / f"{method}-s12"  # only committed
        if method == "prefix":
            check = committed / "epochs" / f"conll04-{method}-epochs60" / f"{method}-s12"
        finished(check, adapter=False)
        (check / "results.json").write_text(json.dumps({"best_epoch": best, "seed": 12}))
    lines = longer()
    sweeps = {line.split()[1].rstrip(":"): line for line in lines if line.startswith("[paper] longer/")}
    assert list(sweeps) == [f"longer/conll04-{m}-epochs60" for m in ("prefix", "apt", "finetune")]
    assert all("--seeds 11,12,13 " in line and line.endswith("--epochs 60") for line in sweeps.values())
    assert "--lr 5e-05 --epochs 60" in sweeps["longer/conll04-finetune-epochs60"]  # FT too, at its own point
    assert [line for line in lines if "from its checkpoint" in line] == [
        f"[paper] {out}/longer/conll04-apt-epochs60/runs/apt-s13: continues {resumable} from its checkpoint (epoch 40)"]
    ns.dry_run = False
    protocol = paper.Protocol(ns)
    protocol.sweep = lambda *a, **k: None  # what the sweeps would train is the part above; here only the seeding
    protocol.longer(["conll04"])
    runs = out / "longer"
    copied = runs / "conll04-apt-epochs60" / "runs" / "apt-s12" / "results.json"
    assert json.loads(copied.read_text())["best_epoch"] == 49
    copied = runs / "conll04-prefix-epochs60" / "runs" / "prefix-s12" / "results.json"  # from the committed results
    assert json.loads(copied.read_text())["best_epoch"] == 52
    assert (runs / "conll04-apt-epochs60" / "runs" / "apt-s13" / "checkpoint" / "trainer_state.pt").is_file()
    assert not (runs / "conll04-apt-epochs60" / "runs" / "apt-s13" / "results.json").exists()
    assert not (runs / "conll04-prefix-epochs60" / "runs" / "prefix-s11").exists()  # no checkpoint: trains afresh


def test_edges_phase_trains_one_lr_past_the_edge_the_main_table_chose(tmp_path, capsys):
    """CB: PT2 chose (5e-3, 8), APT (1e-2, 16), COPA's APT (2e-2, 16): the first seed once more at 2.5e-3 (length
    8) and at 4e-2 (length 16); APT on CB sits inside the grid."""
    out = tmp_path / "paper"
    for task, method, lr, length in (("cb", "prefix", 0.005, 8), ("cb", "apt", 0.01, 16), ("copa", "apt", 0.02, 16)):
        stage = out / "main" / f"{task}-{method}-len"
        stage.mkdir(parents=True)
        (stage / "summary.json").write_text(json.dumps({"chosen": {f"{task}/{method}": {"lr": lr,
                                                                                          "prefix_len": length}}}))
    ns = SimpleNamespace(output=str(out), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(tmp_path / "none"), dry_run=True)
    paper.Protocol(ns).edges(["cb", "copa"])
    lines = capsys.readouterr().out.splitlines()
    sweeps = {line.split()[1].rstrip(":"): line for line in lines if "sweep --task" in line}
    assert list(sweeps) == ["edges/cb-prefix-lr0.0025", "edges/copa-apt-lr0.04"]
    assert sweeps["edges/cb-prefix-lr0.0025"].endswith("--seeds 11 --output " + str(out / "edges" / "cb-prefix-lr0.0025")
                                                       + " --data-dir data --model minilm --no-progress --lr 0.0025 "
                                                       "--prefix-len 8")
    assert "--lr 0.04 --prefix-len 16" in sweeps["edges/copa-apt-lr0.04"]
    assert "[paper] edges/cb-apt: lr 0.01 is inside the grid; nothing to check" in lines
    assert "[paper] edges/copa-prefix: the main table's point is not there yet; skipped" in lines
    assert paper.edge_lr(0.02) == pytest.approx(0.04) and paper.edge_lr(0.005) == pytest.approx(0.0025)
    assert paper.edge_lr(0.01) is None
