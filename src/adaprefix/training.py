"""The training loop: one script-like function that runs alone or under ``accelerate launch``.

Usage::

    from adaprefix.training import TrainArgs, train
    results = train(TrainArgs(task="cb", method="apt", data_dir="../shared/data", output="runs/cb-apt"))

Per epoch: train, score the split that chooses the epoch (val; under ``shots_dev`` the K-per-class selection
split) and, when it improves (or with ``eval_every_epoch``), val and test (NER); append to ``metrics.jsonl``, write the checkpoint
atomically (``checkpoint/``), keep the best epoch's adapter in ``adapter/`` and its per-example val predictions in
``val-predictions.json`` (see :func:`write_val_predictions`). ``results.json`` at the end.
Shuffling and dropout are re-seeded from (seed, epoch) at every epoch start, so ``resume=True`` reproduces an
uninterrupted run exactly.

``train`` reads as its phases: :func:`load_run_data`, :func:`build_model`, :func:`make_optimiser`,
:func:`restore_checkpoint`, :func:`train_epoch`, :func:`evaluate_epoch`, :func:`write_checkpoint`,
:func:`run_results`; other commands (probe, sweep) reuse them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object, set_seed
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from . import __version__
from .adapter_io import save_adapter
from .backbones import attach
from .backbones.packaged import packaged_name_of, resolve_model
from .config import PrefixConfig
from .fileio import atomic_dir_write, atomic_write, exclusive_run
from .model import TaskModel
from .tasks import Task, get_task
from .tasks.encode import Collator, Feature, LengthGroupedBatches, encode, shard_steps
from .tasks.fewshot import draw_subset, few_shot_dev_split, sample_few_shot, short_classes
from .tasks.records import ChoiceExample, PairExample, TokenExample

CHECKPOINT = "checkpoint"
STATE_FILE = "trainer_state.pt"  # optimiser, scheduler, history: tensors and plain data, read with weights_only=True
TRAINABLE_FILE = "trainable.safetensors"  # raw trainable parameters (projection MLP included), for --resume
TRUNCATION_WARNING = 0.05  # say so at the start of a run when max_length cuts this share of a split or more
VAL_PREDICTIONS = "val-predictions.json"  # the best epoch's per-example val predictions, for paired bootstraps
MIXED_PRECISION = ("no", "bf16", "fp16")
# Settings a resumed run may change: they do not touch the training arithmetic. Data and base weights are
# compared by content (digests), not by their paths.
RESUME_MAY_DIFFER = frozenset({"output", "resume", "progress", "eval_batch_size", "data_dir", "model", "early_stop",
                               "eval_every_epoch"})


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint and adapter are kept."""


