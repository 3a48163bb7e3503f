"""Run configuration: one flat, validated dataclass that every run writes beside itself.

A config says everything needed to rebuild and retrain a run: the model
family and its knobs, the training settings, the seed, dataset and backend.

Each knob is declared once, as a field of `Config` made with `knob(...)`:
its type (the annotation), default, help, choices, aliases, bounds, the
family it belongs to and the names it had before. Everything else reads
that declaration: validation and `--set` parsing here, `mnistlab keys`, the
CLI's help, the table in docs/configuration.md and the JSON schema of the
lab's form (`json_schema()`). Unknown keys and bad values raise
`ConfigError` naming the valid ones.

Why a dataclass with field metadata rather than pydantic: the core install
(and `config_hash()`, which old runs are found by) must not depend on the
web extra, and the knobs are flat scalars, tuples of ints and choices, for
which the schema is a short function; the rules live in one declaration all
the same.

No Keras import here: the CLI validates a config before it picks a backend.
"""

import dataclasses
import difflib
import hashlib
import json
import math
import typing
from collections.abc import Mapping

from mnistlab.core.errors import ConfigError

# Each family's input, as Keras sees one sample. The data module reshapes
# uint8 28x28 images to these; the model builders take them as keras.Input.
INPUT_SHAPES = {
    "mlp": (784,),
    "cnn": (28, 28, 1),
    "rnn": (28, 28),  # 28 timesteps of 28 features: one image row per step
}
FAMILIES = tuple(INPUT_SHAPES)
ACTIVATIONS = ("relu", "elu", "selu", "softplus", "sigmoid", "tanh", "linear")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "tanh", "linear")
LOSSES = ("categorical_crossentropy", "mean_squared_error", "mean_absolute_error", "binary_crossentropy")
OPTIMIZERS = ("sgd", "adam", "rmsprop")
# Keras' default learning rates, used when learning_rate is not set.
DEFAULT_LEARNING_RATES = {"sgd": 0.01, "adam": 0.001, "rmsprop": 0.001}
BACKENDS = ("auto", "jax", "tensorflow", "torch")
PRECISIONS = ("float32", "bf16")
RUN_STATUSES = ("queued", "running", "done", "failed", "diverged", "interrupted")  # queued: waiting in the lab
# Choices of the commands around a config, kept here so the CLI lists them without importing their modules.
EXECUTORS = ("local", "ray")
RUNTIMES = ("keras", "onnx")
EXPORT_FORMATS = ("onnx", "keras", "saved_model")
ATTRIBUTION_METHODS = ("auto", "integrated-gradients", "occlusion")  # mnistlab explain --method

# Upper bounds of the numeric knobs. Every knob has one, so that a launch from the lab or a sweep file
# cannot ask for a model or a run that no machine holds (hidden_units=10**9, epochs=10**30). They are
# generous for 28x28 images: far above the book's sizes, far below what exhausts a laptop.
IMAGE_SIDE = 28  # kernels, strides and pools are at most the image
MAX_UNITS = 8192  # per Dense or recurrent layer (the book: 256)
MAX_FILTERS = 1024  # per Conv2D layer (the book: 64)
MAX_LAYERS = 16  # hidden, conv or recurrent layers (the book: 2 or 3)
MAX_EPOCHS = 1000  # the book: 20
MAX_BATCH_SIZE = 60_000  # a whole MNIST training set
MAX_TRAINING_IMAGES = 10_000_000
MAX_PENALTY = 10.0  # L1/L2 factors (the book: 1e-4 to 1e-3)
MAX_SEED = 2**32 - 1  # NumPy's seeds are 32-bit
MAX_PARAMETERS = 50_000_000  # the whole model (the book's: 75,530 to 269,322); each knob's bound alone allows billions


