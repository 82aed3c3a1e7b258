"""Prefix sizes for the paper's P-tuning v2 variants (APT-SPEC section 3).

* PT2* (``--prefix-plan plan.json``): per-layer lengths from a gate probe's plan.
* PT2+ (``--match-params RUN_OR_ADAPTER_DIR``): the uniform length whose trainable parameter count (head
  excluded) is closest to that adapter's (or, for a run folder whose adapter was not kept, to the count its
  results.json recorded).

Usage::

    args = apply_prefix_variant(TrainArgs(task="rte", method="prefix", output="runs/pt2plus"),
                                match_params="runs/rte-apt")
    args.prefix_len, args.prefix_source     # e.g. 24, {"kind": "match_params", "target": ..., "achieved": ...}
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from ..adapter_io import read_adapter_config
from ..backbones.packaged import resolve_model
from ..config import PrefixConfig
from ..prefix import PrefixStack
from ..serving.predict import resolve_adapter_dir
from ..training import TrainArgs

MAX_MATCHED_LEN = 4096


def read_plan(path: str | Path) -> list[int]:
    """The per-layer lengths of a plan.json written by ``adaprefix probe``."""
    path = Path(path)
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such plan file (adaprefix probe writes one)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a JSON plan ({err})") from None
    lengths = plan.get("prefix_len") if isinstance(plan, dict) else None
    if not isinstance(lengths, list) or not lengths or not all(
        isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in lengths
    ):
        raise ValueError(f"{path}: 'prefix_len' should be a list of ints >= 0, one per layer; got {lengths!r}")
    if not any(lengths):
        raise ValueError(f"{path}: every layer's length is 0; there is no prefix to train")
    return lengths


def prefix_param_count(config: PrefixConfig, num_layers: int, hidden: int) -> int:
    """Trainable prefix parameters (tables, gates, any projection MLP) of ``config``, without building them."""
    with torch.device("meta"):
        stack = PrefixStack(config, num_layers, hidden, dropout=0.0)
    return sum(p.numel() for p in stack.parameters())


def adapter_param_count(run_or_adapter_dir: str | Path) -> int:
    """Trainable parameters of a saved adapter, head excluded, rebuilt from its config; for a run folder whose
    adapter was not kept (results committed without checkpoints), the count its results.json recorded."""
    try:
        directory = resolve_adapter_dir(run_or_adapter_dir)
    except FileNotFoundError:
        recorded = recorded_param_count(Path(run_or_adapter_dir))
        if recorded is None:
            raise
        return recorded
    meta = read_adapter_config(directory)
    config = PrefixConfig.from_dict({**meta["prefix_config"], "prefix_len": list(meta["prefix_lengths"])})
    if not config.uses_prefix:
        raise ValueError(f"{directory}: a fine-tuning adapter has no prefix to match")
    base = meta["base_model"]
    return prefix_param_count(config, base["num_layers"], base["hidden_size"])


def recorded_param_count(run_dir: Path) -> int | None:
    """``trainable_params_without_head`` of a run folder's results.json, or None where it has none."""
    results = run_dir / "results.json"
    if not results.is_file():
        return None
    try:
        doc = json.loads(results.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{results}: not a JSON results file ({err})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{results}: not a results object")
    count = doc.get("trainable_params_without_head")
    if doc.get("method") == "finetune":
        raise ValueError(f"{run_dir}: a fine-tuning run has no prefix to match")
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        raise ValueError(f"{results}: 'trainable_params_without_head' should be a positive int; got {count!r}")
    return count


def match_prefix_len(target: int, template: PrefixConfig, num_layers: int, hidden: int) -> tuple[int, int]:
    """(length, its parameter count) of the uniform length whose count is closest to ``target`` (the shorter
    on a tie). Counts grow with the length, so a bisection finds it."""
    def count(length: int) -> int:
        return prefix_param_count(dataclasses.replace(template, prefix_len=length), num_layers, hidden)

    lo, hi = 1, MAX_MATCHED_LEN
    while lo < hi:  # smallest length whose count reaches the target
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    candidates = [n for n in (lo - 1, lo) if n >= 1]
    best = min(candidates, key=lambda n: (abs(count(n) - target), n))
    return best, count(best)


def encoder_shape(model: str | None) -> tuple[int, int]:
    """(layers, hidden size) of an encoder, from its config only."""
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(resolve_model(model))
    return cfg.num_hidden_layers, cfg.hidden_size


def apply_prefix_variant(args: TrainArgs, prefix_plan: str | None = None, match_params: str | None = None) -> TrainArgs:
    """``args`` with prefix lengths set from a plan (PT2*) or by parameter matching (PT2+), and the source
    recorded for results.json. Neither: ``args`` unchanged."""
    if not prefix_plan and not match_params:
        return args
    if prefix_plan and match_params:
        raise ValueError("--prefix-plan and --match-params each set the prefix length; give one")
    if args.prefix_len is not None:
        raise ValueError("--prefix-len contradicts --prefix-plan / --match-params, which set the length")
    if args.method == "finetune":
        raise ValueError("--prefix-plan / --match-params size a prefix; --method finetune has none")
    if prefix_plan:
        lengths = read_plan(prefix_plan)
        return dataclasses.replace(args, prefix_len=lengths,
                                   prefix_source={"kind": "plan", "plan": str(prefix_plan), "prefix_len": lengths})
    target = adapter_param_count(match_params)
    num_layers, hidden = encoder_shape(args.model)
    template = dataclasses.replace(args, prefix_len=1).prefix_config()
    length, achieved = match_prefix_len(target, template, num_layers, hidden)
    return dataclasses.replace(args, prefix_len=length, prefix_source={
        "kind": "match_params", "source": str(match_params), "target_params": target, "achieved_params": achieved})
