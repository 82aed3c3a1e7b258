"""benchmarks/paper_cost.py: the protocol's run counts, present and remaining runs in a synthetic results tree,
measured seconds per run, the token-epoch scaling for unmeasured tasks and the token counting, each against values
worked out by hand here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import load_benchmark

pc = load_benchmark("paper_cost")

from adaprefix.tasks import ChoiceExample, PairExample, TokenExample  # noqa: E402


def by_name(sweeps: list) -> dict:
    return {s.name: s for s in sweeps}


# ---------------------------------------------------------------- expected runs


def test_main_counts_cb():
    sweeps = by_name(pc.main_sweeps("cb"))
    assert {n: s.expected for n, s in sweeps.items()} == {
        "cb-finetune-lr": 3, "cb-finetune-seeds": 4,
        "cb-prefix-lr": 3, "cb-prefix-len": 1, "cb-prefix-seeds": 4,
        "cb-apt-lr": 3, "cb-apt-len": 1, "cb-apt-seeds": 4}
    per_method = {m: sum(s.expected for s in sweeps.values() if s.method == m) for m in pc.METHODS}
    assert per_method == {"prefix": 8, "apt": 8, "finetune": 7}


def test_main_counts_rte():
    per_method = {m: sum(s.expected for s in pc.main_sweeps("rte") if s.method == m) for m in pc.METHODS}
    assert per_method == {"prefix": 6, "apt": 6, "finetune": 5}  # 3 + 1 + 2; FT 3 + 2


def test_defaults_counts():
    cb = by_name(pc.defaults_sweeps("cb"))
    # changed setting on every seed; the default arm once per lr on seeds 12.. (seed 11's are main's lr stage)
    assert {n: s.expected for n, s in cb.items()} == {
        "cb-attention-dropout": 5 + 4,  # dropout 0 x 5 seeds; dropout 0.1 (lr 1e-2) on 4 seeds
        "cb-gate-pooling": 5,  # cls; mean is attention-dropout's default arm, copied
        "cb-token-gate-bias": 15 + 2 * 4}  # bias 3 x 3 lrs x 5 seeds; bias 0 at 5e-3 and 2e-2 on 4 seeds
    assert sum(s.expected for s in pc.defaults_sweeps("rte")) == 5 + 3 + 13  # 3+2, 3, 9+2*2
    assert all(s.method == "apt" for s in cb.values())


def test_ablation_and_fewshot_counts():
    ab = by_name(pc.ablation_sweeps("conll04"))
    assert {n: (s.expected, s.method) for n, s in ab.items()} == {
        "conll04-no-token-gate": (3, "apt"), "conll04-no-layer-gate": (3, "apt"),
        "conll04-pt2-plus": (3, "prefix"), "conll04-pt2-star": (3, "prefix")}
    few = pc.fewshot_sweeps("cb")
    assert len(few) == 6 and all(s.expected == 5 for s in few)
    assert {(s.shots, s.method) for s in few} == {(k, m) for k in (16, 32) for m in ("finetune", "prefix", "apt")}


def write_lr_stage(root: Path, task: str, method: str, scores: dict[float, float]) -> None:
    """Seed 11 of a main-table lr stage at length 16, one results.json per rate (dev accuracy ``scores[lr]``)."""
    for lr, score in scores.items():
        folder = root / "main" / f"{task}-{method}-lr" / f"{method}-lr{lr}-s11"
        folder.mkdir(parents=True)
        doc = {"task": task, "method": method, "model": "minilm", "seed": 11, "prefix_lengths": [16] * 6,
               "train_args": {"task": task, "method": method, "lr": lr, "prefix_len": 16, "epochs": 40, "seed": 11,
                              "output": str(folder)},
               "best": {"val": {"f1": score}}, "selection_metric": "val.f1", "trainable_params_without_head": 1000,
               "wall_s": 100.0, "train_examples": 922, "device": "cpu"}
        (folder / "results.json").write_text(json.dumps(doc))


def test_ablations_at_pt2_lr_counted_where_the_lrs_differ(tmp_path: Path):
    """PT2 chose 2e-2 and APT 1e-2 on CoNLL04: PT2+ and PT2* again at 2e-2 (3 seeds each); on RTE the two chose
    the same rate: no extra arms; CB's PT2 lr stage is incomplete: not known, not counted."""
    root = tmp_path / "results"
    write_lr_stage(root, "conll04", "prefix", {0.005: 0.669, 0.01: 0.696, 0.02: 0.722})
    write_lr_stage(root, "conll04", "apt", {0.005: 0.709, 0.01: 0.740, 0.02: 0.739})
    write_lr_stage(root, "rte", "prefix", {0.005: 0.60, 0.01: 0.63, 0.02: 0.61})
    write_lr_stage(root, "rte", "apt", {0.005: 0.61, 0.01: 0.64, 0.02: 0.62})
    write_lr_stage(root, "cb", "prefix", {0.005: 0.73, 0.01: 0.75})
    write_lr_stage(root, "cb", "apt", {0.005: 0.71, 0.01: 0.73, 0.02: 0.75})
    assert [pc._paper_tables().pt2_lr_differs(root / "main", t) for t in ("conll04", "rte", "cb")] == [
        True, False, None]
    conll04 = by_name(pc.ablation_sweeps("conll04", root))
    assert {n: (s.expected, s.method) for n, s in conll04.items() if n.endswith("-pt2-lr")} == {
        "conll04-pt2-plus-pt2-lr": (3, "prefix"), "conll04-pt2-star-pt2-lr": (3, "prefix")}
    assert len(pc.ablation_sweeps("rte", root)) == len(pc.ablation_sweeps("cb", root)) == 4
    ablations = sum(s.expected for s in pc.protocol_sweeps(root) if s.phase == "ablations")
    assert ablations == 4 * 16 + 2 * 3