@dataclasses.dataclass(frozen=True)
class Knob:
    """The declaration of one config key; `Config`'s fields carry one each (see `knob`)."""

    name: str
    type: object  # the field's annotation: str, int, float, bool, tuple[int, ...], tuple[int, int], or X | None
    default: object
    help: str
    choices: tuple[str, ...] = ()
    family: str | None = None  # the family it applies to; None: every family
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)  # other spellings of a choice
    minimum: float | None = None  # bounds, inclusive unless exclusive_*
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    family_defaults: Mapping[str, object] = dataclasses.field(
        default_factory=dict
    )  # a default of None means this family's
    min_items: int = 0  # lists: how many entries at least
    max_items: int | None = None  # lists: how many entries at most
    renamed_from: tuple[str, ...] = ()  # earlier names, still read from old run directories and sweep files
    run_setting: bool = False  # where and how it runs: recorded, not part of config_hash()
    # False for a knob added after runs were recorded: at its default it is
    # left out of config_hash(), so those runs keep their hash (and resume).
    hashed_at_default: bool = True

    @property
    def base_type(self):
        return _base_type(self.type)[0]

    @property
    def optional(self):
        return _base_type(self.type)[1]

    @property
    def is_pair(self):
        """tuple[int, int]: one number means a square (kernel_size=3 is 3x3)."""
        args = typing.get_args(self.base_type)
        return typing.get_origin(self.base_type) is tuple and len(args) == 2 and args[1] is not Ellipsis

    @property
    def is_list(self):
        return typing.get_origin(self.base_type) is tuple and not self.is_pair

    def type_name(self):
        base = self.base_type
        name = "pair" if self.is_pair else "ints" if self.is_list else getattr(base, "__name__", str(base))
        return name + (" or none" if self.optional else "")

    def canonical(self, text):
        """A choice as written, lower-cased, with its aliases resolved."""
        lowered = text.lower()
        return self.aliases.get(lowered, lowered)

    def bounds_text(self):
        """'in [0, 1)', '>= 1', '> 0'... or '' when unbounded."""
        low = (
            f"[{_number(self.minimum)}"
            if self.minimum is not None
            else f"({_number(self.exclusive_minimum)}"
            if self.exclusive_minimum is not None
            else None
        )
        high = (
            f"{_number(self.maximum)}]"
            if self.maximum is not None
            else f"{_number(self.exclusive_maximum)})"
            if self.exclusive_maximum is not None
            else None
        )
        if low and high:
            return f"in {low}, {high}"
        if low:
            return (">= " if low[0] == "[" else "> ") + low[1:]
        if high:
            return ("<= " if high[-1] == "]" else "< ") + high[:-1]
        return ""

    def within_bounds(self, value):
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.exclusive_maximum is not None and value >= self.exclusive_maximum)
        )


def knob(default, help, **declaration):
    """A `Config` field declared as a knob: knob(0.0, "dropout after each hidden layer", minimum=0, exclusive_maximum=1)."""
    return dataclasses.field(default=default, metadata={"knob": {"help": help, **declaration}})


