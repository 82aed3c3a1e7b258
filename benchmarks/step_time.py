"""Training-step time and peak memory: finetune vs P-tuning v2 (ours) vs APT (ours) vs HF PEFT prefix tuning.

A packaged encoder (``--model minilm``, the default, or ``mpnet``), batch 16 x 128 tokens, sequence classification head (pooler -> dropout -> linear), AdamW,
gradient clipping, all modules in training mode (dropout on, as in training).

Time: every variant is built in one process and their steps are interleaved (finetune, prefix, apt, ...,
then again), so machine noise hits all of them alike; ratios are of per-variant medians.
Memory: each variant runs again in a fresh process; peak = the process's peak resident set (VmHWM) during
its training steps minus its resident set right before the first step (model, batch and optimiser built).
/proc/self/clear_refs resets the peak after loading. Measured twice: with glibc's default allocator settings
(what a user's process really holds: glibc keeps freed blocks for reuse, more so the more the allocation
sizes vary) and with MALLOC_MMAP_THRESHOLD_=65536 (every block of 64 KiB or more gets its own mapping and goes
back to the system when freed, so the peak is that of the live tensors; slower, used for memory only).

The ``floor`` variant is P-tuning v2 with a prefix at layer 0 only: every layer's input gradient is computed, no
weight gradient, nothing else. A method that trains something in the first layer of a frozen encoder (APT,
P-tuning v2, PEFT's prefix tuning) cannot take less time than that; ``APT / floor`` says how much of APT's step is
its own overhead, ``floor / finetune`` how low APT / finetune could go on this machine.

    python benchmarks/step_time.py [--steps 12] [--warmup 2] [--prefix-len 16] [--json out.json]
    python benchmarks/step_time.py --model mpnet --variants finetune,prefix,apt   # MPNet takes no past_key_values,
                                                                                   # so PEFT prefix tuning is out
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time

VARIANTS = ("finetune", "prefix", "apt", "peft-prefix", "floor", "apt-attn-dropout-0", "apt-bf16", "apt-sdpa-dropout",
            "apt-ckpt")
# (label, numerator, denominator, quantity, target): the targets are issue 10's. "memory" = peak RSS with glibc's
# defaults, "live" = peak of the live tensors (see the module docstring).
TARGETS = [
    ("time APT / finetune", "apt", "finetune", "time", 0.55),
    ("peak memory APT / finetune", "apt", "finetune", "memory", 0.50),
    ("peak live memory APT / finetune", "apt", "finetune", "live", 0.50),
    ("time APT / P-tuning v2 (ours)", "apt", "prefix", "time", 1.03),
    ("time P-tuning v2 (ours) / PEFT prefix", "prefix", "peft-prefix", "time", 0.85),
    ("peak memory APT checkpointed / APT", "apt-ckpt", "apt", "memory", 0.5),
    ("peak live memory APT checkpointed / APT", "apt-ckpt", "apt", "live", 0.5),
    ("time APT checkpointed / APT", "apt-ckpt", "apt", "time", 1.4),
    ("time floor / finetune", "floor", "finetune", "time", None),
    ("time APT / floor", "apt", "floor", "time", None),
    ("time P-tuning v2 (ours) / floor", "prefix", "floor", "time", None),
    ("time PEFT prefix / floor", "peft-prefix", "floor", "time", None),
    ("peak memory P-tuning v2 (ours) / PEFT prefix", "prefix", "peft-prefix", "memory", None),
    ("peak live memory P-tuning v2 (ours) / PEFT prefix", "prefix", "peft-prefix", "live", None),
    ("time APT (attn dropout 0) / finetune", "apt-attn-dropout-0", "finetune", "time", None),
    ("peak memory APT (attn dropout 0) / finetune", "apt-attn-dropout-0", "finetune", "memory", None),
    ("time APT bf16 autocast / APT fp32", "apt-bf16", "apt", "time", None),
    ("time APT (SDPA dropout) / APT (recomputed dropout)", "apt-sdpa-dropout", "apt", "time", None),
    ("peak memory APT (SDPA dropout) / APT (recomputed)", "apt-sdpa-dropout", "apt", "memory", None),
    ("peak live memory APT (SDPA dropout) / APT (recomputed)", "apt-sdpa-dropout", "apt", "live", None),
    ("time P-tuning v2 (ours) / finetune", "prefix", "finetune", "time", None),
    ("peak memory APT / P-tuning v2 (ours)", "apt", "prefix", "memory", None),
]
LIVE_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}  # glibc: blocks >= 64 KiB mapped alone and returned when freed


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


def build_step(variant: str, encoder, prefix_len: int, batch: int, seq: int, device: str = "cpu"):
    """A closure doing one training step of ``variant`` on ``device``, and its trainable parameter count."""
    import torch
    from torch import nn

    from adaprefix import PrefixConfig, TaskModel, attach

    torch.manual_seed(0)
    bf16 = variant.endswith("-bf16")
    if variant.startswith("peft-prefix"):
        from peft import PrefixTuningConfig, TaskType, get_peft_model

        peft_model = get_peft_model(
            encoder, PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=prefix_len)
        )
        head = nn.Sequential(nn.Dropout(0.1), nn.Linear(encoder.config.hidden_size, 3))
        peft_model.to(device).train(), head.to(device).train()

        def loss_fn(ids, mask, labels):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
                pooled = peft_model(input_ids=ids, attention_mask=mask).pooler_output
                return nn.functional.cross_entropy(head(pooled).float(), labels)

        params = [p for p in peft_model.parameters() if p.requires_grad] + list(head.parameters())
    else:
        from adaprefix.attention import dropout_implementation

        method = "prefix" if variant == "floor" else variant.split("-")[0]
        if variant == "floor":  # a prefix at layer 0 only: gradients through every layer, nothing else trained
            layers = getattr(encoder.config, "num_hidden_layers")
            prefix_len = [prefix_len] + [0] * (layers - 1)
        config = PrefixConfig(method=method, prefix_len=prefix_len,
                              attention_dropout=0.0 if variant.endswith("attn-dropout-0") else None)
        model = TaskModel(attach(encoder, config), "classification", ["a", "b", "c"]).to(device).train()
        if variant.endswith("-ckpt"):
            model.encoder.gradient_checkpointing_enable()
        impl = "sdpa" if variant.endswith("-sdpa-dropout") else "auto"

        def loss_fn(ids, mask, labels):
            with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16), dropout_implementation(impl):
                return model(ids, mask, labels=labels).loss

        params = model.trainable_parameters()
    optimiser = torch.optim.AdamW(params, lr=2e-5 if variant.startswith("finetune") else 1e-2, weight_decay=0.0)
    gen = torch.Generator().manual_seed(1)
    vocab = min(20000, encoder.config.vocab_size)
    ids = torch.randint(min(1000, vocab - 1), vocab, (batch, seq), generator=gen).to(device)
    mask = torch.ones_like(ids)
    labels = torch.randint(0, 3, (batch,), generator=gen).to(device)

    def step() -> None:
        optimiser.zero_grad(set_to_none=True)
        loss_fn(ids, mask, labels).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()

    return step, sum(p.numel() for p in params)


def load_encoder(name: str = "minilm"):
    """A packaged encoder by name (``minilm``, ``mpnet``)."""
    from transformers import AutoModel

    from adaprefix.backbones.packaged import packaged_model_path

    return AutoModel.from_pretrained(str(packaged_model_path(name)))


def load_minilm():
    return load_encoder("minilm")


def memory_worker(variant: str, steps: int, prefix_len: int, batch: int, seq: int, model: str = "minilm") -> dict:
    step, trainable = build_step(variant, load_encoder(model), prefix_len, batch, seq)
    base = read_status_kb("VmRSS")
    reset = reset_peak_rss()
    for _ in range(steps):
        step()
    return {"variant": variant, "peak_train_mib": (read_status_kb("VmHWM") - base) / 1024, "peak_reset": reset,
            "trainable": trainable}


def run_memory_worker(variant: str, args, env_extra: dict) -> dict:
    cmd = [sys.executable, __file__, "--memory-worker", variant, "--memory-steps", str(args.memory_steps),
           "--prefix-len", str(args.prefix_len), "--batch", str(args.batch), "--seq", str(args.seq),
           "--model", args.model]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", **env_extra)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode:
        sys.exit(f"memory worker {variant} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def profile(variant: str, args) -> None:
    """Operator table (self CPU time) of two steps after ``args.warmup`` warm-up steps."""
    from torch.profiler import profile as torch_profile

    step = build_step(variant, load_encoder(args.model), args.prefix_len, args.batch, args.seq)[0]
    for _ in range(args.warmup):
        step()
    with torch_profile() as prof:
        for _ in range(2):
            step()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def time_all(args) -> dict[str, list[float]]:
    import torch

    shared = load_encoder(args.model)  # frozen: our prefix variants share it
    steps = {}
    for v in args.variants:
        encoder = copy.deepcopy(shared) if v in ("finetune", "peft-prefix") else shared
        steps[v] = build_step(v, encoder, args.prefix_len, args.batch, args.seq)[0]
    times: dict[str, list[float]] = {v: [] for v in args.variants}
    for i in range(args.warmup + args.steps):
        for v in args.variants:
            t0 = time.perf_counter()
            steps[v]()
            if i >= args.warmup:
                times[v].append(time.perf_counter() - t0)
        print(f"step {i + 1}/{args.warmup + args.steps}", file=sys.stderr, flush=True)
    print(f"threads: {torch.get_num_threads()}", file=sys.stderr)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant (interleaved)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--memory-steps", type=int, default=3)
    parser.add_argument("--prefix-len", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--model", default="minilm", help="packaged encoder: minilm (default) or mpnet")
    parser.add_argument("--variants", type=lambda t: tuple(t.split(",")), default=VARIANTS,
                        help=f"comma list, a subset of {','.join(VARIANTS)} (default: all)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--memory-worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--profile", choices=VARIANTS, help="print torch.profiler's operator table for one variant")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"--variants: unknown {unknown}; known: {list(VARIANTS)}")
    if args.profile:
        profile(args.profile, args)
        return
    if args.memory_worker:
        print(json.dumps(memory_worker(args.memory_worker, args.memory_steps, args.prefix_len, args.batch, args.seq,
                                       args.model)))
        return

    times = time_all(args)
    memory, live = {}, {}
    for v in args.variants:
        memory[v] = run_memory_worker(v, args, {})
        live[v] = run_memory_worker(v, args, LIVE_ENV)
        print(f"memory {v}: +{memory[v]['peak_train_mib']:.1f} MiB (live tensors +{live[v]['peak_train_mib']:.1f})",
              file=sys.stderr, flush=True)

    med = {v: 1000 * statistics.median(times[v]) for v in args.variants}
    quart = {v: [1000 * q for q in statistics.quantiles(times[v], n=4)] for v in args.variants}
    mem = {v: memory[v]["peak_train_mib"] for v in args.variants}
    live_mem = {v: live[v]["peak_train_mib"] for v in args.variants}
    print(f"\n{args.model}, batch {args.batch} x {args.seq}, prefix {args.prefix_len}, "
          f"{args.steps} interleaved timed steps per variant, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"{'variant':20s} {'median ms':>10s} {'q1..q3 ms':>16s} {'peak MiB':>9s} {'live MiB':>9s} {'trainable':>10s}")
    for v in args.variants:
        print(f"{v:20s} {med[v]:10.1f} {quart[v][0]:7.1f}..{quart[v][2]:7.1f} {mem[v]:9.1f} {live_mem[v]:9.1f} "
              f"{memory[v]['trainable']:10d}")
    print()
    ratios = {}
    for label, num, den, quantity, target in TARGETS:
        if num not in args.variants or den not in args.variants:
            continue
        source = {"time": med, "memory": mem, "live": live_mem}[quantity]
        value = source[num] / source[den]
        ratios[label] = value
        verdict = "(information)" if target is None else f"target <= {target:.2f}   {'met' if value <= target else 'MISSED'}"
        print(f"{label:52s} {value:6.3f}   {verdict}")
    if args.json:
        from adaprefix.training import provenance  # commit, versions, CPU model and speed flags, as runs record

        with open(args.json, "w") as f:
            json.dump({"median_ms": med, "quartiles_ms": quart, "peak_train_mib": mem, "peak_live_mib": live_mem,
                       "ratios": ratios, "times_s": times, "memory": memory, "live_memory": live,
                       "args": vars(args), **provenance(),
                       "threads": int(os.environ.get("OMP_NUM_THREADS", "0")) or os.cpu_count()}, f, indent=2)


if __name__ == "__main__":
    main()