@dataclass
class TrainArgs:
    task: str
    output: str
    method: str = "apt"
    model: str | None = None  # a packaged name ("minilm", the default), a folder or a hub id
    data_dir: str | None = None
    prefix_len: int | list[int] | None = None  # None: the task's default
    lr: float | None = None  # None: the task's default for the method
    epochs: int | None = None
    batch_size: int = 16  # per process
    eval_batch_size: int = 64
    seed: int = 11
    max_length: int | None = None
    token_gate: bool | None = None
    layer_gate: bool | None = None
    gate_pooling: str | None = None  # None: "mean"; APT only
    token_gate_bias: float | None = None  # None: 0 (gates start at 0.5); APT only
    prefix_projection: bool = False
    attention_dropout: float | None = None
    shots: int | None = None
    shots_dev: bool = False  # few-shot: choose the epoch on K per class drawn from train (disjoint), not on val
    early_stop: int | None = None  # patience in epochs on the selection metric
    eval_every_epoch: bool = False  # score val/test every epoch, not only when the choosing split improves
    mixed_precision: str = "no"  # no | bf16 | fp16 (accelerate's; fp16 with its gradient scaler, GPU only)
    resume: bool = False
    grad_clip: float = 1.0
    limit_train: int | None = None  # first N training records (quick runs, tests)
    train_subset: int | None = None  # a fixed random N training records, the same for every run (stated subsets)
    limit_eval: int | None = None
    eval_subset: int | None = None  # a fixed random N val (and NER test) records for every run (stated subsets)
    prefix_source: dict | None = None  # where per-layer lengths came from (PT2* plan, PT2+ matching): recorded
    custom: dict | None = None  # a CustomTaskSpec (tasks/custom.py) for the user's own data; task = its kind
    metric: str | None = None  # selection metric (default: the task's main metric)
    class_weights: str | None = None  # "balanced": loss weights n / (classes x count) from the training labels
    gradient_checkpointing: bool = False  # recompute each layer in backward: far less activation memory
    report_to: str = "none"  # accelerate trackers: tensorboard, wandb, mlflow, ... (comma list) or none
    progress: bool = True

    def resolved(self, task: Task) -> "TrainArgs":
        """Task defaults filled in, every value checked before any work starts."""
        self.check()  # what the user gave, before defaults fill the gaps
        out = dataclasses.replace(self)
        if self.method == "finetune":
            out.prefix_len = 0
        elif self.prefix_len is None:
            out.prefix_len = task.default_prefix_len
        out.lr = (task.default_ft_lr if self.method == "finetune" else task.default_lr) if self.lr is None else self.lr
        out.epochs = task.default_epochs if self.epochs is None else self.epochs
        out.max_length = task.default_max_length if self.max_length is None else self.max_length
        out.model = packaged_name_of(self.model or "minilm") or str(self.model)
        out.check()
        return out

    def check(self) -> None:
        """Refuse values that are out of range, and options the chosen method would silently ignore."""
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size}
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name in ("shots", "limit_train", "limit_eval", "early_stop", "train_subset", "eval_subset"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1 when given, got {value}")
        if self.train_subset and (self.shots or self.limit_train):
            raise ValueError(f"--train-subset draws from the whole train file; it does not combine with "
                             f"{'--shots' if self.shots else '--limit-train'}")
        if self.eval_subset and self.limit_eval:
            raise ValueError("--eval-subset draws from the whole dev and test files; it does not combine with "
                             "--limit-eval")
        if self.shots_dev and not self.shots:
            raise ValueError("--shots-dev draws a selection split of K per class: it needs --shots K")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"--lr must be a positive number, got {self.lr}")
        if self.max_length is not None and self.max_length < 8:
            raise ValueError(f"--max-length must be >= 8 (room for special tokens and text), got {self.max_length}")
        if self.grad_clip is not None and self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        if self.class_weights not in (None, "balanced"):
            raise ValueError(f"--class-weights must be 'balanced' when given, got {self.class_weights!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"--mixed-precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if self.method != "apt":
            for flag, value in (("--no-token-gate", self.token_gate), ("--no-layer-gate", self.layer_gate),
                                ("--gate-pooling", self.gate_pooling), ("--token-gate-bias", self.token_gate_bias)):
                if value is not None:
                    raise ValueError(f"{flag} is an APT option; method {self.method!r} has no gates")
        if self.method == "finetune":
            if self.prefix_len not in (None, 0):
                raise ValueError("--prefix-len has no meaning with --method finetune (no prefix is trained)")
            if self.prefix_projection:
                raise ValueError("--prefix-projection has no meaning with --method finetune (no prefix is trained)")

    @classmethod
    def defaults(cls) -> dict:
        """Every setting's default, in the JSON form that results.json and sweep files store."""
        values = {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}
        return json.loads(json.dumps(values, default=str))

    def prefix_config(self) -> PrefixConfig:
        gates = {} if self.method != "apt" else {"token_gate": self.token_gate, "layer_gate": self.layer_gate,
                                                 "gate_pooling": self.gate_pooling or "mean",
                                                 "token_gate_bias_init": self.token_gate_bias or 0.0}
        return PrefixConfig(
            method=self.method, prefix_len=self.prefix_len if self.method != "finetune" else 0,
            prefix_projection=self.prefix_projection, attention_dropout=self.attention_dropout, **gates,
        )


CUSTOM_KINDS = ("classification", "multiple-choice", "token-classification")


def resolve_task(args: TrainArgs) -> Task:
    """The benchmark task named by ``args.task``, or the user's own task described by ``args.custom``."""
    if args.custom is not None or args.task in CUSTOM_KINDS:
        from .tasks.custom import CustomTaskSpec, build_custom_task

        if args.custom is None:
            raise ValueError(f"--task {args.task} reads your own data: give --train-file (and --validation-file) "
                             "or --dataset, with the column options")
        return build_custom_task(CustomTaskSpec.from_dict(args.custom))  # labels read from the training split
    return get_task(args.task)


def selection_metric(args: TrainArgs, task: Task, data: "RunData") -> str:
    """``--metric`` if given (checked against what the task reports), else the task's main metric."""
    if args.metric is None:
        return task.main_metric
    gold = [e.tags if isinstance(e, TokenExample) else e.label for e in data.val_examples[:8]]
    reported = sorted(task.score(data.val_examples[:8], gold))
    if args.metric not in reported:
        raise ValueError(f"--metric {args.metric}: {task.name} reports {reported}")
    return args.metric


def label_weights(task: Task, data: "RunData") -> torch.Tensor:
    """Balanced loss weights per label id (sklearn's n / (classes x count) over the labels present; a label
    absent from training gets the largest weight)."""
    from .tasks.custom import class_weights

    return torch.tensor(class_weights(data.train_examples, task.label_names), dtype=torch.float32)


def load_backbone(name_or_path: str):
    """(tokenizer, encoder) for a packaged name, a folder or a hub id; a clear error when none of those loads."""
    from transformers import AutoModel, AutoTokenizer

    location = resolve_model(name_or_path)
    path = Path(location).expanduser()
    is_hub_id = not path.exists() and not location.startswith(("/", ".", "~")) and location.count("/") <= 1
    if not path.exists() and not is_hub_id:
        raise FileNotFoundError(f"--model {name_or_path}: no such folder (give a model folder, a hub id or a "
                                "packaged name such as 'minilm')")
    try:
        return AutoTokenizer.from_pretrained(location), AutoModel.from_pretrained(location)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FileNotFoundError(f"--model {name_or_path}: cannot load an encoder and tokenizer from it ({first})") from None


# ---------------------------------------------------------------- devices and precision


def model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def autocast_for(device: torch.device, mixed_precision: str):
    """The autocast context for ``mixed_precision`` on ``device`` (a no-op for "no")."""
    if mixed_precision == "no":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


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


@torch.inference_mode()
def predict_logits(model: TaskModel, features: list[Feature], collator: Collator, batch_size: int,
                   accelerator: Accelerator | None = None, mixed_precision: str = "no",
                   progress: bool = False) -> dict[int, torch.Tensor]:
    """Logits (on the CPU) per feature index, computed on the model's device.

    Under several processes each scores a disjoint share (``features[rank::world]``) and the shares are
    gathered, so every feature is scored exactly once.
    """
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    mine = features[rank::world]
    sampler = LengthGroupedBatches([f.length for f in mine], batch_size, shuffle=False)
    was_training = model.training
    model.eval()
    device = model_device(model)
    out: list[tuple[int, torch.Tensor]] = []
    try:
        for batch_idx in tqdm(list(sampler), desc="eval", leave=False, disable=not progress):
            batch = collator([mine[i] for i in batch_idx])
            index = batch.pop("index").tolist()
            batch = to_device(batch, device)
            with autocast_for(device, mixed_precision):
                logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits
            logits = logits.float().cpu()
            real = batch["attention_mask"].sum(-1).cpu() if logits.ndim == 3 else None
            for row, i in enumerate(index):
                out.append((i, logits[row, : int(real[row])] if real is not None else logits[row]))
    finally:
        model.train(was_training)
    if world > 1:
        out = gather_object(out)
    return dict(out)


def evaluate(task: Task, model: TaskModel, examples: list, features: list[Feature], collator: Collator,
             batch_size: int, accelerator: Accelerator | None = None,
             mixed_precision: str = "no") -> tuple[dict, list, dict]:
    """(scores, predictions, logits) on one split; ``scores["examples_scored"]`` counts what was scored."""
    logits = predict_logits(model, features, collator, batch_size, accelerator, mixed_precision)
    if len(logits) != len(features):
        raise RuntimeError(f"scored {len(logits)} of {len(features)} examples; evaluation must score each once")
    preds = decode(task, examples, features, logits)
    scores = task.score(examples, preds)
    scores["examples_scored"] = len(logits)
    return scores, preds, logits


# ---------------------------------------------------------------- per-example val predictions


def prediction_entries(examples: list, preds: list) -> list[dict]:
    """Per example: its ``id`` (the record's idx), ``gold`` and ``pred`` (label name, choice index or per-word
    tag list), and MultiRC's question ``group``: all that ``task.score`` reads, so any subset can be rescored."""
    out = []
    for ex, pred in zip(examples, preds):
        entry = {"id": ex.idx, "gold": ex.tags if isinstance(ex, TokenExample) else ex.label, "pred": pred}
        if getattr(ex, "group", None) is not None:
            entry["group"] = ex.group
        out.append(entry)
    return out


def prediction_records(task: Task, entries: list[dict]) -> tuple[list, list]:
    """(records, predictions) for ``task.score``, rebuilt from :func:`prediction_entries` without the data files
    (the records carry no text: the scorers read only labels, tags and groups)."""
    if task.head == "token_classification":
        records = [TokenExample(e["id"], [], e["gold"]) for e in entries]
    elif task.head == "multiple_choice":
        records = [ChoiceExample(e["id"], [], e["gold"]) for e in entries]
    else:
        records = [PairExample(e["id"], "", None, e["gold"], e.get("group")) for e in entries]
    return records, [e["pred"] for e in entries]


def prediction_task(doc: dict) -> Task:
    """The task whose scorer applies to a val-predictions.json document (a custom task from its saved spec)."""
    if "custom_task" in doc:
        from .tasks.custom import CustomTaskSpec, build_custom_task

        return build_custom_task(CustomTaskSpec.from_dict(doc["custom_task"]), labels=doc["labels"])
    return get_task(doc["task"])


def choosing_split(record: dict) -> str:
    """The split whose score chose (or would choose) this epoch: few-shot runs under --shots-dev choose on their
    own ``select`` split, every other run on ``val``."""
    return "select" if "select" in record else "val"


def write_val_predictions(run_dir: Path, task: Task, examples: list, preds: list, record: dict,
                          selection: str) -> None:
    """``val-predictions.json``: the epoch of ``record`` (the best so far), its val scores and one entry per val
    example in split order. Written whenever the best epoch improves, so a resumed run keeps the best one's."""
    doc = {"task": task.name, "epoch": record["epoch"], "split": "val", "selection_metric": f"val.{selection}",
           "selected_on": choosing_split(record), "scores": record["val"]}
    if task.family == "custom":  # the scorer is rebuilt from these, without the data files
        doc.update(custom_task=task.spec.to_dict(), labels=list(task.labels))
    doc["examples"] = prediction_entries(examples, preds)
    atomic_write(run_dir / VAL_PREDICTIONS, lambda p: p.write_text(json.dumps(doc, default=str) + "\n"))


def val_predictions_of(run_dir: Path, best_epoch: int) -> str | None:
    """The predictions file's name for results.json when it holds ``best_epoch``; None when it is missing or
    from another epoch (a run resumed from a checkpoint written before the file existed)."""
    try:
        doc = json.loads((run_dir / VAL_PREDICTIONS).read_text())
    except (OSError, ValueError):
        return None
    return VAL_PREDICTIONS if doc.get("epoch") == best_epoch else None


# ---------------------------------------------------------------- data


@dataclass
class RunData:
    """Records and features of one run's splits (test only for NER, whose test files are labelled)."""

    train_examples: list
    val_examples: list
    test_examples: list | None
    train_features: list[Feature]
    val_features: list[Feature]
    test_features: list[Feature] | None
    collator: Collator
    few_shot_drawn: list | None = None
    truncated: dict = field(default_factory=dict)  # split -> examples cut by max_length
    select_examples: list | None = None  # few-shot selection split (--shots-dev): chooses the epoch
    select_features: list[Feature] | None = None
    select_drawn: list | None = None
    short_classes: dict = field(default_factory=dict)  # few-shot: split -> {label: drawn} below K (file too small)
    train_records: int | None = None  # records in the train file, before --limit-train / --train-subset / --shots
    val_records: int | None = None  # records in the dev file, before --limit-eval / --eval-subset

    def digest(self) -> str:
        """Identifies the training data by content (token ids and labels), for --resume."""
        h = hashlib.sha256()
        for f in self.train_features:
            h.update(json.dumps([f.input_ids, f.token_type_ids, f.label]).encode())
        return h.hexdigest()


def load_run_data(args: TrainArgs, task: Task, tokenizer) -> RunData:
    """Read, limit, few-shot sample and encode the splits of ``args`` (already resolved)."""
    from .tasks.encode import count_truncated

    train_ex = task.load("train", args.data_dir)
    val_ex = task.load("val", args.data_dir)
    has_test = task.family == "ner" or (task.family == "custom" and task.has_split("test"))
    test_ex = task.load("test", args.data_dir) if has_test else None
    train_records = len(train_ex)
    if args.limit_train:
        train_ex = train_ex[: args.limit_train]
    if args.train_subset:
        train_ex = draw_subset(train_ex, args.train_subset)
    val_records = len(val_ex)
    if args.limit_eval:
        val_ex = val_ex[: args.limit_eval]
        test_ex = test_ex[: args.limit_eval] if test_ex is not None else None
    if args.eval_subset:
        val_ex = draw_subset(val_ex, args.eval_subset, option="--eval-subset")
        test_ex = draw_subset(test_ex, args.eval_subset, option="--eval-subset") if test_ex is not None else None
    drawn = select_ex = select_drawn = None
    short: dict[str, dict[str, int]] = {}
    if args.shots:
        full_train = train_ex
        train_ex, drawn = sample_few_shot(full_train, args.shots, args.seed)
        short["train"] = short_classes(full_train, drawn, args.shots)
        if args.shots_dev:
            select_ex, select_drawn = few_shot_dev_split(full_train, drawn, args.shots, args.seed)
            if not select_ex:
                raise ValueError(f"--shots-dev: no training examples left beside the {len(drawn)} drawn for training")
            short["select"] = short_classes(full_train, select_drawn, args.shots)
        short = {split: classes for split, classes in short.items() if classes}
    if not train_ex:
        raise ValueError(f"{task.name}: no training examples left (check --limit-train / --shots / the train file)")
    splits = {"train": train_ex, "val": val_ex, **({"test": test_ex} if test_ex is not None else {}),
              **({"select": select_ex} if select_ex is not None else {})}
    features = {name: encode(ex, tokenizer, task.label_names, args.max_length) for name, ex in splits.items()}
    truncated = {name: count_truncated(splits[name], features[name], tokenizer, args.max_length) for name in splits}
    return RunData(train_ex, val_ex, test_ex, features["train"], features["val"], features.get("test"),
                   Collator(tokenizer.pad_token_id), drawn, truncated, select_ex, features.get("select"), select_drawn,
                   short, train_records, val_records)


# ---------------------------------------------------------------- model and optimiser


def build_model(args: TrainArgs, task: Task, encoder) -> TaskModel:
    set_seed(args.seed)
    return TaskModel(attach(encoder, args.prefix_config()), task.head, label_names=task.label_names)


def make_optimiser(args: TrainArgs, task: Task, params: list, steps_per_epoch: int):
    """AdamW without weight decay; linear decay per step (SuperGLUE) or 0.95 per epoch (NER). Returns
    (optimiser, scheduler, whether the scheduler steps per batch)."""
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    if task.schedule == "linear":
        total = steps_per_epoch * args.epochs
        return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: max(0.0, 1.0 - s / total)), True
    return optimiser, torch.optim.lr_scheduler.ExponentialLR(optimiser, gamma=0.95), False


