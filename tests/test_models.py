"""The listings' shapes and parameter counts against the book, and every knob builds and trains."""

import numpy as np
import pytest

from mnistlab.core import presets
from mnistlab.core.config import Config
from mnistlab.core.errors import ConfigError
from mnistlab.ml import models

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


KNOBS = [
    dict(family="mlp", hidden_units=(32, 16, 8), activation="elu"),
    dict(family="mlp", hidden_units=(16,), activation="selu", kernel_l1=1e-4, bias_l2=1e-4, activity_l1=1e-5),
    dict(
        family="mlp",
        hidden_units=(16,),
        activation="softplus",
        optimizer="sgd",
        momentum=0.9,
        nesterov=True,
        decay=1e-4,
    ),
    dict(family="mlp", hidden_units=(16,), activation="sigmoid", optimizer="rmsprop", rho=0.8, learning_rate=0.01),
    dict(family="mlp", hidden_units=(16,), activation="tanh", output_activation="sigmoid", loss="binary_crossentropy"),
    dict(family="mlp", hidden_units=(16,), activation="linear", output_activation="linear", loss="mean_squared_error"),
    dict(family="mlp", hidden_units=(16,), output_activation="tanh", loss="mean_absolute_error"),
    dict(family="cnn", filters=(8, 8), padding="same", strides=(2, 2), pool_after=(0,), pooling="average"),
    dict(family="cnn", filters=(8, 8), kernel_size=(3, 5), pool_size=(1, 2), pool_after=(0, 1)),
    dict(family="cnn", filters=(8,), batch_norm=True, batch_norm_momentum=0.9, pool_after=(), kernel_l2=1e-3),
    dict(family="rnn", cell="lstm", rnn_units=(16,)),
    dict(family="rnn", cell="gru", rnn_units=(16, 8), recurrent_dropout=0.1),
    dict(family="rnn", cell="lstm", rnn_units=(8,), bidirectional=True),
]


def _hidden(model):
    return [
        layer
        for layer in model.layers
        if layer.name not in ("logits", "output") and not layer.name.startswith(("image", "flatten"))
    ]


def _regularizer(config_value):
    """(l1, l2) of a serialized L1L2 regularizer, or None."""
    if config_value is None:
        return None
    return (config_value["config"]["l1"], config_value["config"]["l2"])


