"""Gated prefix attention (pure torch): APT-SPEC sections 1 and 2.

    Attn(h W_q, [K_p ; h W_k], [V_p ; h W_v]),   K_p = scale[..., None] * P_k,   V_p = scale[..., None] * P_v

where ``scale`` = lambda * a (B x l) is the layer's gate (APT) or None (P-tuning v2). Queries come only from real
tokens; every real token may attend to every prefix slot; padding masks real keys only.

Two extensions serve other parts of the package without changing that arithmetic:

* per-row prefixes (B x l x d) with a ``prefix_mask`` (B x l): rows of one batch may carry different adapters,
  padded to the longest prefix (mixed-adapter serving);
* ``score_bias`` (B or 1 x H x n x n): an additive term on the real-key scores only, for families with relative
  position bias (MPNet, DeBERTa); prefix columns take plain content scores.
"""

from __future__ import annotations

import contextlib
import math
import sys

import torch
import torch.nn.functional as F

# How attention dropout is computed while training: "recompute" keeps only q, k, v and a seed for backward and
# recomputes the probabilities there (no B x H x n x (l+n) tensors kept per layer); "sdpa" lets
# scaled_dot_product_attention do it (on CPU its math path keeps three such tensors per layer; on GPUs its fused
# kernels handle dropout without them). "auto": recompute on CPU, sdpa elsewhere (BENCHMARKS.md).
_DROPOUT_IMPL = {"impl": "auto"}


@contextlib.contextmanager
def dropout_implementation(impl: str):
    """Choose how attention dropout is computed inside the block: "auto" (default), "recompute" or "sdpa".

    >>> with dropout_implementation("sdpa"):
    ...     pass
    """
    if impl not in ("auto", "recompute", "sdpa"):
        raise ValueError(f"dropout implementation must be 'auto', 'recompute' or 'sdpa', got {impl!r}")
    before = _DROPOUT_IMPL["impl"]
    _DROPOUT_IMPL["impl"] = impl
    try:
        yield
    finally:
        _DROPOUT_IMPL["impl"] = before


_DRAW_BITS = 16  # each keep/drop decision compares one 16-bit draw with a threshold
_LANES = 3  # 16-bit draws cut from each 64-bit word: its low 48 bits, which random_(0, 2**48) fills uniformly


def effective_dropout_p(p: float) -> float:
    """The drop rate the recomputed path really applies: ``p`` rounded to a multiple of 2**-16.

    >>> effective_dropout_p(0.1)  # 6554 / 65536
    0.100006103515625
    """
    return round(p * 2**_DRAW_BITS) / 2**_DRAW_BITS