def _set(path: Path, **fields) -> None:
    doc = json.loads(path.read_text())
    doc.update(fields)
    path.write_text(json.dumps(doc))


def test_epochs_phase_counted_where_a_main_run_peaked_at_its_last_epoch(tmp_path: Path):
    """CoNLL04 (40 epochs): PT2 chose 2e-2, APT 1e-2 on seed 11. With no run at its last epoch and only seed 11 in,
    the check is not known yet; once the other seeds are in and none peaked at 40, it is not needed; once APT's
    seed 13 peaks at 40, PT2 and APT each train once at 60 epochs, priced at 1.5x a protocol run."""
    root = tmp_path / "results"
    write_lr_stage(root, "conll04", "prefix", {0.005: 0.669, 0.01: 0.696, 0.02: 0.722})
    write_lr_stage(root, "conll04", "apt", {0.005: 0.709, 0.01: 0.740, 0.02: 0.739})
    main = root / "main"
    for method, lr in (("prefix", 0.02), ("apt", 0.01)):
        for path in (main / f"conll04-{method}-lr").glob("*/results.json"):
            _set(path, best_epoch=31)  # the chosen runs and the others: none at 40
    assert pc.epochs_sweeps("conll04", root) is None
    for method, lr in (("prefix", 0.02), ("apt", 0.01)):
        src = next((main / f"conll04-{method}-lr").glob(f"*lr{lr}-s11/results.json"))
        for seed in (12, 13):
            folder = main / f"conll04-{method}-seeds" / f"{method}-s{seed}"
            folder.mkdir(parents=True)
            doc = json.loads(src.read_text())
            doc["seed"] = doc["train_args"]["seed"] = seed
            doc["train_args"]["output"] = str(folder)
            (folder / "results.json").write_text(json.dumps(doc))
    assert pc.epochs_sweeps("conll04", root) == []
    _set(main / "conll04-apt-seeds" / "apt-s13" / "results.json", best_epoch=40)
    sweeps = pc.epochs_sweeps("conll04", root)
    assert [(s.phase, s.name, s.method, s.expected, s.epochs_factor) for s in sweeps] == [
        ("epochs", "conll04-prefix-epochs60", "prefix", 1, 1.5), ("epochs", "conll04-apt-epochs60", "apt", 1, 1.5)]
    assert pc.epochs_sweeps("rte", root) is None  # no RTE runs: not known
    assert [s.name for s in pc.protocol_sweeps(root) if s.phase == "epochs"] == [s.name for s in sweeps]
    # paper_tables lists them as missing until they are in (its "Missing" section)
    assert pc._paper_tables().expected_sweeps(root)["epochs"] == [s.name for s in sweeps]
    measured = {("conll04", "apt"): (1200.0, 3)}
    assert pc.sweep_cost(sweeps[1], {}, measured, pc.Rates({}, {}, None, []), {}, {})[0] == pytest.approx(1800.0)
    # round 1 in: APT peaked at 60 of 60 (PT2 at 52), so round 2 at 90 is due; NER continues round 1's
    # checkpoint there, so it costs its 30 new epochs only: 0.75x a 40-epoch protocol run
    for method, best in (("prefix", 52), ("apt", 60)):
        folder = root / "epochs" / f"conll04-{method}-epochs60" / f"{method}-s13"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({"best_epoch": best}))
    sweeps = pc.epochs_sweeps("conll04", root)
    assert [(s.name, s.epochs_factor) for s in sweeps] == [
        ("conll04-prefix-epochs60", 1.5), ("conll04-apt-epochs60", 1.5),
        ("conll04-prefix-epochs90", 0.75), ("conll04-apt-epochs90", 0.75)]
    assert pc._paper_tables().expected_sweeps(root)["epochs"] == [s.name for s in sweeps]
    _set(root / "epochs" / "conll04-apt-epochs60" / "apt-s13" / "results.json", best_epoch=59)
    assert [s.name for s in pc.epochs_sweeps("conll04", root)][2:] == []  # neither peaked last: no round 2
    # settled at 60: the longer phase runs every method and seed at 60 (1.5x, priced whole: a fresh checkout has no
    # main-run checkpoint to continue), the epoch check's seed being a copy for PT2 and APT
    assert [(s.phase, s.name, s.expected, s.epochs_factor) for s in pc.longer_sweeps("conll04", root)] == [
        ("longer", "conll04-finetune-epochs60", 3, 1.5), ("longer", "conll04-prefix-epochs60", 2, 1.5),
        ("longer", "conll04-apt-epochs60", 2, 1.5)]
    assert [s.name for s in pc.protocol_sweeps(root) if s.phase == "longer"] == \
        pc._paper_tables().expected_sweeps(root)["longer"]
    # PT2 chose the grid's top (2e-2): one run at 4e-2 on seed 11; APT chose 1e-2, inside the grid
    assert [(s.phase, s.name, s.method, s.expected) for s in pc.protocol_sweeps(root) if s.phase == "edges"] == [
        ("edges", "conll04-prefix-lr0.04", "prefix", 1)]