def _number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclasses.dataclass(frozen=True)
class Config:
    family: str = knob(
        "mlp",
        "model family: mlp (Listing 1.3.2), cnn (1.4.1) or rnn (1.5.1)",
        choices=FAMILIES,
        renamed_from=("model",),
    )

    # Layers, shared by the families that have them.
    activation: str | None = knob(
        None,
        "hidden layers' activation (default: relu for mlp/cnn, tanh for rnn, as Keras and the book)",
        choices=ACTIVATIONS,
        aliases={"none": "linear"},
        family_defaults={"mlp": "relu", "cnn": "relu", "rnn": "tanh"},
    )
    dropout_rate: float = knob(
        0.0, "dropout after each hidden layer (rnn: on the inputs of each step)", minimum=0, exclusive_maximum=1
    )
    kernel_l1: float = knob(0.0, "L1 penalty on hidden layers' weights", minimum=0, maximum=MAX_PENALTY)
    kernel_l2: float = knob(0.0, "L2 penalty on hidden layers' weights", minimum=0, maximum=MAX_PENALTY)
    bias_l1: float = knob(0.0, "L1 penalty on hidden layers' biases", minimum=0, maximum=MAX_PENALTY)
    bias_l2: float = knob(0.0, "L2 penalty on hidden layers' biases", minimum=0, maximum=MAX_PENALTY)
    activity_l1: float = knob(0.0, "L1 penalty on hidden layers' outputs", minimum=0, maximum=MAX_PENALTY)
    activity_l2: float = knob(0.0, "L2 penalty on hidden layers' outputs", minimum=0, maximum=MAX_PENALTY)
    output_activation: str = knob("softmax", "activation of the 10-unit output layer", choices=OUTPUT_ACTIVATIONS)
    kernel_initializer: str = knob(
        "glorot_uniform",
        "how the hidden layers' weights start (Keras' default, glorot_uniform; he_* suit relu)",
        choices=("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "lecun_uniform"),
        hashed_at_default=False,
    )

    # MLP: one Dense layer per entry.
    hidden_units: tuple[int, ...] = knob(
        (256, 256),
        "one Dense layer per width, e.g. 256,256",
        family="mlp",
        minimum=1,
        maximum=MAX_UNITS,
        min_items=1,
        max_items=MAX_LAYERS,
    )

    # CNN: one Conv2D per entry of `filters`; pooling after the conv layers
    # whose 0-based indexes are in `pool_after`.
    filters: tuple[int, ...] = knob(
        (64, 64, 64),
        "one Conv2D layer per entry, e.g. 64,64,64",
        family="cnn",
        minimum=1,
        maximum=MAX_FILTERS,
        min_items=1,
        max_items=MAX_LAYERS,
    )
    kernel_size: tuple[int, int] = knob(
        (3, 3),
        "convolution kernel, one number (square) or a pair, e.g. 3 or 3,5",
        family="cnn",
        minimum=1,
        maximum=IMAGE_SIDE,
    )
    strides: tuple[int, int] = knob(
        (1, 1), "convolution strides, one number or a pair", family="cnn", minimum=1, maximum=IMAGE_SIDE
    )
    padding: str = knob(
        "valid", "valid (shrinks the map) or same (keeps its size)", family="cnn", choices=("valid", "same")
    )
    pool_after: tuple[int, ...] = knob(
        (0, 1),
        "0-based conv layer indexes followed by pooling",
        family="cnn",
        minimum=0,
        maximum=MAX_LAYERS - 1,
        max_items=MAX_LAYERS,
    )
    pool_size: tuple[int, int] = knob(
        (2, 2), "pooling window, one number or a pair", family="cnn", minimum=1, maximum=IMAGE_SIDE
    )
    pooling: str = knob(
        "max", "max or average pooling", family="cnn", choices=("max", "average"), aliases={"avg": "average"}
    )
    batch_norm: bool = knob(False, "batch normalization between each convolution and its activation", family="cnn")
    batch_norm_momentum: float = knob(
        0.99,
        "how slowly batch norm's moving mean and variance (used at test time) follow the batches (Keras: 0.99; "
        "a short training needs less, e.g. 0.9)",
        family="cnn",
        minimum=0,
        exclusive_maximum=1,
        hashed_at_default=False,
    )

    # RNN: one recurrent layer per entry of `rnn_units` (more than one = stacked).
    cell: str = knob(
        "simple", "recurrent cell: simple (SimpleRNN), lstm or gru", family="rnn", choices=("simple", "lstm", "gru")
    )
    rnn_units: tuple[int, ...] = knob(
        (256,),
        "one recurrent layer per width; more than one = stacked",
        family="rnn",
        minimum=1,
        maximum=MAX_UNITS,
        min_items=1,
        max_items=MAX_LAYERS,
    )
    bidirectional: bool = knob(False, "read the rows both ways (Bidirectional wrapper)", family="rnn")
    recurrent_dropout: float = knob(0.0, "dropout on the recurrent state", family="rnn", minimum=0, exclusive_maximum=1)

    # Training.
    loss: str = knob("categorical_crossentropy", "training loss", choices=LOSSES)
    optimizer: str = knob("adam", "sgd, adam or rmsprop", choices=OPTIMIZERS)
    learning_rate: float | None = knob(
        None,
        "step size (default: Keras' for the optimizer: sgd 0.01, adam/rmsprop 0.001)",
        exclusive_minimum=0,
        maximum=1e6,
    )
    momentum: float = knob(0.0, "sgd and rmsprop momentum", minimum=0, maximum=1)
    nesterov: bool = knob(False, "sgd: Nesterov momentum")
    decay: float = knob(0.0, "Keras 2's decay: lr / (1 + decay * step)", minimum=0, maximum=1)
    beta_1: float = knob(0.9, "adam: first-moment decay", exclusive_minimum=0, exclusive_maximum=1)
    beta_2: float = knob(0.999, "adam: second-moment decay", exclusive_minimum=0, exclusive_maximum=1)
    rho: float = knob(0.9, "rmsprop: decay of the squared-gradient average", exclusive_minimum=0, exclusive_maximum=1)
    epsilon: float = knob(1e-7, "adam and rmsprop: numerical stability term", exclusive_minimum=0, maximum=1)
    batch_size: int = knob(128, "samples per gradient step", minimum=1, maximum=MAX_BATCH_SIZE)
    epochs: int = knob(20, "passes over the training data", minimum=1, maximum=MAX_EPOCHS)
    validation_split: float = knob(
        0.1,
        "fraction of the training data held out for validation (never the test set)",
        minimum=0,
        exclusive_maximum=1,
    )
    limit: int | None = knob(None, "train on only the first N training images", minimum=1, maximum=MAX_TRAINING_IMAGES)
    precision: str = knob(
        "float32",
        "float32, or bf16 mixed precision",
        choices=PRECISIONS,
        aliases={"fp32": "float32", "bfloat16": "bf16", "mixed_bfloat16": "bf16"},
    )

    # Where and how it runs: recorded, but not part of config_hash().
    seed: int = knob(
        0, "random seed: same seed, backend and data give the same run", minimum=0, maximum=MAX_SEED, run_setting=True
    )
    dataset: str = knob(
        "auto", "mnist, fashion-mnist, mnist-mini, auto, an idx directory or a .npz file", run_setting=True
    )
    backend: str = knob("auto", "Keras backend: auto, jax, tensorflow or torch", choices=BACKENDS, run_setting=True)

    # ------------------------------------------------------------------

    def __post_init__(self):
        for field in dataclasses.fields(self):
            try:
                object.__setattr__(self, field.name, _coerce(KNOBS[field.name], getattr(self, field.name)))
            except ConfigError as error:
                error.field = error.field or field.name
                raise
        for spec in KNOBS.values():
            if spec.family_defaults and getattr(self, spec.name) is None:
                object.__setattr__(self, spec.name, spec.family_defaults[self.family])
        self._validate()

    def _validate(self):
        """The rules that tie two knobs together (each knob's own rules are in its declaration)."""
        if self.optimizer == "sgd" and self.momentum >= 1:
            raise ConfigError(f"momentum must be < 1, got {self.momentum}", field="momentum")
        bad_pools = [i for i in self.pool_after if not 0 <= i < len(self.filters)]
        if bad_pools:
            raise ConfigError(
                f"pool_after holds conv layer indexes 0..{len(self.filters) - 1}, got {list(self.pool_after)}",
                field="pool_after",
            )
        if self.family == "cnn":
            self._check_geometry()
        parameters = self.parameter_estimate()
        if parameters > MAX_PARAMETERS:
            width = {"mlp": "hidden_units", "cnn": "filters", "rnn": "rnn_units"}[self.family]
            raise ConfigError(
                f"this {self.family} has about {parameters:,} parameters; mnistlab builds at most {MAX_PARAMETERS:,} (the book's have 75,530 to 269,322): use fewer or narrower layers",
                field=width,
            )
        if self.loss == "categorical_crossentropy" and self.output_activation != "softmax":
            raise ConfigError(
                f"categorical_crossentropy needs output_activation=softmax (got {self.output_activation}); use a mean_squared_error or mean_absolute_error loss with other outputs",
                field="output_activation",
            )

    def _feature_maps(self):
        """(height, width, channels) after each conv layer and its pooling, as Keras computes them (pooling: valid,
        strides = its window); a side below 1 means the layer cannot be built."""
        side, maps = [IMAGE_SIDE, IMAGE_SIDE], []
        for index, filters in enumerate(self.filters):
            for axis in (0, 1):
                kernel, stride = self.kernel_size[axis], self.strides[axis]
                side[axis] = (
                    (side[axis] - kernel) // stride + 1 if self.padding == "valid" else -(-side[axis] // stride)
                )
            maps.append((side[0], side[1], filters, "conv"))
            if index in self.pool_after and min(side) >= 1:
                side = [(side[axis] - self.pool_size[axis]) // self.pool_size[axis] + 1 for axis in (0, 1)]
                maps.append((side[0], side[1], filters, "pool"))
        return maps

    def _check_geometry(self):
        """A CNN that shrinks the 28x28 image below one pixel is refused here, naming the knob, not in Keras."""
        for number, (height, width, _, kind) in enumerate(self._feature_maps()):
            if min(height, width) < 1:
                layer = sum(1 for *_, made in self._feature_maps()[: number + 1] if made == "conv")
                what = f"conv layer {layer}" if kind == "conv" else f"the pooling after conv layer {layer}"
                raise ConfigError(
                    f"this cnn config cannot be built: {what} leaves the 28x28 image no pixels (kernel {self.kernel_size}, strides {self.strides}, "
                    f"padding {self.padding}, pool {self.pool_size} after {list(self.pool_after)}); use padding=same, smaller kernels or fewer pooling layers",
                    field="kernel_size" if kind == "conv" else "pool_size",
                )

    def parameter_estimate(self) -> int:
        """The model's parameter count, computed from the knobs as Keras' layers count them (batch norm included)."""
        if self.family == "mlp":
            widths = [INPUT_SHAPES["mlp"][0], *self.hidden_units]
            return sum((before + 1) * after for before, after in zip(widths, widths[1:])) + (widths[-1] + 1) * 10
        if self.family == "cnn":
            total, channels = 0, 1
            for height, width, filters, kind in self._feature_maps():
                if kind == "conv":
                    total += (
                        self.kernel_size[0] * self.kernel_size[1] * channels + (0 if self.batch_norm else 1)
                    ) * filters + (4 * filters if self.batch_norm else 0)
                    channels = filters
                flat = max(height, 0) * max(width, 0) * filters
            return total + (flat + 1) * 10
        gates = {"simple": 1, "lstm": 4, "gru": 3}[self.cell]
        total, features = 0, INPUT_SHAPES["rnn"][1]
        for units in self.rnn_units:
            one_way = gates * (features + units + (2 if self.cell == "gru" else 1)) * units
            total += one_way * (2 if self.bidirectional else 1)
            features = units * (2 if self.bidirectional else 1)
        return total + (features + 1) * 10

    # ------------------------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        return INPUT_SHAPES[self.family]

    @property
    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LEARNING_RATES[self.optimizer]

    def to_dict(self, all_families: bool = False) -> dict:
        """Plain JSON-able dict; other families' keys are left out unless asked."""
        result = {}
        for spec in KNOBS.values():
            if spec.family and spec.family != self.family and not all_families:
                continue
            value = getattr(self, spec.name)
            result[spec.name] = list(value) if isinstance(value, tuple) else value
        return result

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        return cls(**_known(_renamed(values)))

    def replace(self, **changes) -> "Config":
        changes = _known(_renamed(changes))
        if (
            "family" in changes
            and "activation" not in changes
            and self.activation == KNOBS["activation"].family_defaults[self.family]
        ):
            # The old family's default activation is not a choice the user
            # made: the new family gets its own (an LSTM is tanh, not relu).
            changes["activation"] = None
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> "Config":
        """Apply `key=value` strings (the CLI's --set) and return the new config."""
        changes = {}
        for assignment in assignments:
            if "=" not in assignment:
                raise ConfigError(f"--set takes key=value, got {assignment!r}", field="set")
            key, raw = (part.strip() for part in assignment.split("=", 1))
            try:
                key = next(iter(_known(_renamed({key: raw}))))
            except ConfigError as error:
                error.field = "set"
                raise
            try:
                changes[key] = parse_value(key, raw)
            except ConfigError as error:
                error.field = key
                raise
        family = changes.get("family", self.family)
        for key in changes:
            owner = KNOBS[key].family
            if owner and owner != family:
                raise ConfigError(
                    f"{key} applies to {owner} models, but this config builds a {family}; set family={owner} too or drop {key}",
                    field=key,
                )
        return self.replace(**changes)

    def config_hash(self) -> str:
        """What was trained: every key but the run settings (seed, dataset, backend: the store keys those separately).

        Hashed under the keys' first names, so that runs recorded before a key
        was renamed (model -> family) keep their hash and still resume; knobs
        added later are left out at their default for the same reason.
        """
        content = {}
        for key, value in self.to_dict().items():
            spec = KNOBS[key]
            if spec.run_setting or (not spec.hashed_at_default and getattr(self, key) == spec.default):
                continue
            content[spec.renamed_from[0] if spec.renamed_from else key] = value
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def run_key(self, dataset_hash: str) -> str:
        """What makes two runs the same run: config hash, dataset content, backend and seed."""
        return f"{self.config_hash()}:{dataset_hash[:16]}:{self.backend}:{self.seed}"

    def batch_norm_note(self, steps: int) -> str | None:
        """Why a short batch-norm training can test badly, or None: its moving averages, which the test uses,
        still lean on their start (mean 0, variance 1) after STEPS updates at this momentum."""
        if self.family != "cnn" or not self.batch_norm:
            return None
        weight_of_start = self.batch_norm_momentum**steps
        if weight_of_start < 0.05:
            return None
        return (
            f"batch norm's moving statistics, which the test uses, had {steps} training steps at momentum {self.batch_norm_momentum:g}: "
            f"{100 * weight_of_start:.0f}% of them is still their starting value, so test accuracy can be far below training's; "
            f"train more epochs or --set batch_norm_momentum=0.9"
        )

    def describe(self) -> str:
        """A short human description of the model, e.g. 'mlp 256-256 relu dropout 0.45'."""
        if self.family == "mlp":
            layers = "-".join(map(str, self.hidden_units))
        elif self.family == "cnn":
            # Every geometry knob that differs from Listing 1.4.1's, so two CNNs never read the same.
            layers = "conv " + "-".join(map(str, self.filters)) + " " + "x".join(map(str, self.kernel_size))
            if self.strides != (1, 1):
                layers += " stride " + "x".join(map(str, self.strides))
            if self.padding != "valid":
                layers += f" {self.padding}"
            if self.pool_after:
                layers += (
                    f" {self.pooling}-pool "
                    + "x".join(map(str, self.pool_size))
                    + " after "
                    + ",".join(str(i + 1) for i in self.pool_after)
                )
            if self.batch_norm:
                layers += " batchnorm"
        else:
            layers = ("bi-" if self.bidirectional else "") + f"{self.cell} " + "-".join(map(str, self.rnn_units))
        parts = [self.family, layers, self.activation]
        if self.dropout_rate:
            parts.append(f"dropout {self.dropout_rate:g}")
        if self.kernel_l2:
            parts.append(f"l2 {self.kernel_l2:g}")
        if self.kernel_l1:
            parts.append(f"l1 {self.kernel_l1:g}")
        parts.append(self.optimizer)
        return " ".join(p for p in parts if p)


# The declarations, read once from Config's fields: everything below and the
# modules around a config (CLI help, `keys`, docs, the lab's form) use these.
KNOBS: dict[str, Knob] = {
    field.name: Knob(name=field.name, type=field.type, default=field.default, **field.metadata["knob"])
    for field in dataclasses.fields(Config)
}
VALID_KEYS = tuple(KNOBS)
RUN_KEYS = tuple(name for name, spec in KNOBS.items() if spec.run_setting)
CHOICES = {name: spec.choices for name, spec in KNOBS.items() if spec.choices}
KEY_FAMILY = {name: spec.family for name, spec in KNOBS.items() if spec.family}
DEFAULT_ACTIVATIONS = dict(KNOBS["activation"].family_defaults)
RENAMED_KEYS = {old: name for name, spec in KNOBS.items() for old in spec.renamed_from}


def _renamed(values):
    return {RENAMED_KEYS.get(key, key): value for key, value in values.items()}


def _known(values):
    """VALUES, or a ConfigError naming the first unknown key and the nearest known one."""
    for key in values:
        if key not in KNOBS:
            close = difflib.get_close_matches(key, VALID_KEYS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown config key {_shown_text(key)}{hint}; valid keys: {', '.join(VALID_KEYS)}")
    return values


def _base_type(annotation):
    """int | None -> (int, True); tuple[int, ...] -> (tuple[int, ...], False)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return annotation, False


def parse_value(key: str, raw: str):
    """Parse a --set string for `key` into a value of the knob's type (checked by Config)."""
    spec = KNOBS[key]
    text = raw.strip()
    if spec.optional and text.lower() in ("none", "null", "") and text.lower() not in spec.aliases:
        return None
    base = spec.base_type
    try:
        if spec.is_pair or spec.is_list:
            items = [item for item in text.strip("[]()").replace("x", ",").split(",") if item.strip()]
            return tuple(int(item) for item in items)
        if base is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{key} must be {_kind(spec)}, got {_shown_text(raw)}") from None
    return text


def _shown_text(text, limit=40):
    """A user's text in an error message: whole when short, its start and length when not (a message is one line)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[:limit]}... ({len(text):,} characters)"


def _kind(spec):
    if spec.is_pair or spec.is_list:
        return "comma-separated integers, e.g. 256,256"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(spec.base_type, "a string")


def _coerce(spec, value):
    """Bring a value given in Python, JSON or --set text to the knob's type, and check it against the declaration."""
    key, base = spec.name, spec.base_type
    if isinstance(value, str) and spec.choices:
        value = spec.canonical(value)
    if value is None:
        if spec.optional:
            return None
        raise ConfigError(f"{key} cannot be empty")
    if isinstance(value, str) and base is not str:
        value = parse_value(key, value)
    if spec.is_pair or spec.is_list:
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{key} must be a list of integers, got {value!r}")
        value = tuple(value)
        if spec.is_pair:
            if len(value) == 1:
                value = value * 2  # a single number means a square
            if len(value) != 2:
                raise ConfigError(f"{key} takes one number or a pair, got {list(value)}")
            if not all(spec.within_bounds(v) for v in value):
                raise ConfigError(f"{key} entries must be {spec.bounds_text()}, got {list(value)}")
        elif len(value) < spec.min_items:
            raise ConfigError(f"{key} needs at least one positive width, got {list(value)}")
        elif spec.max_items is not None and len(value) > spec.max_items:
            raise ConfigError(f"{key} takes at most {spec.max_items} entries, got {len(value)}")
        elif not all(spec.within_bounds(v) for v in value):
            raise ConfigError(f"{key} entries must be {spec.bounds_text()}, got {_shown_list(value)}")
        return value
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if base is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:  # an integer too large for a float (JSON allows 10**400)
            raise ConfigError(f"{key} must be {spec.bounds_text()}, got a number too large") from None
        if not math.isfinite(value):  # NaN passes every bound check (it fails every comparison)
            raise ConfigError(f"{key} must be a finite number, got {value}")
    elif base is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        if spec.choices and value not in spec.choices:
            close = difflib.get_close_matches(value, spec.choices, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{key} must be one of {', '.join(spec.choices)}, got {value!r}{hint}")
        return value
    if not spec.within_bounds(value):
        raise ConfigError(f"{key} must be {spec.bounds_text()}, got {_shown_number(value)}")
    return value


def _shown_number(value):
    """A number for an error message: a huge integer (10**30) shortened, not printed whole."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"


def _shown_list(values):
    shown = ", ".join(_shown_number(v) for v in values[:8])
    return f"[{shown}{', ...' if len(values) > 8 else ''}]"


# --------------------------------------------------------------------------
# What the declaration renders into


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def describe_keys(family: str | None = None) -> list[dict]:
    """Every config key (only FAMILY's and the shared ones, if given): name, type, default, choices, help, family."""
    keys = []
    for spec in KNOBS.values():
        if family and spec.family and spec.family != family:
            continue
        default = spec.family_defaults.get(family, None) if spec.family_defaults and family else spec.default
        if spec.name == "family" and family:
            default = family  # `keys cnn` lists a CNN's keys: its family is cnn
        if spec.family_defaults and not family:
            default = "per family: " + ", ".join(f"{name} {value}" for name, value in spec.family_defaults.items())
        keys.append(
            {
                "name": spec.name,
                "type": spec.type_name(),
                "default": _shown(default),
                "choices": list(spec.choices),
                "aliases": dict(spec.aliases),
                "bounds": spec.bounds_text(),
                "help": spec.help,
                "family": spec.family,
            }
        )
    return keys


def json_schema(family: str | None = None) -> dict:
    """A JSON Schema (2020-12) of a config: what the lab's form renders and what its server checks first.

    `x-family` names the family a key applies to; `x-aliases` the other
    spellings that `--set` takes; `x-family-defaults` the per-family default
    of a key whose default is null.
    """
    properties = {}
    for spec in KNOBS.values():
        if family and spec.family and spec.family != family:
            continue
        base = spec.base_type
        if spec.is_pair or spec.is_list:
            items = {"type": "integer"}
            schema = {"type": "array", "items": items}
            if spec.is_pair:
                schema.update(minItems=1, maxItems=2)
        else:
            items = schema = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[base]}
        for bound, name in (
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("exclusive_minimum", "exclusiveMinimum"),
            ("exclusive_maximum", "exclusiveMaximum"),
        ):
            if getattr(spec, bound) is not None:
                items[name] = getattr(spec, bound)
        if spec.min_items:
            schema["minItems"] = spec.min_items
        if spec.max_items is not None:
            schema["maxItems"] = spec.max_items
        if spec.choices:
            schema["enum"] = list(spec.choices)
        if spec.optional:
            schema = {"anyOf": [schema, {"type": "null"}]}
        default = spec.default
        schema.update(
            title=spec.name, description=spec.help, default=list(default) if isinstance(default, tuple) else default
        )
        if spec.family:
            schema["x-family"] = spec.family
        if spec.aliases:
            schema["x-aliases"] = dict(spec.aliases)
        if spec.family_defaults:
            schema["x-family-defaults"] = dict(spec.family_defaults)
        properties[spec.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"mnistlab config ({family})" if family else "mnistlab config",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
