"""Load the same tasks from the Hugging Face hub (online machines only), as the same records.

Hub rows are converted to the official file layout and go through the same parsers, so templates, label names
and errors are identical whichever source is used. Hub ids: ``aps/super_glue`` and ``eriktks/conll2003``.
CoNLL04 and OntoNotes 5.0 have no canonical hub copy with this split; they need ``--data-dir``.
"""

from __future__ import annotations

from . import superglue
from .errors import DataError
from .records import TokenExample

SUPERGLUE_HUB = "aps/super_glue"
CONLL03_HUB = "eriktks/conll2003"
HUB_SPLIT = {"train": "train", "val": "validation", "test": "test"}


def _official_row(task: str, row: dict, label_names: list[str] | None) -> dict:
    row = dict(row)
    label = row.get("label", -1)
    if label is None or label < 0:
        row.pop("label", None)
    elif task in ("boolq", "wic", "wsc"):
        row["label"] = bool(label)
    elif task in ("cb", "rte"):
        row["label"] = label_names[label]
    if task == "wsc":
        row["target"] = {k: row.pop(k) for k in ("span1_index", "span2_index", "span1_text", "span2_text")}
    return row


def load_from_hub(task, split: str) -> list:
    try:
        import datasets
    except ImportError:
        raise RuntimeError("no --data-dir given and the 'datasets' package is missing: pip install 'adaprefix[hub]'") from None
    has_labels = task.split_has_labels[split]
    where = f"hub:{SUPERGLUE_HUB if task.family == 'superglue' else CONLL03_HUB}/{task.name}/{split}"
    try:
        if task.family == "superglue":
            data = datasets.load_dataset(SUPERGLUE_HUB, task.name, split=HUB_SPLIT[split])
        elif task.name == "conll03":
            data = datasets.load_dataset(CONLL03_HUB, split=HUB_SPLIT[split])
        else:
            raise DataError(where, None, f"{task.name} has no hub source here; pass --data-dir with the official files")
    except DataError:
        raise
    except Exception as err:  # network, missing dataset: say what to do instead
        raise DataError(where, None, f"could not load from the hub ({err}); offline machines need --data-dir") from err
    if task.name == "conll03":
        names = data.features["ner_tags"].feature.names
        return [TokenExample(i, list(r["tokens"]), [names[t] for t in r["ner_tags"]]) for i, r in enumerate(data)]
    if task.name == "multirc":
        out = []
        for i, r in enumerate(data):
            label = superglue.BOOL_LABELS[r["label"]] if has_labels and r["label"] >= 0 else None
            i = r["idx"]
            out.append(superglue.multirc_answer_row(i["paragraph"], i["question"], i["answer"], r["paragraph"],
                                                    r["question"], r["answer"], label))
        return out
    label_names = data.features["label"].names if "label" in data.features else None
    parse = superglue.PARSERS[task.name]
    out = []
    for i, r in enumerate(data):
        out.extend(parse(superglue.Row(_official_row(task.name, r, label_names), where, i + 1), has_labels))
    return out