def test_protocol_total():
    sweeps = pc.protocol_sweeps()
    by_phase = {p: sum(s.expected for s in sweeps if s.phase == p) for p in pc.PHASES}
    # defaults: cb 37, rte 21, conll04 21
    # main: small tasks (cb, copa, wsc) 8+8+7 = 23 each, the six others 6+6+5 = 17 each
    # ablations: 4 sweeps x (5 cb + 3 rte + 5 copa + 3 conll04); fewshot: 5 tasks x 2 K x 3 methods x 5 draws
    # epochs, longer, edges: none without a results folder (the main table's runs decide them)
    assert by_phase == {"defaults": 79, "main": 3 * 23 + 6 * 17, "ablations": 4 * 16, "fewshot": 150, "epochs": 0,
                        "longer": 0, "edges": 0}


# ---------------------------------------------------------------- a synthetic results tree


def write(root: Path, phase: str, sweep: str, run: str, task: str, method: str, wall_s: float,
          shots: int | None = None, output: str | None = None) -> None:
    folder = root / phase / sweep / run
    folder.mkdir(parents=True)
    args = {"epochs": 20, "shots": shots, **({"output": output} if output else {})}
    doc = {"task": task, "method": method, "wall_s": wall_s, "train_examples": 250, "train_args": args,
           "device": "cpu"}
    (folder / "results.json").write_text(json.dumps(doc))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    for i, w in enumerate((100.0, 200.0, 300.0)):
        write(root, "main", "cb-apt-lr", f"apt-lr{i}-s11", "cb", "apt", w,
              output=f"/x/runs/paper/main/cb-apt-lr/runs/apt-lr{i}-s11")
    # the len stage: length 16 copied from the lr stage (its output names cb-apt-lr), length 8 not yet run
    write(root, "main", "cb-apt-len", "apt-prefix_len16-s11", "cb", "apt", 300.0,
          output="/x/runs/paper/main/cb-apt-lr/runs/apt-lr2-s11")
    for s in (12, 13):
        write(root, "main", "cb-apt-seeds", f"apt-s{s}", "cb", "apt", 400.0)
    for s in (12, 13, 14, 15, 16, 17):  # more than expected: remaining stays at 0
        write(root, "main", "cb-finetune-seeds", f"finetune-s{s}", "cb", "finetune", 50.0)
    write(root, "fewshot", "cb-k16-apt", "apt-s11", "cb", "apt", 30.0, shots=16)
    write(root, "defaults", "cb-gate-pooling", "apt-gate_poolingcls-s11", "cb", "apt", 500.0)
    (root / "main" / "cb-apt-lr.md").write_text("not a run")
    return root


