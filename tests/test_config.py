import pytest

from adaprefix import PrefixConfig


def test_defaults_per_method():
    apt = PrefixConfig()
    assert (apt.method, apt.token_gate, apt.layer_gate, apt.gate_pooling, apt.position_offset) == (
        "apt", True, True, "mean", "none"
    )
    pt2 = PrefixConfig(method="prefix")
    assert (pt2.token_gate, pt2.layer_gate) == (False, False)
    assert PrefixConfig(method="finetune").layer_lengths(3) == [0, 0, 0]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(method="lora"), "method"),
        (dict(prefix_len=-1), "prefix_len"),
        (dict(prefix_len=[4, -2]), "prefix_len"),
        (dict(prefix_len=[]), "prefix_len"),
        (dict(prefix_len=2.5), "prefix_len"),
        (dict(prefix_len=True), "prefix_len"),
        (dict(method="prefix", token_gate=True), "token_gate"),
        (dict(method="finetune", layer_gate=True), "layer_gate"),
        (dict(token_gate="yes"), "token_gate"),
        (dict(gate_pooling="max"), "gate_pooling"),
        (dict(position_offset="left"), "position_offset"),
        (dict(prefix_dropout=1.5), "prefix_dropout"),
        (dict(layer_gate_init="one"), "layer_gate_init"),
        (dict(prefix_projection_hidden=0), "prefix_projection_hidden"),
        (dict(init_std=0), "init_std"),
        (dict(attention_dropout=-0.1), "attention_dropout"),
    ],
)
def test_bad_values_raise_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PrefixConfig(**kwargs)


def test_per_layer_lengths_must_match_layer_count():
    cfg = PrefixConfig(prefix_len=[1, 0, 3])
    assert cfg.layer_lengths(3) == [1, 0, 3]
    with pytest.raises(ValueError, match="3 entries but the encoder has 6 layers"):
        cfg.layer_lengths(6)


def test_round_trip_and_unknown_fields():
    cfg = PrefixConfig(method="prefix", prefix_len=[2, 3], prefix_projection=True)
    assert PrefixConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown PrefixConfig fields"):
        PrefixConfig.from_dict({"method": "apt", "prefix_length": 3})