def dropout_keep_mask(shape: tuple[int, ...], p: float, seed: int, device: torch.device) -> torch.Tensor:
    """The keep mask (True = kept) that ``seed`` stands for: drawn the same way in forward and backward.

    Drawn from 16-bit slices of 64-bit random words, three per word: on CPU that takes about half the time of
    ``torch.rand(shape) >= p`` (one float per element; 8 vs 16 ms for a 16 x 12 x 128 x 144 mask, one thread),
    and the mask is drawn twice per layer and step. The drop rate is ``effective_dropout_p(p)``.
    """
    numel = math.prod(shape)
    drops = round(p * 2**_DRAW_BITS)
    if drops <= 0 or numel == 0:
        return torch.ones(shape, dtype=torch.bool, device=device)
    if drops >= 2**_DRAW_BITS:
        return torch.zeros(shape, dtype=torch.bool, device=device)
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    words = torch.empty(-(-numel // _LANES), dtype=torch.int64, device=device).random_(0, 2**48, generator=generator)
    slices = words.view(torch.int16).view(-1, 4)  # memory order: little-endian machines put the low bits first
    low48 = slices[:, :_LANES] if sys.byteorder == "little" else slices[:, 4 - _LANES:]  # uniform, -32768..32767
    keep = low48 >= -(2 ** (_DRAW_BITS - 1)) + drops  # compared in place of copying the strided slices
    return keep.view(-1)[:numel].view(shape)


def _probabilities(q: torch.Tensor, k: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
    scores = (q @ k.transpose(-1, -2)).float()  # a fresh tensor (or a fresh float copy): changed in place below
    scores.mul_(1.0 / math.sqrt(q.shape[-1]))
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            scores.masked_fill_(~attn_mask, float("-inf"))
        else:
            scores.add_(attn_mask)
    return scores.softmax(-1)


class RecomputedDropoutAttention(torch.autograd.Function):
    """softmax(q k^T / sqrt(d) + mask) with dropout, times v; saves q, k, v and the dropout seed only.

    Same function as the math path with the same keep mask (``dropout_keep_mask(seed)``, scale
    1 / (1 - ``effective_dropout_p(p)``)); backward recomputes the probabilities and the mask instead of keeping
    them, trading a matmul and a softmax per layer for the three B x H x n x m tensors the math path stores.
    The 1 / (1 - p) scale is applied to the small B x H x n x dh results and the B x H x n x m work is done in
    place, so backward holds at most two such tensors at a time.
    """

    @staticmethod
    def forward(ctx, q, k, v, attn_mask, p: float, seed: int):  # noqa: D102
        probs = _probabilities(q, k, attn_mask)
        probs.mul_(dropout_keep_mask(probs.shape, p, seed, probs.device).view(torch.uint8))  # faster than masked_fill
        out = (probs.to(v.dtype) @ v).mul_(1.0 / (1.0 - effective_dropout_p(p)))
        ctx.save_for_backward(q, k, v, attn_mask)
        ctx.p, ctx.seed = p, seed
        return out

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        q, k, v, attn_mask = ctx.saved_tensors
        scale = 1.0 / (1.0 - effective_dropout_p(ctx.p))
        probs = _probabilities(q, k, attn_mask)
        keep = dropout_keep_mask(probs.shape, ctx.p, ctx.seed, probs.device).view(torch.uint8)  # 0 / 1
        kept_probs = (probs * keep).to(grad_out.dtype)
        grad_v = (kept_probs.transpose(-1, -2) @ grad_out).mul_(scale)
        del kept_probs
        # d loss / d probs, without the scale (applied once at the end): (grad_out v^T) on kept entries
        grad = (grad_out @ v.transpose(-1, -2)).float().mul_(keep)
        del keep
        # softmax backward, in place: probs * (g - sum(g * probs)), times the dropout scale
        grad.sub_((grad * probs).sum(-1, keepdim=True)).mul_(probs).mul_(scale)  # = d loss / d(scores + mask)
        del probs
        grad_mask = None
        if attn_mask is not None and attn_mask.dtype != torch.bool and ctx.needs_input_grad[3]:
            # a float mask carrying a score bias (MPNet, DeBERTa) may need its gradient: sum its broadcast dims
            grad_mask = grad
            for dim, size in enumerate(attn_mask.shape):
                if size == 1 and grad_mask.shape[dim] != 1:
                    grad_mask = grad_mask.sum(dim, keepdim=True)
            grad_mask = grad_mask.to(attn_mask.dtype)
            if grad_mask.data_ptr() == grad.data_ptr():
                grad_mask = grad_mask.clone()  # grad is scaled in place next
        grad_scores = grad.mul_(1.0 / math.sqrt(q.shape[-1])).to(q.dtype)
        return grad_scores @ k, grad_scores.transpose(-1, -2) @ q, grad_v, grad_mask, None, None


def _attend(q, k, v, attn_mask, dropout_p: float) -> torch.Tensor:
    """(B x H x n x dh) attention; dropout through RecomputedDropoutAttention when it is on and gradients flow."""
    needs_grad = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad
                                              or (attn_mask is not None and attn_mask.requires_grad))
    impl = _DROPOUT_IMPL["impl"]
    if impl == "auto":
        impl = "recompute" if q.device.type == "cpu" else "sdpa"
    if dropout_p > 0 and needs_grad and impl == "recompute":
        # the seed comes from torch's generator: set_seed and checkpoint recomputation reproduce it
        seed = int(torch.randint(0, 2**62, (1,)).item())
        return RecomputedDropoutAttention.apply(q, k, v, attn_mask, dropout_p, seed)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)


def gated_prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    num_heads: int,
    prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    gate: torch.Tensor | None = None,
    key_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    prefix_mask: torch.Tensor | None = None,
    score_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-head attention over [prefix ; real] keys and values.

    query, key, value: (B x n x d), already projected by the frozen encoder's own weights.
    prefix: (P_k, P_v), each (l x d) shared by every row or (B x l x d) per row; None for no prefix here.
    gate: (B x l) per-example scale of each prefix slot, shared across heads; None means 1.
    key_mask: (B x n) bool, True for real tokens; None when nothing is padded (lets SDPA use its fastest path).
    prefix_mask: (B x l) bool, True for the prefix slots a row uses; None means all.
    score_bias: added to the scores of real keys (broadcastable to B x H x n x n); None for none.
    Returns the attention context (B x n x d).

    >>> q = k = v = torch.randn(2, 5, 8)
    >>> gated_prefix_attention(q, k, v, num_heads=2, prefix=(torch.randn(3, 8), torch.randn(3, 8))).shape
    torch.Size([2, 5, 8])
    """
    batch, n, d = query.shape
    head_dim = d // num_heads
    if prefix is not None:
        prefix_key, prefix_value = prefix
        if prefix_key.dim() == 2:
            prefix_key = prefix_key.unsqueeze(0).expand(batch, -1, -1)
            prefix_value = prefix_value.unsqueeze(0).expand(batch, -1, -1)
        length = prefix_key.shape[1]
        if gate is not None:
            scale = gate.to(prefix_key.dtype).unsqueeze(-1)
            prefix_key, prefix_value = prefix_key * scale, prefix_value * scale
        key = torch.cat([prefix_key.to(key.dtype), key], dim=1)
        value = torch.cat([prefix_value.to(value.dtype), value], dim=1)
        if key_mask is not None or prefix_mask is not None:
            real = key_mask if key_mask is not None else key.new_ones(batch, n, dtype=torch.bool)
            slots = prefix_mask if prefix_mask is not None else real.new_ones(batch, length)
            key_mask = torch.cat([slots.bool(), real.bool()], dim=1)
        if score_bias is not None:
            score_bias = F.pad(score_bias, (length, 0))  # zero bias on prefix columns
        if query.untyped_storage().nbytes() > query.numel() * query.element_size():
            # key and value are fresh tensors now; a query that is a view of a fused q/k/v projection would keep
            # all of that buffer alive for backward (twice its own size in dead k/v columns): save a compact copy
            query = query.contiguous()

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, num_heads, head_dim).transpose(1, 2)

    attn_mask = None if key_mask is None else key_mask[:, None, None, :]
    if score_bias is not None:
        bias = score_bias.to(query.dtype)
        attn_mask = bias if attn_mask is None else torch.where(attn_mask, bias, float("-inf"))
    context = _attend(split_heads(query), split_heads(key), split_heads(value), attn_mask, dropout_p)
    return context.transpose(1, 2).reshape(batch, n, d)
