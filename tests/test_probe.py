"""Gate probing, the plan recipe, PT2* / PT2+ sizing (issue: the paper's analysis as product features)."""

from __future__ import annotations

import json

import pytest
import torch

from adaprefix import PrefixConfig, TaskModel, attach, make_plan, probe
from adaprefix.experiments.variants import (adapter_param_count, apply_prefix_variant, match_prefix_len,
                                            prefix_param_count)
from adaprefix.tasks.encode import Collator, Feature
from adaprefix.training import TrainArgs
from conftest import SHARED_DATA, padded_batch, randomize_adapter, tiny_encoder


def features_of(ids, mask, types) -> list[Feature]:
    out = []
    for i in range(ids.shape[0]):
        n = int(mask[i].sum())
        out.append(Feature(i, ids[i, :n].tolist(), types[i, :n].tolist(), 0))
    return out


def test_probe_numbers_against_an_independent_computation():
    lengths = [3, 0, 2]
    encoder = tiny_encoder()
    ids, mask, types = padded_batch(lengths=(9, 6, 3, 7))
    with torch.no_grad():
        hf = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    model = TaskModel(attach(encoder, PrefixConfig(method="apt", prefix_len=lengths)), "classification",
                      label_names=["a", "b"])
    randomize_adapter(model)
    with torch.no_grad():
        model.encoder.prefix.layers[2].layer_gate.fill_(-0.7)  # a negative layer gate: the weight uses |lambda|
    result = probe(model, features_of(ids, mask, types), Collator(0), batch_size=3)
    assert result["examples"] == 4 and [x["length"] for x in result["layers"]] == lengths

    # layer 0 reads the embedding output, which HF computes on its own: alpha = sigmoid(W mean(h_0) + b)
    gate0 = model.encoder.prefix.layers[0]
    m = mask.float().unsqueeze(-1)
    pooled = (hf.hidden_states[0] * m).sum(1) / m.sum(1)
    with torch.no_grad():
        alpha0 = torch.sigmoid(pooled @ gate0.token_gate.weight.T + gate0.token_gate.bias).double()
    layer0 = result["layers"][0]
    assert layer0["alpha_mean"] == pytest.approx(alpha0.mean(0).tolist(), abs=1e-6)
    assert layer0["alpha_std"] == pytest.approx(alpha0.std(0, unbiased=False).tolist(), abs=1e-6)
    lam0 = float(gate0.layer_gate.detach())
    assert layer0["lambda"] == pytest.approx(lam0)
    assert layer0["weight"] == pytest.approx(abs(lam0) * float(alpha0.mean()), abs=1e-6)

    # layer 1 has no prefix
    assert result["layers"][1] == {"layer": 1, "length": 0, "lambda": None, "alpha_mean": [], "alpha_std": [],
                                   "weight": 0.0}
    # layer 2: each example run alone (no batching, no padding), then aggregated here
    model.eval()
    alphas = []
    with torch.no_grad():
        for i in range(4):
            n = int(mask[i].sum())
            model(ids[i:i + 1, :n], mask[i:i + 1, :n], types[i:i + 1, :n])
            alphas.append(model.encoder.last_gates[2].token[0].double())
    alpha2 = torch.stack(alphas)
    layer2 = result["layers"][2]
    assert layer2["lambda"] == pytest.approx(-0.7)
    assert layer2["alpha_mean"] == pytest.approx(alpha2.mean(0).tolist(), abs=1e-6)
    assert layer2["weight"] == pytest.approx(0.7 * float(alpha2.mean()), abs=1e-6)


