"""Adapters on disk: ``adapter_config.json`` + ``adapter.safetensors`` (never pickle), and PEFT import.

Usage::

    save_adapter(model, "adapters/cb-apt")
    model = load_adapter("adapters/cb-apt", AutoModel.from_pretrained(path))   # refuses a different base
    model = import_peft_prefix("peft-prefix-dir", encoder)                     # HF PEFT prefix tuning -> "prefix"

Tensor names (effective values, any projection MLP folded in; layers with l_i = 0 have no entries)::

    prefix.{i}.key, prefix.{i}.value      (l_i x d)
    gate.{i}.token.weight (l_i x d), gate.{i}.token.bias (l_i), gate.{i}.layer (scalar)     APT only
    head.*                                the task head
    backbone.*                            the whole encoder, method "finetune" only
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .backbones import AdaptedEncoder, attach, family_of
from .backbones.encoder import describe_base
from .backbones.packaged import packaged_name_of, resolve_model
from .config import PrefixConfig
from .fileio import atomic_write
from .model import TaskModel

FORMAT_NAME = "adaprefix-adapter"
FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"


class AdapterMismatchError(ValueError):
    """The adapter was trained on a different base encoder than the one it is being loaded onto."""


def _named_tensors(encoder: AdaptedEncoder, head: nn.Module | None, tables: list) -> dict[str, torch.Tensor]:
    """Adapter tensors under their file names, with ``tables`` giving each layer's (key, value) or None."""
    named: dict[str, torch.Tensor] = {}
    if encoder.prefix is not None:
        for i, (table, layer) in enumerate(zip(tables, encoder.prefix.layers)):
            if table is None:
                continue
            named[f"prefix.{i}.key"], named[f"prefix.{i}.value"] = table
            if layer.token_gate is not None:
                named[f"gate.{i}.token.weight"] = layer.token_gate.weight
                named[f"gate.{i}.token.bias"] = layer.token_gate.bias
            if layer.layer_gate is not None:
                named[f"gate.{i}.layer"] = layer.layer_gate
    else:  # finetune: the encoder itself is the adapted part
        named.update({f"backbone.{k}": v for k, v in encoder.encoder.state_dict().items()})
    if head is not None:
        named.update({f"head.{k}": v for k, v in head.state_dict().items()})
    return named


def _parts(model: TaskModel | AdaptedEncoder) -> tuple[AdaptedEncoder, TaskModel | None]:
    if isinstance(model, TaskModel):
        return model.encoder, model
    if isinstance(model, AdaptedEncoder):
        return model, None
    raise ValueError(f"save_adapter takes what adaprefix.attach returns or a TaskModel, got {type(model).__name__}")


def adapter_state_dict(model: TaskModel | AdaptedEncoder) -> dict[str, torch.Tensor]:
    """The tensors an adapter file holds, under their file names (see the module docstring)."""
    encoder, task_model = _parts(model)
    tables = encoder.prefix.folded_tables() if encoder.prefix is not None else []
    head = task_model.head if task_model is not None else None
    return {k: v.detach().cpu().contiguous() for k, v in _named_tensors(encoder, head, tables).items()}


def save_adapter(model: TaskModel | AdaptedEncoder, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the adapter of ``model`` (a TaskModel, or an adapted encoder without a head) to ``directory``
    (created if needed). Files are replaced atomically.

    ``extra`` (JSON-able) is stored under "extra": the training loop records the task and max length there.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder, task_model = _parts(model)
    head = task_model.head if task_model is not None else None
    base = encoder.base_info()
    packaged = packaged_name_of(base.get("name_or_path"))
    if packaged:  # a stable name, not a path inside somebody's virtual environment
        base["name_or_path"] = packaged
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "adaprefix_version": __version__,
        "prefix_config": encoder.config.to_dict(),
        "prefix_lengths": encoder.lengths,
        "head": None if head is None else {"type": task_model.head_type, "dropout": head.dropout.p},
        "label_names": task_model.label_names if task_model is not None else [],
        "base_model": base,
        "extra": extra or {},
    }
    atomic_write(directory / WEIGHTS_FILE, lambda p: save_file(adapter_state_dict(model), str(p)))
    atomic_write(directory / CONFIG_FILE, lambda p: p.write_text(json.dumps(meta, indent=2) + "\n"))
    return directory


