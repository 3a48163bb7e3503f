"""The one registry of model builders: MLP, CNN and RNN from a validated Config.

Importing this module imports Keras, so the backend must be chosen first
(`mnistlab.ml.backend.activate`). Every builder starts from `keras.Input` with
the family's input shape and lets Keras compute every other shape.
"""

import pathlib
import shutil

import keras
import numpy as np
from keras import layers, regularizers

from mnistlab.core import fileio
from mnistlab.core.config import FAMILIES, Config
from mnistlab.core.errors import ConfigError, MnistlabError
from mnistlab.ml.data import NUM_CLASSES

# Inference needs no small batches; large ones are faster.
EVAL_BATCH_SIZE = 1024

BUILDERS = {}


def register(family):
    def decorator(builder):
        BUILDERS[family] = builder
        return builder

    return decorator


def _regularizer(l1, l2):
    return regularizers.L1L2(l1=l1, l2=l2) if (l1 or l2) else None


def _regularizer_kwargs(config):
    """Weight initializer and kernel/bias/activity regularizers for the hidden layers (the book regularizes those, not the output)."""
    return {
        "kernel_initializer": config.kernel_initializer,
        "kernel_regularizer": _regularizer(config.kernel_l1, config.kernel_l2),
        "bias_regularizer": _regularizer(config.bias_l1, config.bias_l2),
        "activity_regularizer": _regularizer(config.activity_l1, config.activity_l2),
    }


def _dtype(config):
    """Each layer's dtype policy: bf16 mixed precision per layer, never Keras' process-wide policy.

    None is Keras' default (float32, or what ~/.keras/keras.json says).
    """
    return "mixed_bfloat16" if config.precision == "bf16" else None


def _classifier_head(features, inputs, config):
    outputs = layers.Dense(NUM_CLASSES, name="logits", dtype=_dtype(config))(features)
    # Kept in float32 under mixed precision so that the loss sees full-precision probabilities.
    outputs = layers.Activation(config.output_activation, dtype="float32", name="output")(outputs)
    return keras.Model(inputs, outputs, name=config.family)


@register("mlp")
def build_mlp(config):
    """Listing 1.3.2 generalised: Dense -> Activation -> Dropout per hidden layer."""
    inputs = keras.Input(shape=config.input_shape, name="image")
    dtype = _dtype(config)
    x = inputs
    for units in config.hidden_units:
        x = layers.Dense(units, dtype=dtype, **_regularizer_kwargs(config))(x)
        x = layers.Activation(config.activation, dtype=dtype)(x)
        if config.dropout_rate:
            x = layers.Dropout(config.dropout_rate, dtype=dtype)(x)
    return _classifier_head(x, inputs, config)


@register("cnn")
def build_cnn(config):
    """Listing 1.4.1 generalised: Conv2D blocks with optional pooling and batch norm, then Dropout."""
    inputs = keras.Input(shape=config.input_shape, name="image")
    pool_layer = layers.MaxPooling2D if config.pooling == "max" else layers.AveragePooling2D
    dtype = _dtype(config)
    x = inputs
    for index, filters in enumerate(config.filters):
        conv_kwargs = dict(
            kernel_size=config.kernel_size,
            strides=config.strides,
            padding=config.padding,
            dtype=dtype,
            **_regularizer_kwargs(config),
        )
        if config.batch_norm:
            # Batch norm sits between the convolution and its activation, and
            # makes the convolution's bias redundant.
            x = layers.Conv2D(filters, use_bias=False, **conv_kwargs)(x)
            x = layers.BatchNormalization(momentum=config.batch_norm_momentum, dtype=dtype)(x)
            x = layers.Activation(config.activation, dtype=dtype)(x)
        else:
            x = layers.Conv2D(filters, activation=config.activation, **conv_kwargs)(x)
        if index in config.pool_after:
            x = pool_layer(pool_size=config.pool_size, dtype=dtype)(x)
    x = layers.Flatten(dtype=dtype)(x)
    if config.dropout_rate:
        x = layers.Dropout(config.dropout_rate, dtype=dtype)(x)
    return _classifier_head(x, inputs, config)