def test_read_runs_marks_copies(tree: Path):
    runs = pc.read_runs(tree)
    assert len(runs) == 14
    copies = [r for r in runs if r.copied]
    assert [(c.sweep, c.seconds) for c in copies] == [("cb-apt-len", 300.0)]
    lr = [r for r in runs if r.sweep == "cb-apt-lr"]
    assert len(lr) == 3 and not any(r.copied for r in lr)  # output in its own sweep: trained there


def test_a_side_run_committed_into_a_protocol_sweep_is_no_copy():
    # CoNLL04's 60-epoch side runs were moved into epochs/: nothing else counts them, so they are present there
    side = {"train_args": {"output": "/w/runs/side/epochs60/conll04-apt/runs/apt-lr0.01-s11"}}
    assert not pc.is_copy(side, "epochs", "conll04-apt-epochs60")
    copy = {"train_args": {"output": "/w/runs/paper/main/conll04-apt-lr/runs/apt-lr0.01-s11"}}
    assert pc.is_copy(copy, "main", "conll04-apt-len") and not pc.is_copy(copy, "main", "conll04-apt-lr")
    # the longer phase's copy of the epoch check's run: the same sweep name, another phase
    check = {"train_args": {"output": "/w/runs/paper/epochs/conll04-apt-epochs60/runs/apt-s11"}}
    assert pc.is_copy(check, "longer", "conll04-apt-epochs60") and not pc.is_copy(check, "epochs", "conll04-apt-epochs60")
    assert pc.is_copy(side, "longer", "conll04-apt-epochs60")  # the check's run, trained as a side run, copied on
    own = {"train_args": {"output": "/w/runs/paper/longer/conll04-apt-epochs60/runs/apt-s12"}}
    assert not pc.is_copy(own, "longer", "conll04-apt-epochs60")


def test_cost_seconds_prefers_cpu_time_of_one_thread_cpu_runs():
    doc = {"wall_s": 4500.0, "cpu_s": 2600.0, "torch_threads": 1, "device": "cpu"}
    assert pc.cost_seconds(doc) == 2600.0  # shared cores stretched the wall clock
    assert pc.cost_seconds({**doc, "torch_threads": 2}) == 4500.0  # CPU time sums threads: not one stream's cost
    assert pc.cost_seconds({**doc, "device": "cuda:0"}) == 4500.0  # host time misses the GPU's work
    assert pc.cost_seconds({**doc, "cpu_s": None}) == 4500.0  # resumed from a checkpoint without CPU time
    assert pc.cost_seconds({"wall_s": 300.0}) == 300.0  # runs from before the field


def test_remaining_is_expected_minus_present(tree: Path):
    sweeps = by_name(pc.count_present(pc.read_runs(tree), pc.protocol_sweeps()))
    expect = {  # name: (expected, present, remaining)
        "cb-apt-lr": (3, 3, 0),
        "cb-apt-len": (1, 0, 1),  # the copy is not the length-8 run
        "cb-apt-seeds": (4, 2, 2),
        "cb-finetune-seeds": (4, 6, 0),  # never below 0
        "cb-finetune-lr": (3, 0, 3),
        "cb-k16-apt": (5, 1, 4),
        "cb-gate-pooling": (5, 1, 4),  # cls only: mean is a copy
        "rte-prefix-lr": (3, 0, 3),
    }
    assert {n: (sweeps[n].expected, sweeps[n].present, sweeps[n].remaining) for n in expect} == expect


