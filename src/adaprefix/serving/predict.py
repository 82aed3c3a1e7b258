"""Use trained adapters: evaluate on a split, or label records from a file.

Many adapters can share one frozen backbone: ``load_adapter(dir, encoder)`` never copies the encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..adapter_io import CONFIG_FILE, load_adapter, read_adapter_config
from ..model import TaskModel
from ..tasks import DataError, Task, TokenExample, get_task
from ..tasks.encode import Collator, encode
from ..tasks.ner import parse_token_record
from ..tasks.superglue import PARSERS, Row, read_jsonl
from ..training import decode, evaluate, load_backbone, predict_logits


def resolve_adapter_dir(path: str | Path) -> Path:
    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    if (path / "adapter" / CONFIG_FILE).is_file():
        return path / "adapter"
    raise FileNotFoundError(f"{path}: neither an adapter directory nor a run directory with adapter/ ({CONFIG_FILE} not found)")


def adapter_task(path: str | Path, task_name: str | None) -> tuple[Path, dict, Task]:
    """(adapter folder, its config, its task) for an adapter or run directory; the task may be given to check."""
    adapter_dir = resolve_adapter_dir(path)
    meta = read_adapter_config(adapter_dir)
    extra = meta.get("extra", {})
    task_name = task_name or extra.get("task")
    if not task_name:
        raise ValueError(f"{adapter_dir}: the adapter records no task; pass --task")
    task = task_of_adapter(extra, task_name, adapter_dir)
    if extra.get("task") and task.name != extra["task"]:
        raise ValueError(f"{adapter_dir}: adapter was trained on {extra['task']!r}, not {task.name!r}")
    return adapter_dir, meta, task


def load_adapter_model(adapter_dir: Path, meta: dict, task: Task, model: str | None):
    """(tokenizer, model in eval mode on the default device, max length, the adapter's extra record)."""
    extra = meta.get("extra", {})
    # Packaged encoders are recorded by name ("minilm") and resolved here, wherever they are installed.
    tokenizer, encoder = load_backbone(model or meta["base_model"]["name_or_path"])
    loaded = load_adapter(adapter_dir, encoder).to(default_device())
    return tokenizer, loaded, extra.get("max_length") or task.default_max_length, extra


def load_for_serving(path: str | Path, task_name: str | None, model: str | None):
    adapter_dir, meta, task = adapter_task(path, task_name)
    return (task, *load_adapter_model(adapter_dir, meta, task, model))


def task_of_adapter(extra: dict, task_name: str, where: Path) -> Task:
    """The benchmark task, or the user's own task rebuilt from the definition the adapter records."""
    if "custom_task" in extra:
        from ..tasks.custom import CustomTaskSpec, build_custom_task

        try:
            spec = CustomTaskSpec.from_dict(extra["custom_task"])
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: bad custom task definition ({err})") from None
        return build_custom_task(spec, labels=extra.get("labels"))
    try:
        return get_task(task_name)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def evaluate_adapter(path, task_name, split, data_dir, model, batch_size) -> tuple[dict, list]:
    """Metrics and predictions on ``split``; without ``data_dir``, the one the adapter was trained from."""
    task, tokenizer, loaded, max_length, extra = load_for_serving(path, task_name, model)
    data_dir = data_dir or extra.get("train_args", {}).get("data_dir")
    if not task.split_has_labels[split]:
        raise ValueError(f"{task.name} {split} has no labels (SuperGLUE test labels are not public); "
                         "use `adaprefix predict` for predictions")
    examples = task.load(split, data_dir)
    features = encode(examples, tokenizer, task.label_names, max_length)
    scores, preds, _ = evaluate(task, loaded, examples, features, Collator(tokenizer.pad_token_id), batch_size)
    return scores, preds


def read_records(task: Task, path: Path) -> list:
    if task.family == "custom":
        from ..tasks.custom import read_custom_records

        return read_custom_records(task, path)
    rows = read_jsonl(path)
    if task.family == "ner":
        return [parse_token_record(obj, path, lineno) for lineno, obj in rows]
    parse = PARSERS[task.name]
    return [ex for lineno, obj in rows for ex in parse(Row(obj, str(path), lineno), False)]


def predict_records(task: Task, tokenizer, model: TaskModel, examples: list, max_length: int, batch_size: int) -> list[dict]:
    features = encode(examples, tokenizer, task.label_names, max_length)
    logits = predict_logits(model, features, Collator(tokenizer.pad_token_id), batch_size)
    preds = decode(task, examples, features, logits)
    out = []
    for f, pred in zip(features, preds):
        ex = examples[f.index]
        if task.head == "token_classification":
            out.append({"idx": ex.idx, "tokens": ex.words, "tags": pred})
            continue
        probs = torch.softmax(logits[f.index], -1).tolist()
        if task.head == "multiple_choice":
            out.append({"idx": ex.idx, "label": pred, "probs": [round(p, 6) for p in probs]})
        else:
            out.append({"idx": ex.idx, "label": pred, "probs": {n: round(p, 6) for n, p in zip(task.labels, probs)}})
    return out


def predict_file(path, input_path, output_path, task_name, model, batch_size) -> int:
    adapter_dir, meta, task = adapter_task(path, task_name)
    examples = read_records(task, Path(input_path))  # before the model loads: a bad file is refused at once
    tokenizer, loaded, max_length, _ = load_adapter_model(adapter_dir, meta, task, model)
    results = predict_records(task, tokenizer, loaded, examples, max_length, batch_size)
    with open(output_path, "w") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    return len(results)
