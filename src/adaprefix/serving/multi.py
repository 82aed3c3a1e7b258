"""Many adapters on one frozen backbone, mixed in one batch.

Usage::

    from transformers import AutoModel
    from adaprefix.serving.multi import MultiAdapterModel
    multi = MultiAdapterModel(AutoModel.from_pretrained(path))    # the bare encoder, frozen and shared
    multi.add("cb", "runs/cb-apt/adapter")                        # an adapter or a run directory
    multi.add("rte", "runs/rte-pt2")
    with torch.inference_mode():
        logits = multi(input_ids, attention_mask, token_type_ids, adapters=["cb", "rte", "cb"])  # one tensor per row
    multi.remove("rte")

Rows of one batch may use adapters with different methods (APT, P-tuning v2), prefix lengths, per-layer lengths
(zeros included) and heads. In each layer every row's prefix is padded to the longest prefix in the batch and the
padding slots are masked for that row (``prefix_mask``); APT gates are computed per adapter from its rows' layer
input, and each adapter's head runs on its own rows. Each row's logits equal those of its adapter loaded alone.

Adapters with ``position_offset="prefix"`` (imported PEFT prefixes) number real tokens after their layer-0 prefix
length. Only the embedding depends on that, so rows are embedded in groups of equal offset and then run through
all layers as one batch: no separate passes.

Inference only: no dropout anywhere, and no gradients are needed (call it under ``torch.inference_mode()``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ..adapter_io import CONFIG_FILE, check_base, load_adapter, read_adapter_config
from ..backbones import family_of
from ..backbones.encoder import describe_base
from ..model import TaskModel
from .predict import resolve_adapter_dir


@dataclass
class AdapterInfo:
    """What one loaded adapter is: where from, its task (if recorded), method, head and size."""

    name: str
    path: str
    task: str | None
    method: str
    head_type: str | None
    label_names: list[str]
    lengths: list[int]
    position_offset: int
    parameters: int
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "name": self.name, "task": self.task, "method": self.method, "head": self.head_type,
            "labels": list(self.label_names), "prefix_lengths": list(self.lengths), "parameters": self.parameters,
        }


class MultiAdapterModel(nn.Module):
    """One frozen encoder from ``transformers.AutoModel`` and any number of named prefix adapters.

    ``forward(input_ids, attention_mask, token_type_ids, adapters)`` takes (B x n) tensors and one adapter name per
    row and returns a list of B tensors: (labels,) for classification, (n x labels) for token classification (over
    the batch's padded width, as ``TaskModel`` gives), a 1-element score for a multiple-choice row (one choice
    per row). (B x C x n) inputs are also accepted when every row's adapter is multiple choice; each row then
    gets its (C,) scores, as ``TaskModel`` returns for COPA.
    """

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.family = family_of(encoder)  # refuses AdaptedEncoder / TaskModel with a clear message
        encoder.requires_grad_(False)
        self.encoder = encoder.eval()
        self.base = describe_base(encoder, self.family)  # fingerprint once; every add checks against it
        self.num_layers = self.base["num_layers"]
        # Adapter tensors (prefix stacks, heads) as submodules, so .to(device) moves them with the encoder; the
        # TaskModels themselves are kept outside the module tree (each references the shared encoder).
        self.parts = nn.ModuleDict()
        self._models: dict[str, TaskModel] = {}
        self._info: dict[str, AdapterInfo] = {}

    def train(self, mode: bool = True) -> "MultiAdapterModel":
        """Stays in eval mode: serving only (train adapters with ``adaprefix train``)."""
        if mode:
            raise ValueError("MultiAdapterModel serves adapters and stays in eval mode; train with `adaprefix train`")
        return super().train(False)

    # ------------------------------------------------------------------ adapters

    def add(self, name: str, path: str | os.PathLike) -> AdapterInfo:
        """Load the adapter at ``path`` (adapter or run directory) under ``name``.

        Refuses a name already in use, fine-tuning adapters (whole models, not prefixes) and adapters trained on
        another base (type, shape or weights fingerprint), each with a ``ValueError`` saying why.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"adapter name must be a non-empty string, got {name!r}")
        if name in self._models:
            raise ValueError(f"an adapter named {name!r} is already loaded; remove it first")
        directory = resolve_adapter_dir(path)
        meta = read_adapter_config(directory)
        method = meta.get("prefix_config", {}).get("method")
        if method == "finetune":
            # It would bring its own copy of the whole encoder: nothing shared, one model per task again.
            raise ValueError(
                f"{directory}: a fine-tuning adapter holds a whole fine-tuned encoder, not a prefix; it cannot share "
                "the frozen backbone. Serve it on its own with `adaprefix predict`."
            )
        check_base(meta.get("base_model", {}), self.base, str(directory / CONFIG_FILE))
        model = load_adapter(directory, self.encoder, base=self.base).eval()
        model.requires_grad_(False)  # inference only: no autograd bookkeeping on adapter tensors
        adapted = model.encoder
        self.parts[name] = nn.ModuleDict({"prefix": adapted.prefix, "head": model.head or nn.Identity()})
        self._models[name] = model
        lengths = list(adapted.lengths)
        info = AdapterInfo(
            name=name,
            path=str(directory),
            task=meta.get("extra", {}).get("task"),
            method=method,
            head_type=model.head_type,
            label_names=list(model.label_names),
            lengths=lengths,
            position_offset=lengths[0] if adapted.config.position_offset == "prefix" else 0,
            parameters=sum(p.numel() for p in adapted.prefix.parameters())
            + (sum(p.numel() for p in model.head.parameters()) if model.head is not None else 0),
            extra=dict(meta.get("extra", {})),
        )
        self._info[name] = info
        return info

    def remove(self, name: str) -> None:
        """Unload adapter ``name`` and free its tensors."""
        self._require([name])
        del self.parts[name], self._models[name], self._info[name]

    def info(self, name: str) -> AdapterInfo:
        self._require([name])
        return self._info[name]

    def model(self, name: str) -> TaskModel:
        """Adapter ``name`` as a standalone TaskModel on the shared encoder (what ``load_adapter`` returns)."""
        self._require([name])
        return self._models[name]

    @property
    def base_device(self) -> torch.device:
        """Where the shared encoder's weights are (inputs must go there)."""
        return next(self.encoder.parameters()).device

    @property
    def names(self) -> list[str]:
        return list(self._models)

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __len__(self) -> int:
        return len(self._models)

    def adapter_bytes(self) -> int:
        """Bytes held by all adapters' tensors (the backbone excluded)."""
        return sum(p.numel() * p.element_size() for p in self.parts.parameters())

    def _require(self, names) -> None:
        unknown = sorted({n for n in names if n not in self._models})
        if unknown:
            raise KeyError(f"unknown adapter(s) {unknown}; loaded: {sorted(self._models)}")

    # ------------------------------------------------------------------ forward

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        adapters: list[str],
    ) -> list[torch.Tensor]:
        """One tensor of logits per row, each row through its own adapter (see the class docstring for shapes)."""
        if len(adapters) != input_ids.shape[0]:
            raise ValueError(f"got {len(adapters)} adapter names for {input_ids.shape[0]} rows")
        self._require(adapters)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if input_ids.dim() == 3:  # B x C x n: every row multiple choice, its C choices as C encoder rows
            not_mc = sorted({a for a in adapters if self._info[a].head_type != "multiple_choice"})
            if not_mc:
                raise ValueError(f"(B x C x n) inputs need multiple-choice adapters; {not_mc} are not")
            choices = input_ids.shape[1]
            flat = [t if t is None else t.reshape(-1, t.shape[-1]) for t in (input_ids, attention_mask, token_type_ids)]
            scores = self.forward(*flat, adapters=[a for a in adapters for _ in range(choices)])
            return list(torch.cat(scores).view(-1, choices).unbind(0))
        hidden = self.encode(input_ids, attention_mask, token_type_ids, adapters)
        return self._heads(hidden, adapters)

    def encode(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None, adapters: list[str]
    ) -> torch.Tensor:
        """Last hidden states (B x n x d) of a mixed batch, each row with its adapter's prefixes."""
        groups = self._row_groups(adapters, input_ids.device)
        hidden = self._embed(input_ids, token_type_ids, groups)
        key_mask = attention_mask.bool()
        if bool(key_mask.all()):
            key_mask = None  # nothing padded: lets SDPA take its fastest path, as AdaptedEncoder does
        context = self.family.prepare(self.encoder, input_ids, attention_mask)
        for i, layer in enumerate(self.family.layers(self.encoder)):
            prefix, prefix_mask = self._layer_prefix(i, hidden, attention_mask, groups, input_ids.shape[0])
            hidden = self.family.layer_forward(self.encoder, layer, hidden, key_mask, prefix, prefix_mask, 0.0, context)
        return hidden

    def _row_groups(self, adapters: list[str], device: torch.device) -> dict[str, torch.Tensor]:
        """Adapter name -> indices of its rows, in order of first appearance."""
        rows: dict[str, list[int]] = {}
        for r, name in enumerate(adapters):
            rows.setdefault(name, []).append(r)
        return {name: torch.tensor(idx, device=device) for name, idx in rows.items()}

    def _embed(self, input_ids, token_type_ids, groups: dict[str, torch.Tensor]) -> torch.Tensor:
        """Embeddings, each row with its adapter's position offset (one embedding call per distinct offset)."""
        by_offset: dict[int, list[torch.Tensor]] = {}
        for name, idx in groups.items():
            by_offset.setdefault(self._info[name].position_offset, []).append(idx)
        if len(by_offset) == 1:
            return self.family.embed(self.encoder, input_ids, token_type_ids, next(iter(by_offset)))
        hidden = None
        for offset, parts in by_offset.items():
            idx = torch.cat(parts)
            part = self.family.embed(
                self.encoder, input_ids[idx], None if token_type_ids is None else token_type_ids[idx], offset
            )
            if hidden is None:
                hidden = part.new_zeros(input_ids.shape + part.shape[-1:])
            hidden[idx] = part
        return hidden

    def _layer_prefix(
        self, i: int, hidden: torch.Tensor, attention_mask: torch.Tensor, groups: dict[str, torch.Tensor], batch: int
    ) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        """Layer i's per-row prefix (B x l_max x d, gate-scaled) and slot mask (B x l_max), or shared/None forms.

        Fast paths keep single-adapter batches as cheap as ``AdaptedEncoder``: one P-tuning v2 adapter passes its
        (l x d) table as is; no mask is built when every row uses every slot.
        """
        layers = {name: self.parts[name]["prefix"].layers[i] for name in groups}
        longest = max(lp.length for lp in layers.values())
        if longest == 0:
            return None, None
        if len(groups) == 1:
            (name, _), = groups.items()
            lp = layers[name]
            if lp.token_gate is None and lp.layer_gate is None:
                return (lp.key, lp.value), None
            scale = lp.gate(hidden, attention_mask)[0].to(lp.key.dtype).unsqueeze(-1)
            return (scale * lp.key, scale * lp.value), None
        d = hidden.shape[-1]
        some = next(lp.key for lp in layers.values() if lp.length > 0)
        key = some.new_zeros(batch, longest, d)
        value = some.new_zeros(batch, longest, d)
        mask = torch.zeros(batch, longest, dtype=torch.bool, device=hidden.device)
        for name, idx in groups.items():
            lp = layers[name]
            n = lp.length
            if n == 0:
                continue  # this row sees no prefix here: its slots stay masked
            if lp.token_gate is None and lp.layer_gate is None:
                key[idx, :n], value[idx, :n] = lp.key, lp.value
            else:
                # Gates from this adapter's rows only (masked mean over each row's own tokens, as alone).
                scale = lp.gate(hidden[idx], attention_mask[idx])[0].to(lp.key.dtype).unsqueeze(-1)
                key[idx, :n], value[idx, :n] = scale * lp.key, scale * lp.value
            mask[idx, :n] = True
        return (key, value), (None if bool(mask.all()) else mask)

    def _heads(self, hidden: torch.Tensor, adapters: list[str]) -> list[torch.Tensor]:
        """Each adapter's head on its rows; the frozen pooler once for the rows whose heads use it."""
        groups = self._row_groups(adapters, hidden.device)
        pooler = self.family.pooler(self.encoder)
        needs_pool = any(self._models[n].uses_pooler for n in groups)
        pooled = pooler(hidden) if needs_pool and pooler is not None else None
        out: list[torch.Tensor | None] = [None] * len(adapters)
        for name, idx in groups.items():
            model = self._models[name]
            if model.head is None:  # bare adapter (e.g. an imported PEFT prefix): hidden states
                logits = hidden[idx]
            else:
                logits = model.head(hidden[idx], None if pooled is None or not model.uses_pooler else pooled[idx])
            for row, value in zip(idx.tolist(), logits.unbind(0)):
                out[row] = value
        return out  # type: ignore[return-value]
