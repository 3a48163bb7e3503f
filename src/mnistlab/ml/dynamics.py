"""What happens inside a network while it trains, measured at epoch 0 (before training) and after each epoch.

For each weight (a layer's kernel, recurrent kernel, bias...): its norm, the norm of the epoch's update over
the norm before it (about 1e-3 is the practitioners' "sane learning rate"), and the norm of the loss' gradient
on a fixed probe batch. For each layer's output on the same probe batch: mean and standard deviation, the share
of units that never fire (ReLU: output 0 for every probe image) or the share of outputs saturated (sigmoid,
tanh, softmax: within 1% of their range from a limit), and a histogram. Histograms of the weights too.

The probe batch is PROBE_SIZE training images chosen by the run's seed with a generator of its own, and the
measurements call the model with training=False: recording changes nothing of the training (same seed, same
run, dynamics or not). `DynamicsRecorder` is the Keras callback; `measure` works on any built model.
"""

import math
import re
import time

import numpy as np

from mnistlab.ml import gradients

FORMAT = 1
PROBE_SIZE = 256
HISTOGRAM_BINS = 32
HISTOGRAM_VALUES = 65_536
PROBE_STREAM = 1_861  # the probe's own random stream beside the seed: no other draw of the run is moved by it
SATURATION_MARGIN = 0.01  # "saturated": within 1% of the output's range from one of its limits
# Output ranges of the activations that saturate, and those whose silent units are "never firing".
SATURATING = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "softmax": (0.0, 1.0)}
NEVER_FIRING = ("relu", "relu6")
# Layers whose output at inference is their input unchanged (or only reshaped): their figures would repeat
# the layer before, so they are left out.
PASS_THROUGH = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "Flatten", "Reshape")


def probe_indices(count, seed):
    """The probe batch's indexes into the COUNT training images: PROBE_SIZE of them (all, when fewer), sorted."""
    generator = np.random.default_rng([seed, PROBE_STREAM])
    return np.sort(generator.choice(count, size=min(PROBE_SIZE, count), replace=False))


def activation_name(layer):
    """The name of the function that makes LAYER's output ("relu", "softmax"...), or None where the output is
    not one function's (pooling, batch norm, an LSTM's gated state)."""
    kind = type(layer).__name__
    if kind not in ("Activation", "Dense", "Conv1D", "Conv2D", "SimpleRNN"):
        return None
    function = getattr(layer, "activation", None)
    name = getattr(function, "__name__", None)
    return None if name in (None, "linear") else name


def unit_shares(outputs, activation):
    """{"dead": share of units (the last axis) that are 0 for every probe image and position, or None;
    "saturated": share of the outputs within SATURATION_MARGIN of a limit, or None} for ACTIVATION's OUTPUTS.
    The same figures as `layer_figures` computes where the outputs are, from `shares_of` its reductions."""
    import keras

    outputs = np.asarray(outputs, np.float32)
    (_, _, unit_max, saturated, _) = layer_figures(keras.ops.convert_to_tensor(outputs), activation, 1)
    return shares_of(np.asarray(unit_max), np.asarray(saturated), outputs.size, activation)


def layer_figures(output, activation, stride):
    """What the record keeps of one layer's OUTPUT on the probe batch, reduced with keras.ops where it is (inside
    the backend's compiled forward pass): [mean, std, each unit's largest output (the last axis; a unit whose
    largest is 0 never fires), how many outputs are within SATURATION_MARGIN of a limit (a count: exact, where a
    float32 mean would not be), every STRIDE-th value (for the histogram)]. A share that does not apply to
    ACTIVATION is 0 here and None in the record."""
    import keras

    ops = keras.ops
    output = ops.cast(output, "float32")
    flat = ops.reshape(output, (-1,))
    unit_max = ops.max(ops.reshape(output, (-1, output.shape[-1])), axis=0)
    if activation in SATURATING:
        low, high = SATURATING[activation]
        margin = SATURATION_MARGIN * (high - low)
        saturated = ops.sum(ops.cast(ops.logical_or(flat <= low + margin, flat >= high - margin), "int32"))
    else:
        saturated = ops.zeros((), dtype="int32")
    return [ops.mean(flat), ops.std(flat), unit_max, saturated, flat[::stride]]


def shares_of(unit_max, saturated, size, activation):
    """The record's {"dead", "saturated"} from `layer_figures`' reductions of SIZE outputs (None where the share
    does not apply)."""
    return {
        "dead": float(np.mean(unit_max <= 0.0)) if activation in NEVER_FIRING else None,
        "saturated": int(saturated) / size if activation in SATURATING else None,
    }