def assert_knobs_reached_the_model(config, model):
    """Each knob, read back from the built Keras model and its optimizer: a knob silently ignored fails."""
    layers = _hidden(model)
    configs = [layer.get_config() for layer in layers]
    assert model.get_layer("output").get_config()["activation"] == config.output_activation
    assert model.loss == config.loss
    optimizer = model.optimizer.get_config()
    assert type(model.optimizer).__name__.lower() == config.optimizer
    rate = model.optimizer.learning_rate if not config.decay else None
    if config.decay:
        schedule = optimizer["learning_rate"]
        assert schedule["class_name"] == "InverseTimeDecay" and schedule["config"]["decay_rate"] == pytest.approx(
            config.decay
        )
        assert schedule["config"]["initial_learning_rate"] == pytest.approx(config.resolved_learning_rate)
    else:
        assert float(rate) == pytest.approx(config.resolved_learning_rate)
    for key in {
        "sgd": ("momentum", "nesterov"),
        "rmsprop": ("rho", "momentum", "epsilon"),
        "adam": ("beta_1", "beta_2", "epsilon"),
    }[config.optimizer]:
        assert optimizer[key] == pytest.approx(getattr(config, key)), key
    weighted = [c for layer, c in zip(layers, configs) if "kernel_regularizer" in c]
    for c in weighted:
        for kind in ("kernel", "bias", "activity"):
            l1, l2 = getattr(config, f"{kind}_l1"), getattr(config, f"{kind}_l2")
            found = _regularizer(c.get(f"{kind}_regularizer"))
            assert (found is None and not (l1 or l2)) or found == pytest.approx((l1, l2)), (kind, found)
    if config.family == "mlp":
        dense = [c for layer, c in zip(layers, configs) if type(layer).__name__ == "Dense"]
        assert [c["units"] for c in dense] == list(config.hidden_units)
        assert {c["activation"] for layer, c in zip(layers, configs) if type(layer).__name__ == "Activation"} == {
            config.activation
        }
        assert [c["rate"] for layer, c in zip(layers, configs) if type(layer).__name__ == "Dropout"] == (
            [config.dropout_rate] * len(config.hidden_units) if config.dropout_rate else []
        )
    elif config.family == "cnn":
        convs = [c for layer, c in zip(layers, configs) if type(layer).__name__ == "Conv2D"]
        assert [c["filters"] for c in convs] == list(config.filters)
        assert {(tuple(c["kernel_size"]), tuple(c["strides"]), c["padding"]) for c in convs} == {
            (config.kernel_size, config.strides, config.padding)
        }
        pool_class = {"max": "MaxPooling2D", "average": "AveragePooling2D"}[config.pooling]
        names = [type(layer).__name__ for layer in layers]
        assert names.count(pool_class) == len(config.pool_after) and {
            tuple(c["pool_size"]) for layer, c in zip(layers, configs) if type(layer).__name__ == pool_class
        } <= {config.pool_size}
        assert ("BatchNormalization" in names) == config.batch_norm
        assert {c["momentum"] for layer, c in zip(layers, configs) if type(layer).__name__ == "BatchNormalization"} <= {
            config.batch_norm_momentum
        }
    else:
        recurrent = [layer.forward_layer if type(layer).__name__ == "Bidirectional" else layer for layer in layers]
        cell_class = {"simple": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[config.cell]
        assert [type(layer).__name__ for layer in recurrent] == [cell_class] * len(config.rnn_units)
        assert [layer.units for layer in recurrent] == list(config.rnn_units)
        assert all(type(layer).__name__ == "Bidirectional" for layer in layers) == config.bidirectional
        assert {
            (layer.get_config()["dropout"], layer.get_config()["recurrent_dropout"], layer.get_config()["activation"])
            for layer in recurrent
        } == {(config.dropout_rate, config.recurrent_dropout, config.activation)}


@pytest.mark.parametrize("knobs", KNOBS, ids=lambda k: "-".join(f"{v}" for v in k.values())[:60])
def test_every_knob_reaches_the_model_and_trains(knobs, mini):
    from mnistlab.ml import data

    config = Config(batch_size=32, **knobs)
    model = models.build_model(config)
    assert_knobs_reached_the_model(config, model)
    x = data.prepare_images(mini.x_train[:64], config.input_shape)
    y = data.one_hot(mini.y_train[:64])
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_the_knob_check_can_fail():
    """The checker itself: a model built from other knobs than the config's is caught."""
    config = Config(family="mlp", hidden_units=(16,), activation="selu", optimizer="rmsprop", rho=0.8)
    with pytest.raises(AssertionError):
        assert_knobs_reached_the_model(config, models.build_model(config.replace(rho=0.9)))
    with pytest.raises(AssertionError):
        assert_knobs_reached_the_model(config, models.build_model(config.replace(activation="elu")))


def expected_parameters(config):
    """The parameter count of CONFIG's network worked out by hand, layer by layer (weights + biases), as the chapter counts them."""
    classes = 10
    if config.family == "mlp":
        widths = (28 * 28, *config.hidden_units, classes)
        return sum(inputs * units + units for inputs, units in zip(widths, widths[1:]))
    if config.family == "cnn":
        assert not config.batch_norm and config.padding == "valid" and config.strides == (1, 1), config
        (height, width), channels, total = (28, 28), 1, 0
        for index, filters in enumerate(config.filters):
            kernel_height, kernel_width = config.kernel_size
            total += kernel_height * kernel_width * channels * filters + filters
            height, width, channels = height - kernel_height + 1, width - kernel_width + 1, filters
            if index in config.pool_after:
                height, width = height // config.pool_size[0], width // config.pool_size[1]
        return total + height * width * channels * classes + classes
    assert config.cell == "simple" and not config.bidirectional, config
    total, inputs = 0, 28  # one 28-pixel row per time step
    for units in config.rnn_units:
        total += (inputs + units + 1) * units  # input weights, recurrent weights, bias
        inputs = units
    return total + inputs * classes + classes


@pytest.mark.parametrize("name", list(presets.all_presets()))
def test_every_preset_builds_the_network_it_declares(name):
    """Each listing and table row, read back from the built model layer by layer, and its size counted by hand."""
    config = presets.get(name).build_config()
    model = models.build_model(config)
    assert_knobs_reached_the_model(config, model)
    assert model.count_params() == expected_parameters(config)


def test_geometry_that_cannot_be_built_is_a_config_error():
    with pytest.raises(ConfigError, match="cannot be built"):
        models.build_model(Config(family="cnn", filters=(8, 8, 8, 8), kernel_size=5, pool_after=(0, 1, 2)))


def test_bf16_policy_keeps_float32_output():
    model = models.build_model(Config(precision="bf16", hidden_units=(16,)))
    assert model.layers[1].compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"


def test_family_defaults_follow_the_family():
    """`--set model=rnn` on the default (MLP) config builds tanh cells, as Keras and Listing 1.5.1 do."""
    for overrides, expected in (
        (["family=rnn"], "tanh"),
        (["family=rnn", "cell=lstm"], "tanh"),
        (["family=cnn"], "relu"),
        (["family=rnn", "activation=relu"], "relu"),
    ):
        config = Config().with_overrides(overrides)
        model = models.build_model(config)
        activations = [
            layer.get_config()["activation"]
            for layer in model.layers
            if "activation" in layer.get_config() and layer.name not in ("logits", "output")
        ]
        assert activations and set(activations) == {expected}, (overrides, activations)
    # A user's own choice survives a later change of family.
    assert Config(activation="elu").replace(model="rnn").activation == "elu"
