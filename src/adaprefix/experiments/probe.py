"""Gate probing (APT-SPEC section 3): which layers want prefix, and the per-layer lengths that follow (PT2*).

For each layer i with prefix length l_i, over the examples of a split:

* ``alpha_mean`` / ``alpha_std``: per slot, the mean and spread over examples of the token gate a_i
  (1 without a token gate; for multiple choice an example's value is the mean over its choice rows);
* ``lambda``: the layer gate (None without one);
* ``weight`` w_i = |lambda_i| x mean over examples and slots of a_i (lambda = 1 without a layer gate).

The plan: l'_i = round(L x w_i / max_j w_j), at least 1 where w_i > 0, 0 where w_i = 0 (L = the budget).

Usage::

    result = probe(model, features, collator)          # a TaskModel and encoded features of one split
    result["layers"][3]["weight"]
    plan = make_plan(result, budget=16)                 # {"prefix_len": [...], "budget": 16, "weights": [...]}
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..model import TaskModel
from ..tasks.encode import Collator, Feature, LengthGroupedBatches
from ..training import model_device, to_device


@torch.no_grad()
def probe(model: TaskModel, features: list[Feature], collator: Collator | None = None, batch_size: int = 64,
          task: str | None = None, split: str | None = None, progress: bool = False) -> dict:
    """Gate statistics of ``model`` (run in eval mode) over ``features``: the ``gates.json`` structure."""
    if collator is None:
        collator = Collator(0)
    encoder = model.encoder
    lengths = encoder.lengths
    sums = [torch.zeros(n, dtype=torch.float64) for n in lengths]
    squares = [torch.zeros(n, dtype=torch.float64) for n in lengths]
    count = 0
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        batches = LengthGroupedBatches([f.length for f in features], batch_size, shuffle=False)
        for batch_idx in tqdm(list(batches), desc="probe", leave=False, disable=not progress):
            batch = collator([features[i] for i in batch_idx])
            batch = to_device({k: v for k, v in batch.items() if k != "index"}, device)
            model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
            examples = batch["input_ids"].shape[0]
            rows_per_example = batch["input_ids"].shape[1] if batch["input_ids"].ndim == 3 else 1
            for i, gate in enumerate(encoder.last_gates):
                if gate is None:
                    continue
                # choice rows -> one value per example; NER and pairs: one row is one example
                alpha = gate.token.double().cpu().view(examples, rows_per_example, -1).mean(1)
                sums[i] += alpha.sum(0)
                squares[i] += (alpha * alpha).sum(0)
            count += examples
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("probe: no examples to run")
    layers = []
    for i, length in enumerate(lengths):
        prefix_layer = encoder.prefix.layers[i] if encoder.prefix is not None else None
        if length == 0 or prefix_layer is None:
            layers.append({"layer": i, "length": 0, "lambda": None, "alpha_mean": [], "alpha_std": [], "weight": 0.0})
            continue
        mean = sums[i] / count
        std = (squares[i] / count - mean * mean).clamp_min(0).sqrt()
        lam = float(prefix_layer.layer_gate) if prefix_layer.layer_gate is not None else None
        weight = abs(lam if lam is not None else 1.0) * float(mean.mean())
        layers.append({"layer": i, "length": length, "lambda": lam, "alpha_mean": mean.tolist(),
                       "alpha_std": std.tolist(), "weight": weight})
    return {"task": task, "split": split, "examples": count, "layers": layers}


def make_plan(result: dict, budget: int | None = None, source: dict | None = None) -> dict:
    """Per-layer lengths from a probe result: l'_i = round(L x w_i / max w), >= 1 where w_i > 0, 0 where w_i = 0.

    ``budget`` L defaults to the probed adapter's largest prefix length.
    """
    weights = [float(layer["weight"]) for layer in result["layers"]]
    if budget is None:
        budget = max(layer["length"] for layer in result["layers"])
    if not isinstance(budget, int) or budget < 1:
        raise ValueError(f"--budget must be a positive int, got {budget!r}")
    top = max(weights, default=0.0)
    if top <= 0:
        raise ValueError("probe: every layer's weight is 0 (no prefix, or all gates closed); no plan can follow")
    lengths = [0 if w <= 0 else max(1, math.floor(budget * w / top + 0.5)) for w in weights]
    return {"prefix_len": lengths, "budget": budget, "weights": weights, "source": source or {}}


def plot_gates(result: dict, path: str | Path) -> Path:
    """Heatmap of |lambda| x alpha_mean, layers x prefix slots (blank where a layer has fewer slots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers = result["layers"]
    width = max((layer["length"] for layer in layers), default=0)
    grid = np.full((len(layers), max(width, 1)), np.nan)
    for layer in layers:
        lam = abs(layer["lambda"]) if layer["lambda"] is not None else 1.0
        for slot, alpha in enumerate(layer["alpha_mean"]):
            grid[layer["layer"], slot] = lam * alpha
    fig, ax = plt.subplots(figsize=(max(4.5, 0.35 * width + 2.5), 0.45 * len(layers) + 1.8))
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap="viridis", origin="lower")
    fig.colorbar(image, ax=ax, label="|λ| × mean α (gate weight)")
    ax.set_xlabel("prefix slot")
    ax.set_ylabel("layer")
    ax.set_yticks(range(len(layers)))
    ax.set_title(f"APT gates: {result.get('task') or 'adapter'} ({result.get('split') or '?'}, "
                 f"{result['examples']} examples)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_weights(result: dict, path: str | Path, plan: dict | None = None) -> Path:
    """Bar chart of the layer weights w_i, with the planned lengths written on the bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = result["layers"]
    weights = [layer["weight"] for layer in layers]
    fig, ax = plt.subplots(figsize=(max(4.5, 0.5 * len(layers) + 2), 3.2))
    bars = ax.bar([layer["layer"] for layer in layers], weights, color="#3b75af")
    if plan is not None:
        for bar, length in zip(bars, plan["prefix_len"]):
            ax.annotate(f"l={length}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("layer")
    ax.set_ylabel("weight w = |λ| × mean α")
    ax.set_xticks([layer["layer"] for layer in layers])
    ax.set_title(f"Layer weights: {result.get('task') or 'adapter'} ({result.get('split') or '?'})")
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def probe_adapter(path: str | Path, split: str = "train", data_dir: str | None = None, task_name: str | None = None,
                  budget: int | None = None, output: str | Path | None = None, batch_size: int = 64,
                  limit: int | None = None, progress: bool = True) -> tuple[dict, dict, Path]:
    """The ``adaprefix probe`` command: probe a saved adapter on a split, write gates.json, plan.json and the
    two pictures into ``output`` (default: RUN_OR_ADAPTER_DIR/probe). Returns (gates, plan, output)."""
    import json

    from ..fileio import atomic_write
    from ..serving.predict import load_for_serving, resolve_adapter_dir
    from ..tasks.encode import encode

    task, tokenizer, model, max_length, extra = load_for_serving(path, task_name, None)
    if model.encoder.prefix is None:
        raise ValueError(f"{path}: a fine-tuning adapter has no gates to probe")
    data_dir = data_dir or extra.get("train_args", {}).get("data_dir")
    examples = task.load(split, data_dir)
    if limit:
        examples = examples[:limit]
    features = encode(examples, tokenizer, task.label_names, max_length)
    result = probe(model, features, Collator(tokenizer.pad_token_id), batch_size, task.name, split, progress)
    adapter_dir = resolve_adapter_dir(path)
    plan = make_plan(result, budget, source={"adapter": str(adapter_dir), "task": task.name, "split": split,
                                              "examples": result["examples"]})
    out = Path(output) if output else Path(path) / "probe"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "gates.json", lambda p: p.write_text(json.dumps(result, indent=1) + "\n"))
    atomic_write(out / "plan.json", lambda p: p.write_text(json.dumps(plan, indent=1) + "\n"))
    plot_gates(result, out / "gates.png")
    plot_weights(result, out / "weights.png", plan)
    return result, plan, out