def test_defaults_sweep_complete_when_every_arm_is_in(tmp_path: Path):
    """RTE's dropout sweep holds 2 settings x 3 seeds when complete; its default arm at seeds 12 and 13 came as
    copies of the main table's seeds stage (not counted as trained there), so only 4 of the 5 runs it may train
    are present: complete all the same, while one arm short it is not."""
    root = tmp_path / "results"
    for seed in (11, 12, 13):
        write(root, "defaults", "rte-attention-dropout", f"apt-attention_dropout0.0-s{seed}", "rte", "apt", 9.0)
    write(root, "defaults", "rte-attention-dropout", "apt-attention_dropout0.1-s11", "rte", "apt", 9.0)
    write(root, "defaults", "rte-attention-dropout", "apt-attention_dropout0.1-s12", "rte", "apt", 9.0,
          output="/x/runs/paper/main/rte-apt-seeds/runs/apt-s12")
    sweep = by_name(pc.count_present(pc.read_runs(root), pc.protocol_sweeps()))["rte-attention-dropout"]
    assert (sweep.expected, sweep.present, sweep.held, sweep.remaining) == (5, 4, 5, 1)
    write(root, "defaults", "rte-attention-dropout", "apt-attention_dropout0.1-s13", "rte", "apt", 9.0,
          output="/x/runs/paper/main/rte-apt-seeds/runs/apt-s13")
    sweep = by_name(pc.count_present(pc.read_runs(root), pc.protocol_sweeps()))["rte-attention-dropout"]
    assert (sweep.expected, sweep.present, sweep.held, sweep.remaining) == (5, 4, 6, 0)


def test_measured_seconds(tree: Path):
    runs = pc.read_runs(tree)
    measured = pc.measured_seconds(runs)
    # APT full-data runs, copy and few-shot run left out: 100, 200, 300, 400, 400, 500 -> 1900 / 6
    assert measured[("cb", "apt")] == (pytest.approx(1900 / 6), 6)
    assert measured[("cb", "finetune")] == (pytest.approx(50.0), 6)
    assert set(measured) == {("cb", "apt"), ("cb", "finetune")}
    # per task: (1900 + 6 * 50) / 12
    assert pc.measured_task_seconds(runs)["cb"] == (pytest.approx(2200 / 12), 12)
    assert pc.measured_few_shot_seconds(runs) == {("cb", "apt", 16): pytest.approx(30.0)}


def test_runs_of_other_epochs_than_the_protocols_are_not_measured(tree: Path):
    """An epochs-phase run (CB at 30 epochs, the protocol's being 20) costs 1.5x a protocol run: it would inflate
    the seconds per run the remaining runs are priced at."""
    write(tree, "epochs", "cb-apt-epochs30", "apt-s11", "cb", "apt", 9000.0)
    path = tree / "epochs" / "cb-apt-epochs30" / "apt-s11" / "results.json"
    doc = json.loads(path.read_text())
    doc["train_args"]["epochs"] = 30
    path.write_text(json.dumps(doc))
    runs = pc.read_runs(tree)
    assert pc.measured_seconds(runs)[("cb", "apt")] == (pytest.approx(1900 / 6), 6)
    assert pc.measured_task_seconds(runs)["cb"] == (pytest.approx(2200 / 12), 12)


def test_phase_rows_hours(tree: Path):
    sweeps = [s for s in pc.count_present(pc.read_runs(tree), pc.main_sweeps("cb")) if s.method == "apt"]
    costs = {("main", s.name): (360.0, "measured") for s in sweeps}
    rows = pc.phase_rows(sweeps, costs)
    # expected 3 + 1 + 4, present 3 + 0 + 2, remaining 0 + 1 + 2 = 3 runs x 360 s = 0.3 h
    assert rows["main"]["cb"] == {"expected": 8, "present": 5, "remaining": 3, "hours": pytest.approx(0.3),
                                  "estimated": False}
    assert pc.phase_totals(rows)["main"]["hours"] == pytest.approx(0.3)


def park(inflight: Path, phase: str, sweep: str, run: str, epoch: int, epochs: int = 20) -> None:
    folder = inflight / phase / sweep / run
    folder.mkdir(parents=True)
    (folder / "train_config.yaml").write_text(f"task: cb\nepochs: {epochs}\n")
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e}) + "\n" for e in range(1, epoch + 1)))


def test_parked_runs_credit_their_trained_epochs(tree: Path):
    inflight = tree.parent / "inflight"
    park(inflight, "main", "cb-apt-seeds", "apt-s14", epoch=5)  # 5 of 20 epochs: a quarter of a run
    park(inflight, "main", "cb-apt-seeds", "apt-s15", epoch=15)  # three quarters
    park(inflight, "main", "cb-apt-seeds", "apt-s12", epoch=19)  # its results.json is in: a stale copy
    park(inflight, "main", "cb-apt-len", "apt-prefix_len8-s11", epoch=8, epochs=10)
    parked = pc.read_parked(inflight, tree)
    assert parked == {("main", "cb-apt-seeds"): pytest.approx(1.0), ("main", "cb-apt-len"): pytest.approx(0.8)}
    sweeps = [s for s in pc.count_present(pc.read_runs(tree), pc.main_sweeps("cb")) if s.method == "apt"]
    sweeps = pc.count_parked(parked, sweeps)
    rows = pc.phase_rows(sweeps, {("main", s.name): (360.0, "measured") for s in sweeps})
    # remaining 0 + 1 + 2 runs, less 0.8 + 1.0 trained: 1.2 runs x 360 s = 0.12 h; the run count is unchanged
    assert rows["main"]["cb"]["remaining"] == 3
    assert rows["main"]["cb"]["hours"] == pytest.approx(0.12)
    # a sweep is never credited more than it has left to train
    assert pc.count_parked({("main", "cb-apt-lr"): 2.0}, sweeps)[0].parked == 0.0