RNN_CELLS = {"simple": layers.SimpleRNN, "lstm": layers.LSTM, "gru": layers.GRU}


@register("rnn")
def build_rnn(config):
    """Listing 1.5.1 generalised: SimpleRNN, LSTM or GRU, stacked and/or bidirectional."""
    inputs = keras.Input(shape=config.input_shape, name="image_rows")
    dtype = _dtype(config)
    x = inputs
    for index, units in enumerate(config.rnn_units):
        is_last = index == len(config.rnn_units) - 1
        recurrent = RNN_CELLS[config.cell](
            units,
            activation=config.activation,
            dropout=config.dropout_rate,
            recurrent_dropout=config.recurrent_dropout,
            # Every layer but the last passes its whole sequence to the next one.
            return_sequences=not is_last,
            dtype=dtype,
            **_regularizer_kwargs(config),
        )
        x = layers.Bidirectional(recurrent, dtype=dtype)(x) if config.bidirectional else recurrent(x)
    return _classifier_head(x, inputs, config)


if set(BUILDERS) != set(FAMILIES):
    raise RuntimeError(f"model registry {sorted(BUILDERS)} does not match config families {FAMILIES}")


def build_optimizer(config):
    learning_rate = config.resolved_learning_rate
    if config.decay:
        # Keras 2's `decay` argument: lr / (1 + decay * iterations).
        learning_rate = keras.optimizers.schedules.InverseTimeDecay(
            learning_rate, decay_steps=1, decay_rate=config.decay
        )
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(
            learning_rate=learning_rate, beta_1=config.beta_1, beta_2=config.beta_2, epsilon=config.epsilon
        )
    return keras.optimizers.RMSprop(
        learning_rate=learning_rate, rho=config.rho, momentum=config.momentum, epsilon=config.epsilon
    )


# How each backend runs the training step; none of it changes what is learned
# (benchmarks/parity.py checks). Running 32 steps per call into the backend
# cuts the per-batch Python overhead (BENCHMARKS.md has the measurements);
# torch runs steps one by one either way.
STEPS_PER_EXECUTION = {"jax": 32, "tensorflow": 32, "torch": 1}


def compile_options(config, steps_per_epoch=None):
    """How the step runs; an epoch shorter than the steps per call gets one call per epoch
    (Keras' progress bar would otherwise count past the epoch's end, e.g. 32/17)."""
    steps = STEPS_PER_EXECUTION.get(keras.backend.backend(), 1)
    if steps_per_epoch:
        steps = max(1, min(steps, steps_per_epoch))
    return {"jit_compile": "auto", "steps_per_execution": steps}


