"""The DeBERTa-v2/v3 family (issue 12), on random small configs only: no DeBERTa weights can be had here.

Equality with the HF forward at prefix length 0 over c2p / p2c / both, shared or separate position projections,
log position buckets, max_relative_positions, layer-normed relative embeddings, the conv layer and absolute
positions; prefix columns taking plain content scores (written-out softmax); padding; training."""

import math

import pytest
import torch
from transformers import AutoModel, DebertaV2Config

from adaprefix import PrefixConfig, TaskModel, attach
from adaprefix.backbones.deberta import DebertaV2Family, log_bucket
from conftest import padded_batch, randomize_adapter, split_heads, written_out_prefix_attention

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=80, relative_attention=True, position_biased_input=False, type_vocab_size=0)
CONFIGS = {
    # DeBERTa-v3 shape: shared keys, log buckets, normed relative embeddings
    "v3": dict(pos_att_type=["p2c", "c2p"], share_att_key=True, position_buckets=8, max_relative_positions=20,
               norm_rel_ebd="layer_norm"),
    # DeBERTa-v2 xlarge shape: separate projections, conv layer, buckets
    "v2-conv": dict(pos_att_type=["p2c", "c2p"], share_att_key=False, position_buckets=4, max_relative_positions=-1,
                    conv_kernel_size=3, norm_rel_ebd="layer_norm"),
    "c2p-only-clamped": dict(pos_att_type=["c2p"], share_att_key=False, position_buckets=-1, max_relative_positions=4),
    "p2c-only": dict(pos_att_type=["p2c"], share_att_key=True, position_buckets=-1, max_relative_positions=6),
    "absolute-and-types": dict(pos_att_type=["c2p", "p2c"], share_att_key=False, position_buckets=-1,
                               max_relative_positions=16, position_biased_input=True, type_vocab_size=2),
    "content-only": dict(relative_attention=False, pos_att_type=["c2p", "p2c"], position_biased_input=True),
}


