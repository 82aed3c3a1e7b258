"""The paper's tasks: where their files are, how they read, which head and metric, and P-tuning v2 defaults.

Usage::

    task = get_task("cb")
    train = task.load("train", data_dir="../shared/data")      # list of records
    scores = task.score(examples, predictions)                 # {"accuracy": ..., "macro_f1": ...}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import metrics, ner, superglue
from .errors import DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Task:
    name: str
    family: str  # "superglue" | "ner"
    head: str  # classification | multiple_choice | token_classification
    labels: tuple[str, ...]
    main_metric: str
    files: dict[str, str]  # split -> path relative to the data dir
    reader: Callable[[Path, bool], list]
    default_epochs: int
    default_prefix_len: int
    default_lr: float  # prefix methods; finetune uses default_ft_lr
    default_ft_lr: float = 3e-5
    default_max_length: int = 128
    schedule: str = "linear"  # "linear" decay to 0 (SuperGLUE) or "exponential" 0.95 per epoch (NER)

    @property
    def label_names(self) -> list[str]:
        return list(self.labels)

    @property
    def split_has_labels(self) -> dict[str, bool]:
        # SuperGLUE test labels are not public; NER test files are labelled.
        return {"train": True, "val": True, "test": self.family == "ner"}

    def path(self, split: str, data_dir: str | Path) -> Path:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return Path(data_dir) / self.files[split]

    def load(self, split: str, data_dir: str | Path | None = None) -> list:
        """Records of ``split`` from ``data_dir`` (official file layout), or from the hub when it is None."""
        if data_dir is None:
            from .hub import load_from_hub

            return load_from_hub(self, split)
        path = self.path(split, data_dir)
        if not path.exists():
            raise DataError(path, None, f"{self.name} {split} split not found (expected the official file here)")
        return self.reader(path, self.split_has_labels[split])

    def score(self, examples: list, predictions: list) -> dict[str, float]:
        """Metrics from records and predicted labels (names; per-word tag lists for NER; indices for COPA)."""
        if self.family == "ner":
            return metrics.ner_scores([e.tags for e in examples], predictions)
        gold = [e.label for e in examples]
        if self.name == "cb":
            return metrics.accuracy_and_macro_f1(gold, predictions, self.label_names)
        if self.name == "multirc":
            return metrics.multirc_scores(gold, predictions, [e.group for e in examples])
        return metrics.accuracy(gold, predictions)


def _superglue(name: str, folder: str, head: str, labels, metric: str, epochs: int, lr: float) -> Task:
    return Task(
        name, "superglue", head, tuple(labels), metric,
        {s: f"superglue/{folder}/{s}.jsonl" for s in SPLITS},
        lambda path, has_labels: superglue.read_superglue(name, path, has_labels),
        default_epochs=epochs, default_prefix_len=16, default_lr=lr,
    )


def _ner(name: str, files: dict[str, str], labels, reader, epochs: int) -> Task:
    return Task(name, "ner", "token_classification", tuple(labels), "f1", files, reader,
                default_epochs=epochs, default_prefix_len=16, default_lr=2e-2, schedule="exponential")


def _conll_reader(labels, columns: int, sep: str | None):
    return lambda path, has_labels: ner.read_conll_columns(path, labels, columns, sep)


TASKS: dict[str, Task] = {
    "boolq": _superglue("boolq", "boolq", "classification", superglue.BOOL_LABELS, "accuracy", 10, 1e-2),
    "cb": _superglue("cb", "cb", "classification", superglue.CB_LABELS, "accuracy", 20, 1e-2),
    "copa": _superglue("copa", "copa", "multiple_choice", ["choice1", "choice2"], "accuracy", 20, 1e-2),
    "rte": _superglue("rte", "rte", "classification", superglue.RTE_LABELS, "accuracy", 20, 1e-2),
    "wic": _superglue("wic", "wic", "classification", superglue.BOOL_LABELS, "accuracy", 10, 1e-2),
    "wsc": _superglue("wsc", "wsc", "classification", superglue.BOOL_LABELS, "accuracy", 20, 1e-2),
    "multirc": _superglue("multirc", "multirc", "classification", superglue.BOOL_LABELS, "f1a", 10, 1e-2),
    "conll03": _ner("conll03", {"train": "ner/conll03/train.txt", "val": "ner/conll03/dev.txt", "test": "ner/conll03/test.txt"},
                    ner.CONLL03_LABELS, _conll_reader(ner.CONLL03_LABELS, 4, None), 10),
    "conll04": _ner("conll04", {"train": "ner/conll04/train.json", "val": "ner/conll04/dev.json", "test": "ner/conll04/test.json"},
                    ner.CONLL04_LABELS, lambda path, has_labels: ner.read_spert_json(path, ner.CONLL04_LABELS), 20),
    "ontonotes": _ner("ontonotes", {"train": "ner/ontonotes5/train.txt", "val": "ner/ontonotes5/dev.txt", "test": "ner/ontonotes5/test.txt"},
                      ner.ONTONOTES_LABELS, _conll_reader(ner.ONTONOTES_LABELS, 2, "\t"), 5),
}


def get_task(name: str) -> Task:
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"ontonotes5": "ontonotes", "conll2003": "conll03", "conll2004": "conll04"}
    key = aliases.get(key, key)
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}")
    return TASKS[key]