# ---------------------------------------------------------------- scaling for tasks without runs


def test_fit_ratio_least_squares_through_origin():
    # points (1, 2) and (2, 5): sum(xy) = 12, sum(xx) = 5 -> 2.4
    assert pc.fit_ratio([(1.0, 2.0), (2.0, 5.0)]) == pytest.approx(2.4)
    assert pc.fit_ratio([]) is None


def test_unmeasured_task_is_scaled_by_token_epochs():
    work = {"cb": 1000.0, "copa": 2000.0, "rte": 5000.0}
    measured = {("cb", "apt"): (200.0, 3), ("copa", "apt"): (500.0, 2), ("cb", "finetune"): (300.0, 1)}
    task_means = {"cb": (225.0, 4), "copa": (500.0, 2)}
    rates = pc.fit_rates(measured, task_means, work)
    # APT: (1000*200 + 2000*500) / (1000^2 + 2000^2) = 1.2e6 / 5e6 = 0.24 s per token-epoch
    assert rates.per_method["apt"] == pytest.approx(0.24)
    assert rates.per_method_from["apt"] == ["cb", "copa"]
    assert rates.per_method["finetune"] == pytest.approx(0.3)
    assert "prefix" not in rates.per_method
    # overall over per-task means: (1000*225 + 2000*500) / 5e6 = 0.245
    assert rates.overall == pytest.approx(0.245)

    assert pc.run_seconds("cb", "apt", measured, rates, work) == (200.0, "measured")
    seconds, how = pc.run_seconds("rte", "apt", measured, rates, work)
    assert (seconds, how) == (pytest.approx(0.24 * 5000), "est. apt")  # 1200 s
    seconds, how = pc.run_seconds("rte", "prefix", measured, rates, work)
    assert (seconds, how) == (pytest.approx(0.245 * 5000), "est. overall")  # no prefix run anywhere


def test_few_shot_estimate():
    rates = pc.Rates({"apt": 0.01}, {"apt": ["cb"]}, 0.02, ["cb"])
    stats = pc.TaskStats("cb", 250, 50.0, 20, eval_examples=56, few_shot={16: [39, 39]})
    # 0.01 * 50 tokens * 20 epochs * (39 + (56 + 39) / 3) = 10 * (39 + 31.667) = 706.67
    seconds, how = pc.few_shot_seconds(stats, "apt", 16, rates, {})
    assert seconds == pytest.approx(10 * (39 + 95 / 3)) and how.startswith("est.")
    seconds, _ = pc.few_shot_seconds(stats, "finetune", 16, rates, {})  # overall ratio
    assert seconds == pytest.approx(20 * (39 + 95 / 3))
    assert pc.few_shot_seconds(stats, "apt", 16, rates, {("cb", "apt", 16): 42.0}) == (42.0, "measured")


