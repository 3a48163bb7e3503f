import json

import pytest

from mnistlab.config import FAMILIES, INPUT_SHAPES, Config
from mnistlab.errors import ConfigError


def test_defaults_are_valid_and_round_trip():
    config = Config()
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_per_family(family):
    config = Config(family=family, dropout_rate=0.3, seed=7)
    restored = Config.from_dict(config.to_dict())
    assert restored == config
    assert config.input_shape == INPUT_SHAPES[family]


def test_family_default_activation():
    assert Config(family="mlp").activation == "relu"
    assert Config(family="rnn").activation == "tanh"
    assert Config(family="mlp", activation="none").activation == "linear"


def test_to_dict_leaves_out_other_families_keys():
    values = Config(family="mlp").to_dict()
    assert "hidden_units" in values and "filters" not in values and "cell" not in values


def test_overrides_parse_types():
    config = Config(family="cnn").with_overrides(["filters=32,64", "kernel_size=3x5", "pool_size=1,2", "batch_norm=true", "padding=same", "learning_rate=0.01", "pool_after=0"])
    assert config.filters == (32, 64)
    assert config.kernel_size == (3, 5)
    assert config.pool_size == (1, 2)
    assert config.batch_norm is True
    assert config.padding == "same"
    assert config.learning_rate == 0.01
    assert Config(family="cnn").with_overrides(["kernel_size=5"]).kernel_size == (5, 5)


def test_unknown_key_suggests_the_right_one():
    with pytest.raises(ConfigError, match="did you mean dropout_rate"):
        Config().with_overrides(["dropout=0.5"])


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("optimizer=adamw", "optimizer must be one of sgd, adam, rmsprop"),
        ("activation=gelu", "activation must be one of"),
        ("dropout_rate=1.5", "dropout_rate must be in [0, 1)"),
        ("epochs=0", "epochs must be >= 1"),
        ("epochs=ten", "epochs must be an integer"),
        ("hidden_units=", "hidden_units needs at least one positive width"),
        ("batch_norm=maybe", "batch_norm must be true or false"),
        ("loss=hinge", "loss must be one of"),
        ("noequals", "--set takes key=value"),
        ("filters=32", "filters applies to cnn models"),
    ],
)
def test_bad_overrides_are_rejected_with_choices(assignment, message):
    with pytest.raises(ConfigError) as info:
        Config(family="mlp").with_overrides([assignment])
    assert message in str(info.value)


def test_pool_after_must_name_conv_layers():
    with pytest.raises(ConfigError, match="pool_after"):
        Config(family="cnn", filters=(32, 32), pool_after=(3,))


def test_categorical_crossentropy_needs_softmax():
    with pytest.raises(ConfigError, match="softmax"):
        Config(output_activation="sigmoid")
    # Other losses take any output.
    assert Config(output_activation="sigmoid", loss="mean_squared_error").output_activation == "sigmoid"


def test_hash_ignores_seed_dataset_backend_but_not_knobs():
    base = Config()
    assert base.config_hash() == base.replace(seed=3, dataset="mnist-mini", backend="torch").config_hash()
    assert base.config_hash() != base.replace(dropout_rate=0.2).config_hash()
    assert base.config_hash() != base.replace(epochs=3).config_hash()


def _as_cli_text(value):
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_key_round_trips_through_its_command_line_text(family):
    config = Config(family=family, limit=500, learning_rate=0.02)
    for key, value in config.to_dict().items():
        value = getattr(config, key)
        assert getattr(config.with_overrides([f"{key}={_as_cli_text(value)}"]), key) == value, key