def test_probe_counts_examples_not_choice_rows_and_ptuning_v2_gates_are_one():
    ids, mask, types = padded_batch(lengths=(5, 4, 6, 3))
    choice_features = [Feature(e, [ids[2 * e + r, : int(mask[2 * e + r].sum())].tolist() for r in range(2)],
                               [types[2 * e + r, : int(mask[2 * e + r].sum())].tolist() for r in range(2)], 0)
                       for e in range(2)]
    apt = TaskModel(attach(tiny_encoder(), PrefixConfig(method="apt", prefix_len=2)), "multiple_choice")
    randomize_adapter(apt)
    result = probe(apt, choice_features, Collator(0))
    assert result["examples"] == 2
    # an example's alpha is the mean over its two rows; the probe's mean is then over the two examples
    apt.eval()
    with torch.no_grad():
        rows = []
        for r in range(4):
            n = int(mask[r].sum())
            apt.encoder(ids[r:r + 1, :n], mask[r:r + 1, :n], types[r:r + 1, :n])
            rows.append(apt.encoder.last_gates[1].token[0].double())
    per_example = torch.stack([(rows[0] + rows[1]) / 2, (rows[2] + rows[3]) / 2])
    assert result["layers"][1]["alpha_mean"] == pytest.approx(per_example.mean(0).tolist(), abs=1e-6)
    assert result["layers"][1]["alpha_std"] == pytest.approx(per_example.std(0, unbiased=False).tolist(), abs=1e-6)

    pt2 = TaskModel(attach(tiny_encoder(), PrefixConfig(method="prefix", prefix_len=[2, 0, 1])), "classification",
                    label_names=["a", "b"])
    result = probe(pt2, features_of(*padded_batch()), Collator(0))
    assert [x["lambda"] for x in result["layers"]] == [None, None, None]
    assert [x["weight"] for x in result["layers"]] == [1.0, 0.0, 1.0]
    assert result["layers"][0]["alpha_mean"] == [1.0, 1.0] and result["layers"][0]["alpha_std"] == [0.0, 0.0]


@pytest.mark.parametrize("weights, budget, expected", [
    ([0.0, 0.2, 1.0, 0.01], 16, [0, 3, 16, 1]),   # 0 stays 0; 0.16 rounds to 0 but a gated layer keeps 1
    ([0.5, 0.25, 1.0], 3, [2, 1, 3]),             # 1.5 rounds half up to 2; 0.75 -> 1
    ([2.0, 2.0], 8, [8, 8]),                      # ties: both at the budget
    ([1e-9, 1.0], 4, [1, 4]),                     # tiny but positive
])
def test_plan_recipe(weights, budget, expected):
    result = {"layers": [{"layer": i, "length": 16, "weight": w} for i, w in enumerate(weights)]}
    plan = make_plan(result, budget)
    assert plan["prefix_len"] == expected and plan["budget"] == budget and plan["weights"] == weights


def test_plan_edge_cases():
    result = {"layers": [{"layer": 0, "length": 4, "weight": 0.3}, {"layer": 1, "length": 8, "weight": 0.6}]}
    assert make_plan(result)["prefix_len"] == [4, 8]  # default budget: the adapter's largest length
    with pytest.raises(ValueError, match="every layer's weight is 0"):
        make_plan({"layers": [{"layer": 0, "length": 4, "weight": 0.0}]}, 4)
    with pytest.raises(ValueError, match="budget must be a positive int"):
        make_plan(result, 0)


def test_parameter_matching_counts_agree_with_a_built_model():
    apt = PrefixConfig(method="apt", prefix_len=16)
    n_apt = prefix_param_count(apt, 6, 384)
    assert n_apt == 3 * 6 * 384 * 16 + 6 * 16 + 6  # APT-SPEC: 3 L d l + L l + L
    length, achieved = match_prefix_len(n_apt, PrefixConfig(method="prefix", prefix_len=1), 6, 384)
    assert length == 24 and achieved == 2 * 6 * 384 * 24  # PT2+ for l = 16: 1.5 x 16
    built = attach(tiny_encoder(), PrefixConfig(method="prefix", prefix_len=5, prefix_projection=True))
    counted = prefix_param_count(PrefixConfig(method="prefix", prefix_len=5, prefix_projection=True), 3, 32)
    assert counted == sum(p.numel() for p in built.adapter_parameters())