def test_few_shot_estimate_counts_dev_at_the_measured_share_of_epochs(tmp_path: Path):
    """Few-shot runs that score dev/test lazily: the share of their epochs with a dev score (an eval_every_epoch
    run and a run from before lazy scoring do not count), and the estimate with dev/test at that share."""
    root = tmp_path / "results"

    def few(run: str, scored: list[bool], **args) -> None:
        folder = root / "fewshot" / "rte-k16-apt" / run
        folder.mkdir(parents=True)
        epochs = [{"epoch": i + 1, "select": {}, **({"val": {}} if s else {})} for i, s in enumerate(scored)]
        doc = {"task": "rte", "method": "apt", "wall_s": 10.0, "epochs": epochs,
               "train_args": {"shots": 16, "shots_dev": True, **args}}
        (folder / "results.json").write_text(json.dumps(doc))

    few("apt-s11", [True, True, False, False], eval_every_epoch=False)  # 2 of 4
    few("apt-s12", [True, False, False, False, False], eval_every_epoch=False)  # 1 of 5
    few("apt-s13", [True, True, True])  # before lazy scoring (no key): every epoch, not counted
    few("apt-s14", [True, True], eval_every_epoch=True)
    runs = pc.read_runs(root)
    assert [r.official_scored for r in runs] == [pytest.approx(0.5), pytest.approx(0.2), None, None]
    share, counted = pc.measured_scored_share(runs)
    assert (share, counted) == (pytest.approx(0.35), 2)
    assert pc.measured_scored_share([]) == (1.0, 0)

    rates = pc.Rates({"apt": 0.01}, {"apt": ["cb"]}, 0.02, ["cb"])
    stats = pc.TaskStats("cb", 250, 50.0, 20, eval_examples=56, few_shot={16: [39, 39]})
    # 0.01 * 50 * 20 * (39 + (0.35 * 56 + 39) / 3) = 10 * (39 + 58.6 / 3)
    seconds, _ = pc.few_shot_seconds(stats, "apt", 16, rates, {}, scored_share=share)
    assert seconds == pytest.approx(10 * (39 + 58.6 / 3))
    assert "0.35 x (dev" in pc.fewshot_markdown({"cb": stats}, (share, counted))


def test_few_shot_sizes():
    records = ([PairExample(i, "a", "b", "x") for i in range(40)] + [PairExample(i, "a", "b", "y") for i in range(20)]
               + [PairExample(i, "a", "b", "z") for i in range(5)])
    # K=16: draw 16 + 16 + 5 = 37; selection takes K of what is left: 16 + 4 + 0 = 20
    assert pc.few_shot_sizes(records, 16) == (37, 20)
    ner = [TokenExample(i, ["w"], ["O"]) for i in range(20)]
    assert pc.few_shot_sizes(ner, 16) == (16, 4)


# ---------------------------------------------------------------- token counting


