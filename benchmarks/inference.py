"""Inference cost of a prefix adapter against the plain encoder it rides on (eval mode, no gradients).

    python benchmarks/inference.py [--batch 32] [--seq 128] [--prefix-len 16] [--steps 15] [--json out.json]

Plain = the HF encoder's own forward (pooler output); APT / P-tuning v2 = adaprefix's forward on the same weights,
under torch.inference_mode. Calls are interleaved (plain, prefix, apt, plain, ...) so machine noise hits all
alike; ratios are of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--prefix-len", type=int, default=16)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--json")
    ns = p.parse_args()
    import torch
    from transformers import AutoModel

    from adaprefix import PrefixConfig, TaskModel, attach, packaged_model_path

    if ns.threads:
        torch.set_num_threads(ns.threads)

    encoder = AutoModel.from_pretrained(packaged_model_path("minilm")).eval()
    models = {
        "plain": lambda ids, mask: encoder(input_ids=ids, attention_mask=mask).pooler_output,
    }
    for method in ("prefix", "apt"):
        model = TaskModel(attach(encoder, PrefixConfig(method=method, prefix_len=ns.prefix_len)), "classification",
                          ["a", "b", "c"]).eval()
        models[method] = (lambda m: lambda ids, mask: m(ids, mask).logits)(model)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (ns.batch, ns.seq), generator=gen)
    mask = torch.ones_like(ids)
    times = {k: [] for k in models}
    with torch.inference_mode():
        for i in range(ns.warmup + ns.steps):
            for name, fn in models.items():
                t0 = time.perf_counter()
                fn(ids, mask)
                if i >= ns.warmup:
                    times[name].append(time.perf_counter() - t0)
    med = {k: 1000 * statistics.median(v) for k, v in times.items()}
    ratios = {"APT / plain encoder": med["apt"] / med["plain"], "P-tuning v2 / plain encoder": med["prefix"] / med["plain"]}
    print(f"MiniLM, eval, batch {ns.batch} x {ns.seq}, prefix {ns.prefix_len}, {ns.steps} interleaved calls, "
          f"{torch.get_num_threads()} threads, {platform.machine()}, {os.cpu_count()} CPUs")
    for k, v in med.items():
        print(f"{k:8s} median {v:8.1f} ms")
    for k, v in ratios.items():
        print(f"{k:30s} {v:.3f}   (target APT <= 1.10)")
    if ns.json:
        with open(ns.json, "w") as f:
            json.dump({"median_ms": med, "ratios": ratios, "times_s": times, "args": vars(ns),
                       "command": " ".join([sys.executable, *sys.argv])}, f, indent=1)


if __name__ == "__main__":
    main()