def make_accelerator(args: TrainArgs, run_dir: Path | None = None) -> Accelerator:
    cuda = torch.cuda.is_available()
    if args.mixed_precision == "fp16" and not cuda:
        raise ValueError("--mixed-precision fp16 needs a GPU; on a CPU use bf16 or no")
    from accelerate.state import AcceleratorState, PartialState

    state = AcceleratorState._shared_state
    if state and state.get("_mixed_precision") != args.mixed_precision and PartialState().num_processes == 1:
        # A notebook that trains twice with different precision: accelerate keeps one process-wide state and
        # refuses the change; in a single process it is safe to start that state afresh.
        AcceleratorState._reset_state()
    trackers = [t for t in (args.report_to or "none").split(",") if t and t != "none"]
    if not trackers:
        return Accelerator(cpu=not cuda, mixed_precision=args.mixed_precision)
    return Accelerator(cpu=not cuda, mixed_precision=args.mixed_precision, log_with=trackers,
                       project_dir=str(run_dir / "logs") if run_dir is not None else None)


# ---------------------------------------------------------------- checkpoints


@dataclass
class Progress:
    """What a checkpoint restores besides the weights and optimiser."""

    start_epoch: int = 0
    history: list = field(default_factory=list)
    best: dict | None = None
    wall_before: float = 0.0
    cpu_before: float | None = 0.0  # None: resumed from a checkpoint older than the CPU-time field
    extended_from: list = field(default_factory=list)  # the epochs planned before each extension (e.g. [5, 8])