def read_adapter_config(directory: str | os.PathLike) -> dict:
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no adapter config here (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text (an adapter config is JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{path}: not an adaprefix adapter (format={found!r})")
    missing = [k for k in ("prefix_config", "prefix_lengths", "base_model") if k not in meta]
    if missing:
        raise ValueError(f"{path}: adapter config lacks {missing} (a damaged or hand-edited file?)")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {version!r} is not one this adaprefix understands "
            f"({FORMAT_VERSION}); upgrade adaprefix"
        )
    return meta


def check_base(meta_base: dict, info: dict, where: str) -> None:
    """Raise AdapterMismatchError listing every way the base differs from the one the adapter was trained on."""
    diffs = [
        f"{key}: adapter expects {meta_base.get(key)!r}, encoder has {info[key]!r}"
        for key in ("model_type", "num_layers", "hidden_size", "num_heads", "fingerprint")
        if key in meta_base and meta_base[key] != info[key]
    ]
    if diffs:
        raise AdapterMismatchError(
            f"{where}: adapter was trained on base {meta_base.get('name_or_path')!r}, which differs from "
            f"{info['name_or_path']!r}: " + "; ".join(diffs)
        )


def load_adapter(directory: str | os.PathLike, encoder: nn.Module, base: dict | None = None) -> TaskModel:
    """Rebuild the TaskModel saved in ``directory`` on ``encoder`` (a transformers AutoModel), in eval mode.

    Prefix adapters share the encoder (frozen, never changed), so many adapters can serve on one backbone.
    A fine-tuning adapter is a whole model: it gets its own copy of the encoder, so the one passed in (and any
    adapter already attached to it) keeps its weights. ``base``: ``describe_base(encoder)`` if the caller has it
    already (fingerprinting a large encoder for every adapter costs time).

    >>> model = load_adapter("runs/cb-apt/adapter", AutoModel.from_pretrained(packaged_model_path("minilm")))  # doctest: +SKIP
    """
    directory = Path(directory)
    meta = read_adapter_config(directory)
    try:
        saved = PrefixConfig.from_dict(meta["prefix_config"])
        if not isinstance(meta["prefix_lengths"], list):
            raise ValueError(f"prefix_lengths must be a list, got {meta['prefix_lengths']!r}")
    except (TypeError, ValueError) as err:
        raise ValueError(f"{directory / CONFIG_FILE}: bad prefix_config ({err})") from None
    # The file holds folded tables, so rebuild without the projection MLP, with the saved per-layer lengths.
    config = dataclasses.replace(saved, prefix_projection=False, prefix_len=list(meta["prefix_lengths"]))
    if not config.uses_prefix:
        config = saved
    family = family_of(encoder)
    base = base if base is not None else describe_base(encoder, family)
    check_base(meta["base_model"], base, str(directory / CONFIG_FILE))
    if not config.uses_prefix:
        encoder = copy.deepcopy(encoder)  # the file's weights go into a private copy, never the shared base
    adapted = AdaptedEncoder(encoder, config, family, base=base)
    head = meta.get("head")
    model = TaskModel(
        adapted,
        head["type"] if head else None,
        label_names=meta.get("label_names"),
        head_dropout=head.get("dropout") if head else None,
    )
    tensors = read_adapter_tensors(directory / WEIGHTS_FILE)
    load_adapter_tensors(model, tensors, str(directory / WEIGHTS_FILE))
    return model.eval()


def read_adapter_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an adapter file; safetensors only (no code can run), a clear error for anything else."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (an adapter directory holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err}); it may be truncated or of another "
                         "format (pickle files are never read)") from None


