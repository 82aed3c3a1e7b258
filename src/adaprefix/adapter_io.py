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

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from . import __version__
from .backbones import AdaptedEncoder, attach, family_of
from .backbones.encoder import describe_base
from .config import PrefixConfig
from .fileio import atomic_write
from .model import TaskModel

FORMAT_NAME = "adaprefix-adapter"
FORMAT_VERSION = 1
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"


class AdapterMismatchError(ValueError):
    """The adapter was trained on a different base encoder than the one it is being loaded onto."""


def _named_tensors(model: TaskModel, tables: list) -> dict[str, torch.Tensor]:
    """Adapter tensors under their file names, with ``tables`` giving each layer's (key, value) or None."""
    named: dict[str, torch.Tensor] = {}
    encoder = model.encoder
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
    if model.head is not None:
        named.update({f"head.{k}": v for k, v in model.head.state_dict().items()})
    return named


def adapter_state_dict(model: TaskModel) -> dict[str, torch.Tensor]:
    """The tensors an adapter file holds, under their file names (see the module docstring)."""
    tables = model.encoder.prefix.folded_tables() if model.encoder.prefix is not None else []
    return {k: v.detach().cpu().contiguous() for k, v in _named_tensors(model, tables).items()}


def save_adapter(model: TaskModel, directory: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write the adapter of ``model`` to ``directory`` (created if needed). Files are replaced atomically.

    ``extra`` (JSON-able) is stored under "extra": the training loop records the task and max length there.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder = model.encoder
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "adaprefix_version": __version__,
        "prefix_config": encoder.config.to_dict(),
        "prefix_lengths": encoder.lengths,
        "head": None if model.head is None else {"type": model.head_type, "dropout": model.head.dropout.p},
        "label_names": model.label_names,
        "base_model": encoder.base_info(),
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
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if meta.get("format") != FORMAT_NAME:
        raise ValueError(f"{path}: not an adaprefix adapter (format={meta.get('format')!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {meta['format_version']} is newer than this adaprefix understands "
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


def load_adapter(directory: str | os.PathLike, encoder: nn.Module) -> TaskModel:
    """Rebuild the TaskModel saved in ``directory`` on ``encoder`` (a transformers AutoModel).

    The encoder is frozen and shared, not copied, so many adapters can serve on one backbone.
    """
    directory = Path(directory)
    meta = read_adapter_config(directory)
    saved = PrefixConfig.from_dict(meta["prefix_config"])
    # The file holds folded tables, so rebuild without the projection MLP, with the saved per-layer lengths.
    config = dataclasses.replace(saved, prefix_projection=False, prefix_len=list(meta["prefix_lengths"]))
    if not config.uses_prefix:
        config = saved
    family = family_of(encoder)
    base = describe_base(encoder, family)
    check_base(meta["base_model"], base, str(directory / CONFIG_FILE))
    adapted = AdaptedEncoder(encoder, config, family, base=base)
    head = meta.get("head")
    model = TaskModel(
        adapted,
        head["type"] if head else None,
        label_names=meta.get("label_names"),
        head_dropout=head.get("dropout") if head else None,
    )
    tensors = load_file(str(directory / WEIGHTS_FILE))
    load_adapter_tensors(model, tensors, str(directory / WEIGHTS_FILE))
    return model


def load_adapter_tensors(model: TaskModel, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Copy file tensors into ``model``; every expected name must be present and no extra one allowed."""
    prefix = model.encoder.prefix
    live_tables = [] if prefix is None else [None if l.length == 0 else (l.key, l.value) for l in prefix.layers]
    targets = _named_tensors(model, live_tables)
    missing, extra = sorted(set(targets) - set(tensors)), sorted(set(tensors) - set(targets))
    if missing or extra:
        raise ValueError(f"{where}: tensors do not match the adapter config: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for name, target in targets.items():
            source = tensors[name]
            if source.shape != target.shape:
                raise ValueError(f"{where}: {name} has shape {tuple(source.shape)}, expected {tuple(target.shape)}")
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

        encoder = AutoModel.from_pretrained(peft["base_model_name_or_path"])
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