def find_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint folder ``--resume`` reads in ``run_dir``, or None when the run has none yet."""
    for name in (CHECKPOINT, f".{CHECKPOINT}.old"):  # the second exists only if a crash hit the swap
        path = run_dir / name
        if (path / STATE_FILE).is_file():
            return path
    return None


def epochs_may_grow(task: Task) -> bool:
    """Whether ``--resume --epochs M`` may continue a run of ``task`` planned for fewer epochs: where the rate
    schedule does not depend on the number of epochs (NER: 0.95 per epoch), the longer run's first epochs are the
    shorter run's, so continuing it is the longer run. Linear decay to 0 over the run (SuperGLUE) gives every
    step another rate when the run is longer: there a longer run starts afresh."""
    return task.schedule != "linear"


def run_identity(args: TrainArgs, data: RunData, model: TaskModel) -> dict:
    """Everything a resumed run must share with the run it continues."""
    settings = {k: v for k, v in _jsonable(args).items() if k not in RESUME_MAY_DIFFER}
    return {"settings": settings, "data": data.digest(), "base": model.encoder.base_info()["fingerprint"]}


def restore_checkpoint(run_dir: Path, identity: dict, model: TaskModel, optimiser, scheduler,
                       accelerator: Accelerator, early_stop: int | None, epochs: int,
                       epochs_grow: bool = False) -> Progress | None:
    """Load the run's last checkpoint into model, optimiser and scheduler; None when there is none yet.
    ``epochs_grow`` (:func:`epochs_may_grow`): ``epochs`` may exceed the checkpoint's plan, which extends the run."""
    ckpt = find_checkpoint(run_dir)
    if ckpt is None:
        return None
    try:
        state = torch.load(ckpt / STATE_FILE, weights_only=True)  # never unpickles arbitrary objects
    except Exception as err:  # noqa: BLE001 - any unreadable state file gets the same sentence
        raise ValueError(f"{ckpt / STATE_FILE}: unreadable checkpoint state ({type(err).__name__}); "
                         "start the run afresh without --resume") from None
    saved = state.get("identity", {})
    planned = saved.get("settings", {}).get("epochs", epochs)
    done = state["epoch"] + 1
    if epochs < done:
        raise ValueError(f"--resume: {ckpt} is after epoch {done}; --epochs {epochs} is fewer (a finished run's "
                         f"results are in {run_dir / 'results.json'})")
    extending = planned != epochs and epochs_grow
    linear = (" (the linear rate decay spans every epoch, so a longer run gives each step another rate: train it "
              "afresh)")
    changed = [f"{k} was {a!r}, now {b!r}" + (linear if k == "epochs" else "") for k, b in identity["settings"].items()
               if (a := saved.get("settings", {}).get(k, b)) != b and not (k == "epochs" and epochs_grow)]
    if saved.get("data") not in (None, identity["data"]):
        changed.append("the training data differ (token ids or labels)")
    if saved.get("base") not in (None, identity["base"]):
        changed.append("the base encoder's weights differ")
    if changed:
        raise ValueError(f"--resume: {ckpt} was trained with different settings: " + "; ".join(changed))
    trainable = load_file(str(ckpt / TRAINABLE_FILE))
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    if set(trainable) != set(named):
        raise ValueError(f"{ckpt}: checkpoint does not match this configuration (different method or lengths?)")
    with torch.no_grad():
        for name, param in named.items():
            param.copy_(trainable[name])
    optimiser.load_state_dict(state["optimiser"])
    scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler") and accelerator.scaler is not None:
        accelerator.scaler.load_state_dict(state["scaler"])
    progress = Progress(done, state["history"], state["best"], state["wall_s"], state.get("cpu_s"),
                        [*state.get("extended_from", []), *([planned] if extending else [])])
    if early_stop and progress.start_epoch - progress.best["epoch"] >= early_stop:
        progress.start_epoch = epochs  # that run had already stopped early: only write its results
    return progress


