"""benchmarks/paired.py: the hierarchical paired bootstrap over seeds and dev examples, on synthetic runs whose
answer is known (identical predictions; B right on a known extra share of examples, analytic variances), its
per-example counts against the tasks' own scorers, and the seed-only bootstrap's command line."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binom

from adaprefix.tasks import get_task
from adaprefix.training import prediction_records, prediction_task

from conftest import load_benchmark

paired = load_benchmark("paired")


def write_run(folder: Path, task_name: str, seed: int, entries: list[dict], doc_extra: dict | None = None) -> None:
    """A run folder as training leaves it: results.json (best val scores) and val-predictions.json."""
    doc = {"task": task_name, "epoch": 2, "split": "val", **(doc_extra or {})}
    task = prediction_task(doc)
    scores = task.score(*prediction_records(task, entries))
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "task": task_name, "seed": seed, "best_epoch": 2, "best": {"val": scores},
        "selection_metric": f"val.{task.main_metric}", "val_predictions": "val-predictions.json"}))
    (folder / "val-predictions.json").write_text(json.dumps({**doc, "scores": scores, "examples": entries}))


def rte_entries(gold: list[str], right: int) -> list[dict]:
    """Predictions right on the first ``right`` examples, wrong on the others."""
    flip = {"entailment": "not_entailment", "not_entailment": "entailment"}
    return [{"id": i, "gold": g, "pred": g if i < right else flip[g]} for i, g in enumerate(gold)]


def rte_gold(n: int = 200) -> list[str]:
    rng = np.random.default_rng(5)
    return [["entailment", "not_entailment"][k] for k in rng.integers(0, 2, n)]


def runs(pattern: Path) -> dict:
    return paired.results_files(str(pattern))


# ---------------------------------------------------------------- known answers


@pytest.mark.parametrize("nested", [False, True])
def test_identical_predictions_give_exactly_zero(tmp_path, nested):
    rng = np.random.default_rng(1)
    labels = ["entailment", "contradiction", "neutral"]
    gold = [labels[k] for k in rng.integers(0, 3, 56)]
    for seed in (11, 12, 13):
        picks = rng.integers(0, 3, 56)
        entries = [{"id": i, "gold": g, "pred": labels[k]} for i, (g, k) in enumerate(zip(gold, picks))]
        for side in ("a", "b"):
            write_run(tmp_path / side / f"s{seed}", "cb", seed, entries)
    c = paired.compare_examples(runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*"), resamples=2000, nested=nested)
    assert c.seeds == [11, 12, 13] and len(set(c.a)) > 1  # the seeds differ, the sides do not
    assert c.mean_diff == 0.0 and c.low == 0.0 and c.high == 0.0 and not c.replicates.any()


def test_b_right_on_a_known_extra_share(tmp_path):
    """B is right on 20 more of 200 examples than A in every seed: A - B = -0.1, and each replicate is minus
    the share of those 20 in a with-replacement draw of 200: Binomial(200, 0.1) / 200."""
    gold = rte_gold()
    for seed in (11, 12, 13):
        write_run(tmp_path / "a" / f"s{seed}", "rte", seed, rte_entries(gold, 150))
        write_run(tmp_path / "b" / f"s{seed}", "rte", seed, rte_entries(gold, 170))
    c = paired.compare_examples(runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*"), resamples=10000)
    assert c.a == [0.75] * 3 and c.b == [0.85] * 3 and c.mean_diff == pytest.approx(-0.1, abs=1e-12)
    reps = c.replicates
    assert np.allclose(reps * 200, np.round(reps * 200)) and reps.max() <= 0  # B is never worse
    assert reps.mean() == pytest.approx(-0.1, abs=0.002)  # 10 standard errors
    assert reps.std() == pytest.approx(np.sqrt(0.1 * 0.9 / 200), rel=0.05)
    assert c.low == pytest.approx(-binom.ppf(0.975, 200, 0.1) / 200, abs=1 / 200 + 1e-12)
    assert c.high == pytest.approx(-binom.ppf(0.025, 200, 0.1) / 200, abs=1 / 200 + 1e-12)


def analytic_sd(extra: list[int], n: int, nested: bool) -> float:
    """Sd of A - B when A is right on the first 100 of n examples and B, in seed s, on the first 100 + extra[s];
    seeds and examples drawn with replacement. X_k (draws among B's k extra examples) ~ Binomial(n, k/n); X_a, X_b
    of one draw: Cov = n p_min (1 - p_max). The replicate is -sum_j X_{K_j} / (seeds n), K_j uniform on extra."""
    m = len(extra)
    p = np.asarray(extra) / n
    ks = np.asarray(extra, dtype=float)
    between = m * ks.var()  # Var(E[S | K])
    same = np.mean(n * p * (1 - p))  # E[Var(X_K)]
    cross = np.mean([n * min(a, b) * (1 - max(a, b)) for a, b in itertools.product(p, p)])  # E[Cov], K1, K2 independent
    within = m * same + (0 if nested else m * (m - 1) * cross)
    return float(np.sqrt(between + within) / (m * n))


@pytest.mark.parametrize("nested", [False, True])
def test_seed_and_example_variance_match_the_analytic_answer(tmp_path, nested):
    gold, extra = rte_gold(), [10, 20, 30]
    for seed, k in zip((11, 12, 13), extra):
        write_run(tmp_path / "a" / f"s{seed}", "rte", seed, rte_entries(gold, 100))
        write_run(tmp_path / "b" / f"s{seed}", "rte", seed, rte_entries(gold, 100 + k))
    c = paired.compare_examples(runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*"), resamples=10000, nested=nested)
    assert c.mean_diff == pytest.approx(-0.1, abs=1e-12)
    assert c.replicates.mean() == pytest.approx(-0.1, abs=0.002)
    assert c.replicates.std() == pytest.approx(analytic_sd(extra, 200, nested), rel=0.04)
    assert c.low < -0.1 < c.high


def test_crossed_interval_is_wider_than_nested(tmp_path):
    gold = rte_gold()
    for seed, k in zip((11, 12, 13, 14), (10, 20, 30, 40)):
        write_run(tmp_path / "a" / f"s{seed}", "rte", seed, rte_entries(gold, 100))
        write_run(tmp_path / "b" / f"s{seed}", "rte", seed, rte_entries(gold, 100 + k))
    a, b = runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*")
    crossed, nested = (paired.compare_examples(a, b, resamples=4000, nested=x) for x in (False, True))
    assert crossed.high - crossed.low > nested.high - nested.low


# ---------------------------------------------------------------- counts against the tasks' scorers


def random_ner(rng, labels: list[str], n: int) -> list[tuple[list[str], list[str]]]:
    """Tag sequences with entities, mistakes and ill-formed spans (I- or E- first) for the scorers' rules."""
    weights = np.where(np.asarray(labels) == "O", 6.0, 1.0)
    weights /= weights.sum()
    out = []
    for _ in range(n):
        length = int(rng.integers(1, 12))
        gold = list(rng.choice(labels, length, p=weights))
        pred = [t if rng.random() < 0.7 else str(rng.choice(labels, p=weights)) for t in gold]
        out.append((gold, pred))
    return out


def synthetic(task_name: str, rng) -> tuple[dict, list[dict]]:
    """(predictions document header, entries) of a task kind, with predictions partly right."""
    if task_name == "conll04":
        labels = list(get_task("conll04").labels)
        pairs = random_ner(rng, labels, 80)
        return {"task": "conll04"}, [{"id": i, "gold": g, "pred": p} for i, (g, p) in enumerate(pairs)]
    if task_name == "iobes":
        from adaprefix.tasks.custom import CustomTaskSpec

        labels = ["O"] + [f"{s}-{t}" for t in ("PER", "LOC") for s in "BIES"]
        spec = CustomTaskSpec("token-classification", train_file="t.conll", validation_file="d.conll",
                              tag_scheme="IOBES")
        doc = {"task": "token-classification", "custom_task": spec.to_dict(), "labels": labels}
        return doc, [{"id": i, "gold": g, "pred": p} for i, (g, p) in enumerate(random_ner(rng, labels, 80))]
    if task_name == "multirc":
        entries = []
        for q in range(30):
            for a in range(int(rng.integers(2, 6))):
                g = str(bool(rng.random() < 0.4))
                entries.append({"id": {"question": q, "answer": a}, "gold": g,
                                "pred": g if rng.random() < 0.75 else str(g != "True"), "group": f"0-{q}"})
        return {"task": "multirc"}, entries
    if task_name == "copa":
        return {"task": "copa"}, [{"id": i, "gold": int(g), "pred": int(g) if rng.random() < 0.6 else 1 - int(g)}
                                  for i, g in enumerate(rng.integers(0, 2, 60))]
    labels = list(get_task(task_name).labels)
    return {"task": task_name}, [{"id": i, "gold": str(g), "pred": str(rng.choice(labels))}
                                 for i, g in enumerate(rng.choice(labels, 70))]


@pytest.mark.parametrize("task_name, metrics", [
    ("cb", ["accuracy", "macro_f1"]), ("rte", ["accuracy"]), ("copa", ["accuracy"]), ("multirc", ["f1a", "em"]),
    ("conll04", ["f1", "precision", "recall"]), ("iobes", ["f1", "precision", "recall"]),
])
def test_counts_give_the_task_scorers_value_on_every_resample(task_name, metrics):
    rng = np.random.default_rng(3)
    doc, entries = synthetic(task_name, rng)
    task = prediction_task(doc)
    records, preds = prediction_records(task, entries)
    run = paired.RunPredictions(11, [e["id"] for e in entries], records, preds)
    units = paired.resampling_units(records)
    assert len(units) == (30 if task_name == "multirc" else len(entries))  # MultiRC: whole questions
    draws = paired.draw_counts(rng, 60, len(units))
    for metric in metrics:
        fast = paired.fast_scorer(task, metric, run, units)
        exact = paired.exact_scorer(task, metric, run, units)
        values = exact(draws)
        assert len(set(np.round(values, 9))) > 5  # the resamples do differ
        np.testing.assert_allclose(fast(draws), values, rtol=1e-12, atol=1e-12)


def test_a_question_drawn_twice_counts_twice_for_em():
    doc = {"task": "multirc"}
    entries = [{"id": 0, "gold": "True", "pred": "True", "group": "q1"},
               {"id": 1, "gold": "False", "pred": "False", "group": "q1"},
               {"id": 2, "gold": "True", "pred": "False", "group": "q2"}]
    task = prediction_task(doc)
    run = paired.RunPredictions(11, [0, 1, 2], *prediction_records(task, entries))
    units = paired.resampling_units(run.records)
    draws = np.asarray([[2, 0], [1, 1], [0, 2], [1, 3]])
    expected = [1.0, 0.5, 0.0, 0.25]
    np.testing.assert_allclose(paired.exact_scorer(task, "em", run, units)(draws), expected)
    np.testing.assert_allclose(paired.fast_scorer(task, "em", run, units)(draws), expected)


def test_exact_and_counts_give_the_same_replicates(tmp_path):
    rng = np.random.default_rng(9)
    _, base = synthetic("multirc", rng)
    for seed in (11, 12, 13):
        for side, right in (("a", 0.7), ("b", 0.8)):
            entries = [dict(e, pred=e["gold"] if rng.random() < right else str(e["gold"] != "True")) for e in base]
            write_run(tmp_path / side / f"s{seed}", "multirc", seed, entries)
    a, b = runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*")
    for nested in (False, True):
        fast = paired.compare_examples(a, b, resamples=300, nested=nested)
        exact = paired.compare_examples(a, b, resamples=300, nested=nested, exact=True)
        assert exact.exact and not fast.exact and fast.units == 30
        np.testing.assert_allclose(fast.replicates, exact.replicates, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- checks and the command line


def test_refuses_predictions_of_another_epoch_or_score(tmp_path):
    gold = rte_gold(40)
    write_run(tmp_path / "a" / "s11", "rte", 11, rte_entries(gold, 30))
    write_run(tmp_path / "b" / "s11", "rte", 11, rte_entries(gold, 20))
    a, b = runs(tmp_path / "a" / "*"), runs(tmp_path / "b" / "*")
    path = tmp_path / "b" / "s11" / "val-predictions.json"
    good = path.read_text()
    path.write_text(good.replace('"epoch": 2', '"epoch": 1'))
    with pytest.raises(SystemExit, match="epoch 1, but the best epoch is 2"):
        paired.compare_examples(a, b, resamples=10)
    doc = json.loads(good)
    first = doc["examples"][0]
    first["pred"] = {"entailment": "not_entailment", "not_entailment": "entailment"}[first["pred"]]
    path.write_text(json.dumps(doc))  # one prediction changed: the file no longer gives the recorded score
    with pytest.raises(SystemExit, match="accuracy from the file is"):
        paired.compare_examples(a, b, resamples=10)


def test_command_line_prints_both_bootstraps(tmp_path, capsys):
    gold = rte_gold()
    for seed in (11, 12, 13):  # A's seed 11 in another folder than its others, as in paper.py's main phase
        write_run(tmp_path / ("a1" if seed == 11 else "a2") / f"s{seed}", "rte", seed, rte_entries(gold, 150))
        write_run(tmp_path / "b" / f"s{seed}", "rte", seed, rte_entries(gold, 170))
    paired.main([f"{tmp_path}/a1/*,{tmp_path}/a2/*", f"{tmp_path}/b/*", "--examples", "--resamples", "2000"])
    out = capsys.readouterr().out
    assert "seeds [11, 12, 13]" in out
    assert "A - B: mean -0.1000, sd 0.0000, bootstrap 95% over seeds [-0.1000, -0.1000] (n = 3)" in out
    line = next(x for x in out.splitlines() if "dev units" in x)
    assert line.startswith("A - B: mean -0.1000, bootstrap 95% over seeds and 200 dev units (crossed) [")
    with pytest.raises(SystemExit, match="seed 11 matches"):
        paired.results_files(f"{tmp_path}/a1/*,{tmp_path}/b/*")