def test_match_params_reads_a_run_folder_without_its_adapter(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(FileNotFoundError, match="neither an adapter directory"):
        adapter_param_count(run)  # neither an adapter nor results
    (run / "results.json").write_text(json.dumps({"method": "apt", "trainable_params_without_head": 110694}))
    assert adapter_param_count(run) == 110694
    (run / "results.json").write_text(json.dumps({"method": "finetune", "trainable_params_without_head": 22713216}))
    with pytest.raises(ValueError, match="fine-tuning run has no prefix"):
        adapter_param_count(run)
    (run / "results.json").write_text(json.dumps({"method": "apt", "trainable_params_without_head": "many"}))
    with pytest.raises(ValueError, match="should be a positive int"):
        adapter_param_count(run)
    (run / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a JSON results file"):
        adapter_param_count(run)


needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")


@needs_data
def test_probe_then_pt2_star_and_pt2_plus_through_the_cli(tmp_path, capsys):
    from adaprefix.cli import main

    quick = ["--data-dir", str(SHARED_DATA), "--limit-train", "16", "--limit-eval", "8", "--batch-size", "8",
             "--no-progress", "--max-length", "48", "--epochs", "1"]
    apt = tmp_path / "apt"
    assert main(["train", "--task", "cb", "--method", "apt", "--prefix-len", "4", "--output", str(apt), *quick]) == 0
    assert main(["probe", str(apt), "--limit", "10", "--budget", "6", "--no-progress"]) == 0
    gates = json.loads((apt / "probe" / "gates.json").read_text())
    plan = json.loads((apt / "probe" / "plan.json").read_text())
    assert gates["task"] == "cb" and gates["split"] == "train" and gates["examples"] == 10
    assert len(gates["layers"]) == 6 and max(plan["prefix_len"]) == 6 and plan["source"]["task"] == "cb"
    for picture in ("gates.png", "weights.png"):
        assert (apt / "probe" / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    star = tmp_path / "pt2star"
    assert main(["train", "--task", "cb", "--method", "prefix", "--prefix-plan", str(apt / "probe" / "plan.json"),
                 "--output", str(star), *quick]) == 0
    results = json.loads((star / "results.json").read_text())
    assert results["prefix_lengths"] == plan["prefix_len"] and results["prefix_source"]["kind"] == "plan"
    assert results["trainable_params_without_head"] == 2 * 384 * sum(plan["prefix_len"])

    plus = tmp_path / "pt2plus"
    assert main(["train", "--task", "cb", "--method", "prefix", "--match-params", str(apt),
                 "--output", str(plus), *quick]) == 0
    results = json.loads((plus / "results.json").read_text())
    source = results["prefix_source"]
    apt_params = json.loads((apt / "results.json").read_text())["trainable_params_without_head"]
    assert source["target_params"] == apt_params
    assert source["achieved_params"] == results["trainable_params_without_head"] == 2 * 6 * 384 * 6
    # a run folder whose adapter was not kept (committed results only) sizes PT2+ the same way
    kept = tmp_path / "apt-results-only"
    kept.mkdir()
    (kept / "results.json").write_bytes((apt / "results.json").read_bytes())
    again = apply_prefix_variant(TrainArgs(task="cb", method="prefix", output=str(tmp_path / "y")), match_params=kept)
    assert again.prefix_len == results["prefix_lengths"][0] == 6 and again.prefix_source["target_params"] == apt_params
    capsys.readouterr()
    assert main(["train", "--task", "cb", "--method", "prefix", "--prefix-len", "4", "--match-params", str(apt),
                 "--output", str(tmp_path / "x"), *quick]) == 2
    assert "contradicts" in capsys.readouterr().err


@needs_data
def test_few_shot_selection_split_is_disjoint_and_chooses_the_epoch(tmp_path):
    from adaprefix.cli import main
    from adaprefix.tasks import get_task

    run = tmp_path / "fs"
    assert main(["train", "--task", "cb", "--shots", "4", "--shots-dev", "--data-dir", str(SHARED_DATA),
                 "--limit-eval", "8", "--batch-size", "8", "--no-progress", "--max-length", "48", "--epochs", "3",
                 "--output", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    train_drawn, select_drawn = set(results["few_shot_drawn"]), set(results["few_shot_select_drawn"])
    assert len(train_drawn) == 12 and len(select_drawn) == 12 and not train_drawn & select_drawn
    labels = [get_task("cb").load("train", SHARED_DATA)[i].label for i in sorted(select_drawn)]
    assert sorted(labels.count(x) for x in set(labels)) == [4, 4, 4]  # K per class
    epochs = results["epochs"]
    chosen = max(range(len(epochs)), key=lambda i: (epochs[i]["select"]["accuracy"], -i))
    assert results["best_epoch"] == chosen + 1  # chosen on the selection split, the first of ties
    assert results["best"]["val"] == epochs[chosen]["val"] and results["selected_on"].startswith("select")