def write_checkpoint(run_dir: Path, model: TaskModel, optimiser, scheduler, accelerator: Accelerator,
                     identity: dict, epoch: int, progress: Progress, wall_s: float, cpu_s: float | None) -> None:
    state = {"optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(), "epoch": epoch,
             "identity": identity, "history": progress.history, "best": progress.best, "wall_s": wall_s,
             "cpu_s": cpu_s, "extended_from": progress.extended_from,
             "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None}

    def write(d: Path) -> None:
        trainable = {n: p.detach().contiguous().cpu() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trainable, str(d / TRAINABLE_FILE))
        torch.save(state, d / STATE_FILE)

    atomic_dir_write(run_dir / CHECKPOINT, write)


def start_fresh(run_dir: Path) -> None:
    """A new run in a folder an interrupted run left behind: drop its log, predictions, checkpoint and adapter."""
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    (run_dir / VAL_PREDICTIONS).unlink(missing_ok=True)
    for name in (CHECKPOINT, f".{CHECKPOINT}.old", "adapter", ".adapter.old"):
        shutil.rmtree(run_dir / name, ignore_errors=True)


# ---------------------------------------------------------------- one epoch


def train_epoch(model, raw_model: TaskModel, data: RunData, steps: list[list[list[int]]], optimiser, scheduler,
                step_per_batch: bool, accelerator: Accelerator, args: TrainArgs, epoch: int,
                show: bool) -> tuple[float, int]:
    """One pass over this process's share of every step. Returns (mean loss, examples all processes consumed)."""
    rank, world = accelerator.process_index, accelerator.num_processes
    model.train()
    params = raw_model.trainable_parameters()
    losses, seen = [], 0
    for step, parts in enumerate(tqdm(steps, desc=f"epoch {epoch + 1}", leave=False, disable=not show)):
        mine = parts[rank]
        batch = to_device({k: v for k, v in data.collator([data.train_features[i] for i in mine]).items()
                           if k != "index"}, accelerator.device)
        # accelerator.prepare already wrapped the model's forward in the mixed-precision autocast
        loss = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], labels=batch["labels"]).loss
        global_size = sum(len(p) for p in parts)
        # DDP averages gradients over processes; weigh each share by its size so the step equals the
        # mean over the whole global batch (shares differ by at most one example).
        weighted = loss * (len(mine) * world / global_size) if world > 1 else loss
        finite = torch.isfinite(loss.detach())
        if world > 1:
            finite = accelerator.gather(finite.reshape(1).float()).min() > 0
        if not bool(finite):
            raise NonFiniteLossError(
                f"epoch {epoch + 1}, step {step + 1}: the loss is {float(loss.detach()):.4g}; stopped. The last good "
                "checkpoint and adapter are kept. Try a lower --lr (or --mixed-precision no), then --resume "
                "continues from that checkpoint")
        accelerator.backward(weighted)
        if args.grad_clip:
            accelerator.clip_grad_norm_(params, args.grad_clip)
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        if step_per_batch:
            scheduler.step()
        losses.append(float(loss.detach()))
        seen += len(mine)
    if not step_per_batch:
        scheduler.step()
    if world > 1:  # what every process actually consumed, summed: must equal the training set's size
        seen = int(accelerator.reduce(torch.tensor([seen], device=accelerator.device), reduction="sum").item())
    return sum(losses) / max(len(losses), 1), seen