def load_adapter_tensors(model: TaskModel, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Copy file tensors into ``model``; every expected name must be present and no extra one allowed."""
    prefix = model.encoder.prefix
    live_tables = [] if prefix is None else [None if l.length == 0 else (l.key, l.value) for l in prefix.layers]
    targets = _named_tensors(model.encoder, model.head, live_tables)
    missing, extra = sorted(set(targets) - set(tensors)), sorted(set(tensors) - set(targets))
    if missing or extra:
        raise ValueError(f"{where}: tensors do not match the adapter config: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, target in targets.items():
            source = tensors[name]
            if source.shape != target.shape:
                raise ValueError(f"{where}: {name} has shape {tuple(source.shape)}, expected {tuple(target.shape)}")
            if source.is_floating_point() and not torch.isfinite(source).all():
                raise ValueError(f"{where}: {name} holds NaN or infinite values")
            target.copy_(source)


def import_peft_prefix(peft_adapter_dir: str | os.PathLike, encoder: nn.Module | None = None) -> TaskModel:
    """Convert a HF PEFT prefix-tuning adapter into an adaprefix ``"prefix"`` model (no head).

    PEFT stores ``prompt_embeddings`` (l x 2*L*d): per virtual token, for each layer a key then a value; with
    ``prefix_projection`` it stores the projected table, so both kinds import (tests check each against PEFT).
    PEFT runs prefixes through ``past_key_values``, which shifts real-token positions by l, so the result uses
    ``position_offset="prefix"`` to give the same hidden states. Without ``encoder``, the base named in the PEFT
    config is loaded with ``AutoModel``. Save the result with :func:`save_adapter`.
    """
    directory = Path(peft_adapter_dir)
    config_path = directory / "adapter_config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path}: not found; expected a PEFT adapter directory")
    peft = json.loads(config_path.read_text())
    if peft.get("peft_type") != "PREFIX_TUNING":
        raise ValueError(f"{config_path}: peft_type is {peft.get('peft_type')!r}, expected 'PREFIX_TUNING'")
    weights_path = directory / "adapter_model.safetensors"
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: not found (only safetensors PEFT adapters are read; never pickle)")
    if encoder is None:
        from transformers import AutoModel

        encoder = AutoModel.from_pretrained(resolve_model(peft["base_model_name_or_path"]))
    tensors = load_file(str(weights_path))
    if "prompt_embeddings" not in tensors:
        raise ValueError(f"{weights_path}: no 'prompt_embeddings' tensor (found {sorted(tensors)})")
    table = tensors["prompt_embeddings"]
    length, num_layers, hidden = peft["num_virtual_tokens"], peft["num_layers"], peft["token_dim"]
    if tuple(table.shape) != (length, 2 * num_layers * hidden):
        raise ValueError(
            f"{weights_path}: prompt_embeddings has shape {tuple(table.shape)}, expected "
            f"({length}, {2 * num_layers * hidden}) from num_virtual_tokens, num_layers and token_dim"
        )
    config = PrefixConfig(method="prefix", prefix_len=length, position_offset="prefix")
    model = TaskModel(attach(encoder, config), head_type=None)
    if model.encoder.num_layers != num_layers or model.encoder.hidden_size != hidden:
        raise AdapterMismatchError(
            f"{config_path}: PEFT adapter has {num_layers} layers x {hidden}, the encoder has "
            f"{model.encoder.num_layers} x {model.encoder.hidden_size}"
        )
    per_layer = table.view(length, num_layers, 2, hidden)
    with torch.no_grad():
        for i, layer in enumerate(model.encoder.prefix.layers):
            layer.key.copy_(per_layer[:, i, 0])
            layer.value.copy_(per_layer[:, i, 1])
    return model