def tiny_deberta(name: str = "v3", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModel.from_config(DebertaV2Config(**{**TINY, **CONFIGS[name]})).eval()


def real_rows(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Max difference over real tokens: transformers gives padded query rows an all-masked (uniform) softmax,
    we let them attend to real keys; neither reaches a real token."""
    return float(((a - b).abs() * mask[..., None]).max())


def test_log_bucket_matches_transformers():
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    rel = torch.arange(-300, 301)
    for size, max_pos in [(8, 20), (4, 80), (256, 512)]:
        assert torch.equal(log_bucket(rel, size, max_pos), make_log_bucket_position(rel, size, max_pos).long())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_zero_prefix_equals_hf(name):
    encoder = tiny_deberta(name)
    ids, mask, types = padded_batch(lengths=(12, 7, 3))  # 12 tokens: beyond the buckets' exact range and clamps
    types = types if encoder.config.type_vocab_size > 0 else None
    with torch.no_grad():
        ref = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)
        out = attach(encoder, PrefixConfig(method="apt", prefix_len=0)).eval()(ids, mask, types)
    assert out.pooler_output is None
    assert real_rows(out.last_hidden_state, ref.last_hidden_state, mask) < 1e-5


def test_prefix_columns_take_plain_content_scores():
    """One layer against a written-out softmax: prefix columns score q.P_k / sqrt(3 d_h); real columns add c2p and
    p2c (recovered as HF's disentangled bias at the same positions)."""
    encoder = tiny_deberta("v2-conv")
    family = DebertaV2Family()
    ids, mask, _ = padded_batch(lengths=(9, 6, 3))
    batch, n = ids.shape
    heads, d = encoder.config.num_attention_heads, encoder.config.hidden_size
    dh, length = d // heads, 3
    g = torch.Generator().manual_seed(3)
    pk, pv = torch.randn(length, d, generator=g), torch.randn(length, d, generator=g)
    with torch.no_grad():
        hidden = family.embed(encoder, ids, None, 0)
        ctx = family.prepare(encoder, ids, mask)
        layer = encoder.encoder.layer[1]  # no conv after layer 1
        got = family.layer_forward(encoder, layer, hidden, mask.bool(), (pk, pv), None, 0.0, ctx)

        attn = layer.attention.self
        q, k, v = (split_heads(proj(hidden), heads) for proj in (attn.query_proj, attn.key_proj, attn.value_proj))
        # transformers' own disentangled bias (c2p + p2c, already scaled) for the real tokens
        flat = lambda x: x.reshape(batch * heads, n, dh)  # noqa: E731
        rel_bias = attn.disentangled_attention_bias(flat(q), flat(k), ctx.relative, ctx.rel_embeddings, 3)
        rel_bias = rel_bias.view(batch, heads, n, n)
        assert rel_bias.abs().max() > 1e-3
        # prefix columns: content only
        context = written_out_prefix_attention(q, k, v, pk, pv, math.sqrt(dh * 3), rel_bias, mask.bool())
        attn_out = layer.attention.output(context, hidden)
        expected = layer.output(layer.intermediate(attn_out), attn_out)
    assert (got - expected).abs().max() < 1e-5


@pytest.mark.parametrize("name", ["v3", "v2-conv"])
def test_padded_batch_equals_each_example_alone(name):
    ids, mask, _ = padded_batch(lengths=(9, 6, 3))
    adapted = attach(tiny_deberta(name), PrefixConfig(method="apt", prefix_len=[3, 0, 5])).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        batch = adapted(ids, mask)
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            alone = adapted(ids[row : row + 1, :n], mask[row : row + 1, :n])
            assert (alone.last_hidden_state[0] - batch.last_hidden_state[row, :n]).abs().max() < 1e-5


def test_prefix_changes_the_output():
    ids, mask, _ = padded_batch()
    encoder = tiny_deberta()
    adapted = attach(encoder, PrefixConfig(method="prefix", prefix_len=4)).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        plain = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        out = adapted(ids, mask).last_hidden_state
    assert real_rows(out, plain, mask) > 1e-2


@pytest.mark.parametrize("method", ["apt", "prefix"])
def test_training_updates_only_the_adapter(method):
    encoder = tiny_deberta("v2-conv")
    encoder.config.hidden_dropout_prob = 0.1
    frozen = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = TaskModel(attach(encoder, PrefixConfig(method=method, prefix_len=[3, 2, 0])), "classification",
                      label_names=["a", "b"])
    ids, mask, _ = padded_batch()
    labels = torch.tensor([0, 1, 1])
    with torch.no_grad():
        before = model.eval()(ids, mask).logits.clone()
    model.train()
    optimiser = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    for step in range(3):
        optimiser.zero_grad()
        model(ids, mask, labels=labels).loss.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
            assert not missing, f"no gradient for {missing}"
        assert all(p.grad is None for p in encoder.parameters())
        optimiser.step()
    with torch.no_grad():
        after = model.eval()(ids, mask).logits
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, frozen[name]), f"backbone weight {name} changed"
    assert (after - before).abs().max() > 1e-4


def test_unsupported_head_size_is_a_clear_error():
    torch.manual_seed(0)
    encoder = AutoModel.from_config(DebertaV2Config(**{**TINY, **CONFIGS["v3"]}, attention_head_size=4))
    ids, mask, _ = padded_batch()
    with pytest.raises(ValueError, match="attention_head_size"):
        attach(encoder, PrefixConfig(prefix_len=2))(ids, mask)


# Training with attention dropout > 0 takes attention.py's recomputed-dropout path: the score_bias (c2p + p2c)
# must get its gradient there too (it did not before 58f19c6).
def test_gradients_flow_through_the_relative_terms_with_attention_dropout():
    encoder = tiny_deberta("v3")
    model = TaskModel(attach(encoder, PrefixConfig(method="finetune", attention_dropout=0.1)), "classification",
                      label_names=["a", "b"]).train()
    ids, mask, _ = padded_batch()
    model(ids, mask, labels=torch.tensor([0, 1, 1])).loss.backward()
    grad = encoder.encoder.rel_embeddings.weight.grad
    assert grad is not None and grad.abs().sum() > 0
