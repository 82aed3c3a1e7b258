"""Step time, peak memory and tokens/s of FT / P-tuning v2 / APT / PEFT prefix tuning on a GPU, with no weights
to download: randomly initialised BERT-base and BERT-large shapes, batch 32 x 128 and 32 x 512, bf16 autocast.

    python benchmarks/gpu_bench.py --json results/gpu/h200.json            # on a GPU machine, < 10 minutes
    python benchmarks/gpu_bench.py --smoke                                 # tiny shapes on the CPU: a dry run

Variants are interleaved step by step within each shape (noise hits all alike); peak memory is
torch.cuda.max_memory_allocated over each variant's own steps (reset before them), above what its model and
batch hold before the first step.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_time import build_step  # noqa: E402

SHAPES = {"bert-base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
          "bert-large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
          "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)}
VARIANTS = ("finetune-bf16", "prefix-bf16", "apt-bf16", "peft-prefix-bf16")


def measure(shape: str, batch: int, seq: int, steps: int, warmup: int, device: str, prefix_len: int) -> dict:
    import torch
    from transformers import AutoModel, BertConfig

    torch.manual_seed(0)
    base = AutoModel.from_config(BertConfig(**SHAPES[shape], max_position_embeddings=max(512, seq + prefix_len)))
    built = {}
    for v in VARIANTS:
        encoder = copy.deepcopy(base) if v.startswith(("finetune", "peft")) else base
        built[v] = build_step(v, encoder.to(device), prefix_len, batch, seq, device)
    times = {v: [] for v in VARIANTS}
    peaks = {}
    cuda = device == "cuda"
    for v in VARIANTS:  # memory: each variant alone, after its own warm-up
        step = built[v][0]
        step()
        if cuda:
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        step()
        if cuda:
            torch.cuda.synchronize()
            peaks[v] = (torch.cuda.max_memory_allocated() - before) / 2**20
    for i in range(warmup + steps):
        for v in VARIANTS:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            built[v][0]()
            if cuda:
                torch.cuda.synchronize()
            if i >= warmup:
                times[v].append(time.perf_counter() - t0)
    med = {v: statistics.median(t) for v, t in times.items()}
    return {"shape": shape, "batch": batch, "seq": seq, "prefix_len": prefix_len,
            "median_step_s": med, "tokens_per_s": {v: batch * seq / m for v, m in med.items()},
            "peak_mib_above_start": peaks or None, "trainable": {v: built[v][1] for v in VARIANTS},
            "ratios": {"apt/finetune time": med["apt-bf16"] / med["finetune-bf16"],
                       "prefix/finetune time": med["prefix-bf16"] / med["finetune-bf16"],
                       "apt/prefix time": med["apt-bf16"] / med["prefix-bf16"],
                       "prefix/peft time": med["prefix-bf16"] / med["peft-prefix-bf16"],
                       **({"apt/finetune memory": peaks["apt-bf16"] / peaks["finetune-bf16"]} if peaks else {})}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--prefix-len", type=int, default=16)
    p.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, 2 steps: checks the script runs")
    p.add_argument("--json")
    ns = p.parse_args()
    import torch

    device = "cuda" if torch.cuda.is_available() and not ns.smoke else "cpu"
    grid = [("tiny", 4, 32)] if ns.smoke else [(s, 32, n) for s in ("bert-base", "bert-large") for n in (128, 512)]
    steps, warmup = (2, 1) if ns.smoke else (ns.steps, ns.warmup)
    out = []
    for shape, batch, seq in grid:
        r = measure(shape, batch, seq, steps, warmup, device, ns.prefix_len)
        out.append(r)
        print(json.dumps({k: r[k] for k in ("shape", "batch", "seq", "ratios")}), flush=True)
    from adaprefix.training import provenance

    doc = {"results": out, "device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor(),
           **provenance(), "command": " ".join([sys.executable, *sys.argv])}
    if ns.json:
        Path(ns.json).parent.mkdir(parents=True, exist_ok=True)
        Path(ns.json).write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
