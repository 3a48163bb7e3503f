"""The listings' shapes and parameter counts against the book, and every knob builds and trains."""

import numpy as np
import pytest

from mnistlab import models, presets
from mnistlab.config import Config
from mnistlab.errors import ConfigError

LISTINGS = {"listing-1.3.2": "1.3.2", "listing-1.4.1": "1.4.1", "listing-1.5.1": "1.5.1"}


@pytest.mark.parametrize("name", LISTINGS)
def test_listing_parameter_counts_match_the_book(name):
    listing = presets.book()["listings"][LISTINGS[name]]
    model = models.build_model(presets.get(name).build_config())
    assert model.count_params() == listing["total_params"]
    # Per-layer counts in the book's order.
    counted = [layer.count_params() for layer in model.layers if layer.count_params()]
    assert counted == list(listing["param_breakdown"].values())


def test_cnn_output_shapes_match_the_book():
    expected = list(presets.book()["listings"]["1.4.1"]["output_shapes"].values())
    model = models.build_model(presets.get("listing-1.4.1").build_config())
    shapes = [tuple(layer.output.shape[1:]) for layer in model.layers[1:7]]
    assert shapes == [tuple(s) for s in expected]


def test_summary_text_has_the_total():
    text = models.summary_text(models.build_model(presets.get("listing-1.3.2").build_config()))
    assert "269,322" in text and "Dropout" in text


def test_every_preset_builds():
    for name, preset in presets.all_presets().items():
        model = models.build_model(preset.build_config(), compile=False)
        assert model.output.shape[-1] == 10, name


KNOBS = [
    dict(family="mlp", hidden_units=(32, 16, 8), activation="elu"),
    dict(family="mlp", hidden_units=(16,), activation="selu", kernel_l1=1e-4, bias_l2=1e-4, activity_l1=1e-5),
    dict(family="mlp", hidden_units=(16,), activation="softplus", optimizer="sgd", momentum=0.9, nesterov=True, decay=1e-4),
    dict(family="mlp", hidden_units=(16,), activation="sigmoid", optimizer="rmsprop", rho=0.8, learning_rate=0.01),
    dict(family="mlp", hidden_units=(16,), activation="tanh", output_activation="sigmoid", loss="binary_crossentropy"),
    dict(family="mlp", hidden_units=(16,), activation="linear", output_activation="linear", loss="mean_squared_error"),
    dict(family="mlp", hidden_units=(16,), output_activation="tanh", loss="mean_absolute_error"),
    dict(family="cnn", filters=(8, 8), padding="same", strides=(2, 2), pool_after=(0,), pooling="average"),
    dict(family="cnn", filters=(8, 8), kernel_size=(3, 5), pool_size=(1, 2), pool_after=(0, 1)),
    dict(family="cnn", filters=(8,), batch_norm=True, pool_after=(), kernel_l2=1e-3),
    dict(family="rnn", cell="lstm", rnn_units=(16,)),
    dict(family="rnn", cell="gru", rnn_units=(16, 8), recurrent_dropout=0.1),
    dict(family="rnn", cell="lstm", rnn_units=(8,), bidirectional=True),
]


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: "-".join(f"{v}" for v in k.values())[:60])
def test_every_knob_builds_and_takes_a_training_step(knobs, mini):
    from mnistlab import data

    config = Config(batch_size=32, **knobs)
    model = models.build_model(config)
    x = data.prepare_images(mini.x_train[:64], config.input_shape)
    y = data.one_hot(mini.y_train[:64])
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_knob_specific_layers_are_present():
    names = lambda config: [type(layer).__name__ for layer in models.build_model(Config(**config), compile=False).layers]  # noqa: E731
    assert "AveragePooling2D" in names(dict(family="cnn", pooling="average"))
    assert "BatchNormalization" in names(dict(family="cnn", batch_norm=True))
    assert "Bidirectional" in names(dict(family="rnn", bidirectional=True))
    assert names(dict(family="rnn", cell="gru", rnn_units=(8, 8))).count("GRU") == 2
    assert "LSTM" in names(dict(family="rnn", cell="lstm"))


def test_geometry_that_cannot_be_built_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot be built"):
        models.build_model(Config(family="cnn", filters=(8, 8, 8, 8), kernel_size=5, pool_after=(0, 1, 2)))


def test_bf16_policy_keeps_float32_output():
    model = models.build_model(Config(precision="bf16", hidden_units=(16,)))
    assert model.layers[1].compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"


def test_family_defaults_follow_the_family():
    """`--set model=rnn` on the default (MLP) config builds tanh cells, as Keras and Listing 1.5.1 do."""
    for overrides, expected in ((["family=rnn"], "tanh"), (["family=rnn", "cell=lstm"], "tanh"), (["family=cnn"], "relu"), (["family=rnn", "activation=relu"], "relu")):
        config = Config().with_overrides(overrides)
        model = models.build_model(config)
        activations = [layer.get_config()["activation"] for layer in model.layers if "activation" in layer.get_config() and layer.name not in ("logits", "output")]
        assert activations and set(activations) == {expected}, (overrides, activations)
    # A user's own choice survives a later change of family.
    assert Config(activation="elu").replace(model="rnn").activation == "elu"