class WordTokenizer:
    """One token per whitespace-separated word plus [CLS] and [SEP] (and one more [SEP] for a pair), truncated."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, a: str, b: str | None = None, truncation: bool = False, max_length: int | None = None) -> dict:
        self.calls.append((a, b, truncation, max_length))
        ids = [0] + [1] * len(a.split()) + [2] + ([1] * len(b.split()) + [2] if b is not None else [])
        return {"input_ids": ids[:max_length] if truncation and max_length else ids}


def test_count_tokens_per_record_kind():
    tok = WordTokenizer()
    assert pc.count_tokens(PairExample(0, "a b c", "d e"), tok, 128) == 8  # 1 + 3 + 1 + 2 + 1
    assert pc.count_tokens(PairExample(1, "a b c", None), tok, 128) == 5
    choice = ChoiceExample(2, [("p q", "r"), ("p q", "s t u")], 0)
    assert pc.count_tokens(choice, tok, 128) == 6 + 8  # rows summed
    assert pc.count_tokens(TokenExample(3, ["John", "lives", "here"], ["B", "O", "O"]), tok, 128) == 5
    assert tok.calls[-1] == ("John lives here", None, True, 128)  # words joined with spaces
    assert pc.count_tokens(PairExample(4, "a b c d e f g h", "i j"), tok, 6) == 6  # truncated


def test_mean_tokens_and_sample():
    tok = WordTokenizer()
    records = [PairExample(i, " ".join(["w"] * i), None) for i in range(1, 5)]  # 3, 4, 5, 6 tokens
    assert pc.mean_tokens(records, tok, 128, sample=10) == pytest.approx(4.5)
    drawn = pc.sample_records(list(range(100)), 10, seed=0)
    assert len(drawn) == 10 and len(set(drawn)) == 10 and drawn == sorted(drawn)
    assert drawn == pc.sample_records(list(range(100)), 10, seed=0)  # seeded
    assert pc.mean_tokens(records, tok, 128, sample=2) == pytest.approx(
        sum(len(r.text_a.split()) + 2 for r in pc.sample_records(records, 2)) / 2)


def test_a_train_subset_costs_its_records_plus_the_scoring_of_whole_dev():
    full = pc.TaskStats("multirc", 27243, 128.0, 10, eval_examples=4848, few_shot={})
    cut = pc.TaskStats("multirc", 27243, 128.0, 10, eval_examples=4848, few_shot={}, subset=2000)
    assert full.token_epochs == pytest.approx(27243 * 128 * 10)
    assert cut.token_epochs == pytest.approx((2000 + 4848 / 3) * 128 * 10)  # dev scored every epoch, at 1/3
    assert pc.TaskStats("cb", 250, 78.0, 20, 56, {}, subset=1000).token_epochs == pytest.approx((250 + 56 / 3) * 78 * 20)
    assert pc.parse_args(["--train-subset", "multirc=2000"]).train_subset == {"multirc": 2000}
    # a dev subset: N records of each scored split (NER: dev and test), the rest of the formula unchanged
    dev_cut = pc.TaskStats("multirc", 27243, 128.0, 10, 4848, {}, subset=2000, eval_subset=1000, eval_splits=(4848,))
    assert dev_cut.token_epochs == pytest.approx((2000 + 1000 / 3) * 128 * 10)
    ner = pc.TaskStats("conll03", 14041, 20.0, 10, 3250 + 3453, {}, eval_subset=3300, eval_splits=(3250, 3453))
    assert ner.scored_examples == 3250 + 3300
    assert ner.token_epochs == pytest.approx((14041 + 6550 / 3) * 20 * 10)  # whole train file, dev/test cut
    assert pc.parse_args(["--eval-subset", "multirc=1000"]).eval_subset == {"multirc": 1000}
    with pytest.raises(SystemExit):
        pc.parse_args(["--train-subset", "multirc"])


def test_a_task_of_long_sequences_is_priced_by_its_pilot_runs():
    """A MultiRC pilot (side/, APT, 160 records trained + 96 scored, one epoch) took 2304 s; the cross-task fit
    (APT 0.01 s per token-epoch) predicts (160 + 96 / 3) x 300 tokens x 1 epoch x 0.01 = 576 s: factor 4, by hand.
    PT2 has no pilot: its fit (0.008) x the task's work (1e6 token-epochs) x 4 = 32000 s. A protocol run and a
    few-shot side run are no pilots; a task without pilots keeps the plain estimate."""
    stats = {"multirc": pc.TaskStats("multirc", 27243, 300.0, 10, 4848, {}),
             "rte": pc.TaskStats("rte", 2490, 66.7, 20, 277, {})}
    rates = pc.Rates({"apt": 0.01, "prefix": 0.008}, {"apt": ["cb"], "prefix": ["cb"]}, 0.009, ["cb"])
    pilot = pc.RunRecord("side", "multirc-cost", "multirc", "apt", 2304.0, None, False, None, 1, 160, 96)
    ignored = [pc.RunRecord("main", "multirc-apt-lr", "multirc", "apt", 9.0, None, False, None, 1, 160, 96),
               pc.RunRecord("side", "fewshot", "multirc", "apt", 9.0, 16, False, None, 1, 160, 96),
               pc.RunRecord("side", "cost", "rte", "apt", 9.0, None, False, None, None, 160, 96)]  # epochs unknown
    rates.pilot = pc.pilot_factors([pilot, *ignored], stats, rates)
    assert rates.pilot == {("multirc", "apt"): (pytest.approx(4.0), 1), ("multirc", "all"): (pytest.approx(4.0), 1)}
    work = {"multirc": 1e6, "rte": 1e5}
    seconds, how = pc.run_seconds("multirc", "prefix", {}, rates, work)
    assert (seconds, how) == (pytest.approx(32000.0), "pilot prefix")
    # an FT pilot at factor 2 (0.02 s per token-epoch, 57,600 token-epochs, 2304 s): FT is priced by its own
    # factor, PT2 by the mean of both (3)
    rates.per_method["finetune"] = 0.02
    ft_pilot = pc.RunRecord("side", "multirc-cost", "multirc", "finetune", 2304.0, None, False, None, 1, 160, 96)
    rates.pilot = pc.pilot_factors([pilot, ft_pilot], stats, rates)
    assert rates.pilot[("multirc", "finetune")][0] == pytest.approx(2.0)
    assert pc.run_seconds("multirc", "finetune", {}, rates, work)[0] == pytest.approx(2.0 * 0.02 * 1e6)
    assert pc.run_seconds("multirc", "prefix", {}, rates, work)[0] == pytest.approx(3.0 * 0.008 * 1e6)
    seconds, how = pc.run_seconds("rte", "apt", {}, rates, work)
    assert (seconds, how) == (pytest.approx(1000.0), "est. apt")
    assert pc.run_seconds("multirc", "apt", {("multirc", "apt"): (5.0, 3)}, rates, work) == (5.0, "measured")