def evaluate_epoch(task: Task, raw_model: TaskModel, data: RunData, args: TrainArgs, accelerator: Accelerator,
                   selection: str, best: dict | None) -> tuple[dict, list | None, bool]:
    """(scores per split, val predictions or None, whether the epoch beats ``best``).

    The split that chooses the epoch (``select`` under --shots-dev, else ``val``) is scored every epoch; the
    others (``val`` under --shots-dev, ``test``) only at epochs that beat the best so far, unless
    ``args.eval_every_epoch``. The best epoch's scores are the same either way (scoring is deterministic and
    draws no random numbers; each epoch reseeds anyway), while a few-shot run saves most of its time: scoring
    the official dev and test sets every epoch costs far more than training on K examples per class.
    """
    def score(examples: list, features: list[Feature]) -> tuple[dict, list, dict]:
        return evaluate(task, raw_model, examples, features, data.collator, args.eval_batch_size, accelerator,
                        args.mixed_precision)

    record: dict = {}
    val_preds = None
    if data.select_features is not None:
        record["select"] = score(data.select_examples, data.select_features)[0]
    else:
        record["val"], val_preds, _ = score(data.val_examples, data.val_features)
    chooser = choosing_split(record)
    improved = best is None or record[chooser][selection] > best[chooser][selection]
    if improved or args.eval_every_epoch:
        if "val" not in record:
            record["val"], val_preds, _ = score(data.val_examples, data.val_features)
        if data.test_features is not None:
            record["test"] = score(data.test_examples, data.test_features)[0]
    return record, val_preds, improved


# ---------------------------------------------------------------- the run