def fit_steps_to_epoch(model, config, samples):
    """Lower the model's steps per call to the epoch's steps when the epoch is shorter (see compile_options)."""
    options = compile_options(config, steps_per_epoch=-(-samples // config.batch_size))
    model.steps_per_execution = options["steps_per_execution"]
    return options


def build_model(config: Config, compile=True):
    """Build (and compile) the model a config describes."""
    try:
        model = BUILDERS[config.family](config)
    except ValueError as error:
        # Keras finds impossible geometry (a 28x28 image shrunk below 1x1 by
        # kernels, strides and pools) when it computes the shapes; any other
        # ValueError is a bug and keeps its traceback.
        first_line = str(error).strip().splitlines()[0]
        if "negative" not in first_line.lower():
            raise
        raise ConfigError(
            f"this {config.family} config cannot be built: {first_line}; use padding=same, smaller kernels or fewer pooling layers"
        ) from None
    if compile:
        model.compile(
            loss=config.loss,
            optimizer=build_optimizer(config),
            # Explicit: the string "accuracy" would mean exact-match accuracy
            # with mean_squared_error and friends.
            metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
            **compile_options(config),
        )
    return model


def evaluate(model, inputs, one_hot_labels):
    """(loss, accuracy) of a compiled model on prepared inputs."""
    loss, accuracy = model.evaluate(inputs, one_hot_labels, batch_size=EVAL_BATCH_SIZE, verbose=0)
    return float(loss), float(accuracy)


def evaluate_and_predict(model, inputs, one_hot_labels):
    """(loss, accuracy, probabilities) from one pass over the inputs: `evaluate`'s two figures, computed
    from `predict`'s outputs as Keras' evaluate computes them.

    So a run gets its per-example predictions for free rather than for a second pass (whose
    compilation alone is a few percent of a short run). The accuracy is CategoricalAccuracy's,
    to the bit (a float32 count over a float32 total); the loss is the compiled loss per batch of
    EVAL_BATCH_SIZE, averaged weighted by batch size, plus the regularization penalties, as
    evaluate's loss tracker sums it (equal to float32 rounding: tests/test_seeds.py). A model
    with an activity penalty is evaluated by Keras (a second pass): see below.
    """
    import keras

    probabilities = np.asarray(model.predict(inputs, batch_size=EVAL_BATCH_SIZE, verbose=0))
    if any(getattr(layer, "activity_regularizer", None) is not None for layer in model.layers):
        # An activity penalty depends on each batch's activations, which predict does not keep:
        # only evaluate's own pass can add it (a second pass, for these configs alone).
        loss, accuracy = evaluate(model, inputs, one_hot_labels)
        return loss, accuracy, probabilities.astype(np.float64)
    one_hot_labels = np.asarray(one_hot_labels, dtype=probabilities.dtype)
    count = len(probabilities)
    correct = np.count_nonzero(probabilities.argmax(axis=1) == one_hot_labels.argmax(axis=1))
    accuracy = float(np.float32(correct) / np.float32(count))
    loss_function = keras.losses.get(model.loss)
    total = 0.0
    for start in range(0, count, EVAL_BATCH_SIZE):
        stop = min(start + EVAL_BATCH_SIZE, count)
        per_example = keras.ops.convert_to_numpy(loss_function(one_hot_labels[start:stop], probabilities[start:stop]))
        total += float(np.mean(per_example, dtype=np.float64)) * (stop - start)
    penalties = sum(float(keras.ops.convert_to_numpy(penalty)) for penalty in model.losses)
    # As a float32, like the figure evaluate reports.
    return float(np.float32(total / count + penalties)), accuracy, probabilities.astype(np.float64)


def predict(model, inputs):
    """Class probabilities (float64) for prepared inputs."""
    return np.asarray(model.predict(inputs, batch_size=EVAL_BATCH_SIZE, verbose=0), dtype=np.float64)


def summary_text(model):
    lines = []
    # 80 columns: a terminal's default width, so the Param # column is never cut.
    model.summary(print_fn=lambda line, **kwargs: lines.append(line), line_length=80)
    return "\n".join(lines)


def plot(model, path):
    """Write the model diagram (PNG or SVG, from the extension) with pydot and Graphviz.

    Written with pydot directly rather than keras.utils.plot_model, which
    returns an IPython image where IPython is installed (and fails for SVG).
    SVG gets no dpi: Graphviz would scale the drawing by dpi/72 inside an
    unscaled viewBox, cutting off its lower right part in browsers.
    """
    if shutil.which("dot") is None:
        raise MnistlabError(
            "Graphviz is not installed: apt-get install graphviz (Debian/Ubuntu) or brew install graphviz (macOS)"
        )
    export_format = pathlib.Path(path).suffix.lower().lstrip(".")
    dot = keras.utils.model_to_dot(model, show_shapes=True, show_layer_names=True, show_layer_activations=True, dpi=96)
    if export_format == "svg":
        # Removed, not set to None: pydot writes a None attribute as a bare `dpi` statement, which Graphviz draws as a node.
        dot.obj_dict["attributes"].pop("dpi", None)
    with fileio.atomic_path(path) as temp_path:
        dot.write(str(temp_path), format=export_format)
    return path