def histogram_stride(size):
    """Every how many of SIZE values the histogram takes: at most HISTOGRAM_VALUES of them, evenly strided. A CNN
    layer's output on the probe batch is 11 million values, whose full histogram would cost a tenth of a second
    an epoch for a picture the sample draws the same."""
    return -(-size // HISTOGRAM_VALUES) if size > HISTOGRAM_VALUES else 1


def histogram(values):
    """{"range": [low, high], "counts": [...]}: HISTOGRAM_BINS equal bins from the values' least to largest
    (the edges are numpy.linspace(low, high, HISTOGRAM_BINS + 1)) of every `histogram_stride`-th value;
    non-finite values are left out."""
    values = np.asarray(values).ravel()
    values = values[:: histogram_stride(values.size)]
    values = values[np.isfinite(values)].astype(np.float64)
    if values.size == 0:
        return {"range": [0.0, 0.0], "counts": [0] * HISTOGRAM_BINS}
    low, high = float(values.min()), float(values.max())
    counts, _ = np.histogram(values, bins=HISTOGRAM_BINS, range=(low, high if high > low else low + 1e-12))
    return {"range": [low, high], "counts": counts.tolist()}


def _finite(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _norm(array):
    return float(np.sqrt(np.sum(np.square(np.asarray(array, dtype=np.float64)))))


class Probe:
    """The fixed measurements of one model on one probe batch: gradients of the loss and each layer's output."""

    def __init__(self, model, loss, probe_x, probe_y):
        import keras

        self.model = model
        self.x = np.asarray(probe_x)
        self.y = np.asarray(probe_y, dtype=np.float32)
        self.weights = list(model.trainable_variables)  # the gradient function's order
        self.layer_names = stable_layer_names(model)
        named = {
            id(variable): f"{self.layer_names[layer.name]}/{variable.name}"
            for layer in model.layers
            for variable in layer.trainable_weights
        }
        self.weight_names = [named.get(id(variable), variable.name) for variable in self.weights]
        self.layers = [layer for layer in model.layers if type(layer).__name__ not in PASS_THROUGH]
        # One call gives every layer's output (the layers share the model's weights), reduced where it is computed.
        activations = [activation_name(layer) for layer in self.layers]
        self._sizes = [len(self.x) * math.prod(layer.output.shape[1:]) for layer in self.layers]
        strides = [histogram_stride(size) for size in self._sizes]
        self._figures = gradients.reduced_forward_function(
            keras.Model(model.input, [layer.output for layer in self.layers]),
            lambda outputs: [
                layer_figures(output, activation, stride)
                for output, activation, stride in zip(outputs, activations, strides)
            ],
        )
        self._gradient = gradients.loss_gradient_function(model, loss)
        self._previous = None

    def describe(self):
        """What the record's figures are of: the weights (name, layer, shape) and the layers (name, kind, activation)."""
        return {
            "weights": [
                {"name": name, "shape": list(variable.shape)} for name, variable in zip(self.weight_names, self.weights)
            ],
            "layers": [
                {
                    "name": self.layer_names[layer.name],
                    "kind": type(layer).__name__,
                    "activation": activation_name(layer),
                }
                for layer in self.layers
            ],
        }

    def measure(self, epoch, started=None):
        """The figures at EPOCH (0: before training): {"epoch", "weights": {name: ...}, "layers": {name: ...}};
        their "seconds" count from STARTED (a `time.perf_counter()`; default now), such as when the probe was built."""
        started = time.perf_counter() if started is None else started
        values = [np.asarray(variable.numpy(), dtype=np.float32) for variable in self.weights]
        gradient_norms = [_norm(gradient) for gradient in self._gradient(self.x, self.y)]
        weights = {}
        for index, (name, value) in enumerate(zip(self.weight_names, values)):
            norm = _norm(value)
            ratio = None
            if self._previous is not None:
                before = _norm(self._previous[index])
                ratio = _finite(_norm(value - self._previous[index]) / before) if before > 0 else None
            weights[name] = {
                "norm": _finite(norm),
                "update_ratio": ratio,
                "gradient_norm": _finite(gradient_norms[index]),
                "histogram": histogram(value),
            }
        self._previous = values
        layers = {}
        for layer, size, (mean, std, unit_max, saturated, sample) in zip(
            self.layers, self._sizes, self._figures(self.x)
        ):
            layers[self.layer_names[layer.name]] = {
                "mean": _finite(mean),
                "std": _finite(std),
                **shares_of(np.asarray(unit_max), saturated, size, activation_name(layer)),
                "histogram": histogram(sample),  # already strided
            }
        return {
            "epoch": epoch,
            "seconds": round(time.perf_counter() - started, 4),
            "weights": weights,
            "layers": layers,
        }


def stable_layer_names(model):
    """{Keras' name: the name in the record} for each layer: a name Keras made up ("dense_7": its counter runs
    over every model of the process) becomes the one a fresh process gives ("dense", "dense_1": the class, then
    its count in this model), so that runs of one setup name their layers alike; a name given stays."""
    names, seen = {}, {}
    for layer in model.layers:
        made_up = _snake_case(type(layer).__name__)
        count = seen.get(made_up, 0)
        seen[made_up] = count + 1
        auto = re.fullmatch(rf"{re.escape(made_up)}(_\d+)?", layer.name)
        names[layer.name] = (made_up if count == 0 else f"{made_up}_{count}") if auto else layer.name
    return names


def _snake_case(class_name):
    """Keras' own rule for a layer's default name: "SimpleRNN" -> "simple_rnn", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def record(probe, probe_size, seed, epochs):
    """The dynamics file's content: format, probe, what was measured and each epoch's figures."""
    return {
        "format": FORMAT,
        "probe": {"size": probe_size, "seed": seed, "bins": HISTOGRAM_BINS},
        **probe.describe(),
        "epochs": epochs,
    }


def recorder_callback(model, config, x_train, y_train, write):
    """A Keras callback that measures at the start of training and after each epoch, and hands the whole record
    so far to WRITE (the run directory's dynamics file) each time."""
    import keras

    indexes = probe_indices(len(x_train), config.seed)

    class DynamicsRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []
            self.probe = None

        def on_train_begin(self, logs=None):
            started = time.perf_counter()  # epoch 0's seconds count the probe's building too
            self.probe = Probe(model, config.loss, x_train[indexes], y_train[indexes])
            self._measure(0, started)

        def on_epoch_end(self, epoch, logs=None):
            self._measure(epoch + 1)

        def _measure(self, epoch, started=None):
            self.epochs.append(self.probe.measure(epoch, started))
            write(record(self.probe, len(indexes), config.seed, self.epochs))

    return DynamicsRecorder()