def train(args: TrainArgs, on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Run (or resume) one training run; returns what results.json holds.

    ``on_epoch(epoch, record)`` is called after each epoch's checkpoint is written (sweeps report dev scores to
    their pruner there; an exception it raises stops the run with that checkpoint kept). The run folder is held
    for the whole run (``fileio.exclusive_run``): a second process training into it gets ``RunBusyError``.

        results = train(TrainArgs(task="cb", method="apt", output="runs/cb-apt"))
        results["best"]["val"]["accuracy"]
    """
    if os.environ.get("RANK", "0") != "0":  # under a distributed launcher the main process holds the folder
        return _train(args, on_epoch)
    run_dir = Path(args.output)
    run_dir.mkdir(parents=True, exist_ok=True)
    with exclusive_run(run_dir):
        return _train(args, on_epoch)


def _train(args: TrainArgs, on_epoch: Callable[[int, dict], None] | None) -> dict:
    task = resolve_task(args)
    args = args.resolved(task)
    origin = provenance()  # the code this process loaded
    run_dir = Path(args.output)
    accelerator = make_accelerator(args, run_dir)
    main = accelerator.is_main_process
    show = args.progress and main
    if main:  # train() made the folder and holds its lock
        for stale in run_dir.glob(".*.tmp-*"):  # half-written files or folders of a killed process
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        if not args.resume and (run_dir / "results.json").exists():
            raise FileExistsError(f"{run_dir} already holds a finished run; choose another --output or pass --resume")

    tokenizer, encoder = load_backbone(args.model)
    # Fail on a bad configuration (e.g. per-layer lengths for the wrong depth) before reading any data.
    args.prefix_config().layer_lengths(encoder.config.num_hidden_layers)
    positions = getattr(encoder.config, "max_position_embeddings", None)
    if positions and args.max_length > positions:
        raise ValueError(f"--max-length {args.max_length} exceeds the encoder's {positions} positions")
    data = load_run_data(args, task, tokenizer)
    selection = selection_metric(args, task, data)

    model = build_model(args, task, encoder)
    if args.gradient_checkpointing:
        model.encoder.gradient_checkpointing_enable()
    if args.class_weights == "balanced":
        if task.head == "multiple_choice":
            raise ValueError("--class-weights applies to classification and token classification, not multiple choice")
        model.head.class_weights = label_weights(task, data)
    sampler = LengthGroupedBatches([f.length for f in data.train_features],
                                   args.batch_size * accelerator.num_processes, shuffle=True, seed=args.seed)
    steps_per_epoch = len(shard_steps(sampler.batches(), accelerator.num_processes))
    optimiser, scheduler, step_per_batch = make_optimiser(args, task, model.trainable_parameters(), steps_per_epoch)
    model, optimiser = accelerator.prepare(model, optimiser)
    raw_model: TaskModel = accelerator.unwrap_model(model)
    identity = run_identity(args, data, raw_model)

    progress = None
    if args.resume:
        progress = restore_checkpoint(run_dir, identity, raw_model, optimiser, scheduler, accelerator,
                                      args.early_stop, args.epochs, epochs_may_grow(task))
        if main and progress is None:
            print(f"--resume: no checkpoint in {run_dir} yet; starting from the beginning")
        elif main:
            grown = f" (extended: planned for {progress.extended_from[-1]})" if progress.extended_from else ""
            print(f"resuming {run_dir} after epoch {progress.start_epoch} of {args.epochs}{grown}")
            # epochs after the checkpoint (if a crash came between the log line and the checkpoint) are redone
            (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in progress.history))
    if progress is None:
        progress = Progress()
        if main:
            start_fresh(run_dir)
    if main:  # the resolved settings, reusable as `adaprefix train --config run_dir/train_config.yaml`
        import yaml

        atomic_write(run_dir / "train_config.yaml",
                     lambda p: p.write_text(yaml.safe_dump(_jsonable(args), sort_keys=False), encoding="utf-8"))
    accelerator.wait_for_everyone()

    meta = {"task": task.name, "max_length": args.max_length, "train_args": _jsonable(args)}
    if task.family == "custom":  # eval, predict and probe rebuild the task from this, without the files
        meta.update(custom_task=task.spec.to_dict(), labels=list(task.labels))
        if main:
            from .tasks.custom import class_counts

            print(f"{task.name}: class counts in training: {class_counts(data.train_examples, task.labels)}")
    for split, cut in data.truncated.items() if main else ():
        total = len(getattr(data, f"{split}_examples") or [])
        if cut and total and cut / total >= TRUNCATION_WARNING:
            print(f"{task.name}: --max-length {args.max_length} cuts {cut} of {total} {split} examples "
                  f"({100 * cut / total:.0f}%): their ends are not seen; a larger --max-length keeps them whole"
                  + (f" (the encoder takes up to {positions})" if positions else ""))
    for split, classes in data.short_classes.items() if main else ():
        got = ", ".join(f"{label} {n}" for label, n in classes.items())
        print(f"{task.name}: --shots {args.shots}: the {split} draw has fewer than {args.shots} of some classes "
              f"(the training file has no more{' beside the training draw' if split == 'select' else ''}): {got}")
    if accelerator.log_with:
        accelerator.init_trackers(run_dir.name, config=_tracker_config(args))
    t_start, cpu_start = time.time(), time.process_time()

    def wall_so_far() -> float:  # wall time of this process's part, added to the run's earlier parts
        return progress.wall_before + time.time() - t_start

    def cpu_so_far() -> float | None:  # this process's CPU time, every thread, added to the run's earlier parts
        return None if progress.cpu_before is None else progress.cpu_before + time.process_time() - cpu_start

    examples_seen = 0
    train_seconds = 0.0
    epochs_bar = tqdm(range(progress.start_epoch, args.epochs), desc=f"{task.name} {args.method}", disable=not show)
    for epoch in epochs_bar:
        set_seed(args.seed * 1000 + epoch)
        sampler.epoch = epoch
        t_epoch = time.time()
        loss, seen = train_epoch(model, raw_model, data, shard_steps(sampler.batches(), accelerator.num_processes),
                                 optimiser, scheduler, step_per_batch, accelerator, args, epoch, show)
        train_seconds += time.time() - t_epoch
        examples_seen += seen
        # few-shot runs (--shots-dev) choose the epoch on their own split; official splits are scored when it improves
        scores, val_preds, improved = evaluate_epoch(task, raw_model, data, args, accelerator, selection,
                                                     progress.best)
        record = {"epoch": epoch + 1, "train_loss": loss, "train_examples_seen": seen, **scores,
                  "lr": optimiser.param_groups[0]["lr"]}
        progress.history.append(record)
        if improved:
            progress.best = record
        if main:
            chooser = choosing_split(record)
            epochs_bar.set_postfix({f"{chooser}_{selection}": f"{record[chooser][selection]:.4f}",
                                    "best val": f"{progress.best['val'][selection]:.4f}"})
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            if improved:  # before the checkpoint: a crash in between redoes this epoch and rewrites both
                atomic_dir_write(run_dir / "adapter", lambda d: save_adapter(raw_model, d, extra=meta))
                write_val_predictions(run_dir, task, data.val_examples, val_preds, record, selection)
            write_checkpoint(run_dir, raw_model, optimiser, scheduler, accelerator, identity, epoch, progress,
                             wall_so_far(), cpu_so_far())
        accelerator.wait_for_everyone()
        if accelerator.log_with:
            accelerator.log(_tracker_metrics(record, raw_model), step=epoch + 1)
        if on_epoch is not None:
            on_epoch(epoch + 1, record)
        if args.early_stop and epoch - (progress.best["epoch"] - 1) >= args.early_stop:
            if main:
                print(f"early stop: no {selection} gain in {args.early_stop} epochs")
            break

    results = run_results(args, task, raw_model, data, progress, accelerator,
                          wall_s=wall_so_far(), cpu_s=cpu_so_far(),
                          examples_per_s=examples_seen / train_seconds if train_seconds else None, origin=origin,
                          selection=selection, val_predictions=val_predictions_of(run_dir, progress.best["epoch"]))
    if main:
        atomic_write(run_dir / "results.json", lambda p: p.write_text(json.dumps(results, indent=2) + "\n"))
    if accelerator.log_with:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    return results


def _tracker_config(args: TrainArgs) -> dict:
    """Tracker hyper-parameters: scalars only (lists and dicts as JSON text)."""
    return {k: v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v)
            for k, v in _jsonable(args).items() if v is not None}


def _tracker_metrics(record: dict, model: TaskModel) -> dict:
    """Train loss, dev (and test) metrics, learning rate and a gates summary of one epoch."""
    out = {"train/loss": record["train_loss"], "lr": record["lr"]}
    for split in ("val", "test"):
        out.update({f"{split}/{k}": v for k, v in record.get(split, {}).items()})
    prefix = model.encoder.prefix
    if prefix is not None:
        for i, layer in enumerate(prefix.layers):
            if layer.layer_gate is not None:
                out[f"gates/lambda_{i}"] = float(layer.layer_gate.detach())
            if layer.token_gate is not None:  # the input-independent part of the token gate
                out[f"gates/alpha_bias_{i}"] = float(torch.sigmoid(layer.token_gate.bias.detach()).mean())
    return out


def run_results(args: TrainArgs, task: Task, model: TaskModel, data: RunData, progress: Progress,
                accelerator: Accelerator, wall_s: float, examples_per_s: float | None, origin: dict,
                cpu_s: float | None = None, selection: str | None = None, val_predictions: str | None = None) -> dict:
    selection = selection or task.main_metric
    best = progress.best
    return {
        "task": task.name, "method": args.method, "model": args.model, "seed": args.seed,
        "config": model.encoder.config.to_dict(), "prefix_lengths": model.encoder.lengths,
        "prefix_source": args.prefix_source, "train_args": _jsonable(args),
        "epochs": progress.history, "best_epoch": best["epoch"],
        "extended_from": progress.extended_from,  # epochs planned before each --resume with more (NER), oldest first
        "best": {"val": best["val"], **({"test": best["test"]} if "test" in best else {}),
                 **({"select": best["select"]} if "select" in best else {})},
        "selection_metric": f"val.{selection}", "val_predictions": val_predictions,
        "selected_on": "select (K per class from train, disjoint from the training draw)" if data.select_features
        is not None else "val",
        "few_shot_select_drawn": data.select_drawn,
        "few_shot_short_classes": data.short_classes,  # split -> {label: drawn} where the file had fewer than K
        "trainable_params": model.count_trainable(),
        "trainable_params_without_head": model.count_trainable(include_head=False),
        "train_examples": len(data.train_examples), "train_records": data.train_records, "truncated": data.truncated,
        "val_examples": len(data.val_examples), "val_records": data.val_records,
        "few_shot_drawn": data.few_shot_drawn, "wall_s": wall_s, "train_examples_per_s": examples_per_s,
        # CPU seconds of this (main) process over all its threads, and torch's thread count: with one thread, cpu_s
        # is the run's cost even when other processes shared the cores (wall_s then grows, cpu_s barely)
        "cpu_s": cpu_s, "torch_threads": torch.get_num_threads(),
        "processes": accelerator.num_processes, "mixed_precision": args.mixed_precision,
        "device": str(accelerator.device), **origin,
    }


def _checkout_commit() -> str | None:
    """The git commit of the checkout this package was imported from ("+uncommitted" when its files differ from
    it), or None outside a checkout."""
    import subprocess

    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(here)], cwd=here, capture_output=True,
                               text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + "+uncommitted" if commit and dirty else commit


# Read once, when the code is loaded: a long sweep process keeps running the code it imported even if its checkout
# moves to another commit meanwhile, so asking git at each run's start would name code that is not running.
_LOADED_COMMIT = _checkout_commit()


def provenance() -> dict:
    """Where a result came from: adaprefix's git commit (of the code loaded, when run from a checkout), versions,
    machine."""
    import platform

    import transformers

    return {"adaprefix_commit": _LOADED_COMMIT, "adaprefix_version": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "machine": platform.machine(), "processor": platform.processor(),
            "cpus": os.cpu_count(), **_cpu_info(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


# CPU features that change training speed by large factors (bf16 matmuls are 2x faster with avx512_bf16, 2x
# slower without): recorded because the host behind one machine name differs between sessions.
_SPEED_FLAGS = {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile"}


def _cpu_info(cpuinfo: str = "/proc/cpuinfo") -> dict:
    """``cpu_model``, ``cpu_id`` and ``cpu_flags`` (the speed-relevant ones) from the first processor in
    /proc/cpuinfo; None where unreadable. ``cpu_id`` (vendor, family, model, stepping) tells hosts apart that share
    a model name: float results differ in the last bits between them, so runs replay bit for bit only on one."""
    fields: dict[str, str] = {}
    try:
        with open(cpuinfo) as f:
            for line in f:
                if not line.strip():
                    break  # end of the first processor's block
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    id_parts = [fields.get(k) for k in ("vendor_id", "cpu family", "model", "stepping")]
    cpu_id = (f"{id_parts[0]} family {id_parts[1]} model {id_parts[2]} stepping {id_parts[3]}"
              if all(id_parts) else None)
    flags = sorted(set(fields["flags"].split()) & _SPEED_FLAGS) if "flags" in fields else None
    return {"cpu_model": fields.get("model name"), "cpu_id": cpu_id, "cpu_flags": flags}


def _jsonable(args: TrainArgs) -> dict:
    return {k: v for k, v in dataclasses.asdict(args).items() if k != "progress"}
