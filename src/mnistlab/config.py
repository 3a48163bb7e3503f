"""Run configuration: one flat, validated dataclass that every run writes beside itself.

A config says everything needed to rebuild and retrain a run: the model
family and its knobs, the training settings, the seed, dataset and backend.
`--set key=value` overrides are parsed here, from strings, with the field's
type; unknown keys and bad values raise `ConfigError` naming the valid ones.

No Keras import here: the CLI validates a config before it picks a backend.
"""

import dataclasses
import difflib
import hashlib
import json
import typing

from mnistlab.errors import ConfigError

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
DEFAULT_ACTIVATIONS = {"mlp": "relu", "cnn": "relu", "rnn": "tanh"}
BACKENDS = ("auto", "jax", "tensorflow", "torch")
PRECISIONS = ("float32", "bf16")
CHOICES = {
    "family": FAMILIES,
    "activation": ACTIVATIONS,
    "output_activation": OUTPUT_ACTIVATIONS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "padding": ("valid", "same"),
    "pooling": ("max", "average"),
    "cell": ("simple", "lstm", "gru"),
    "backend": BACKENDS,
    "precision": PRECISIONS,
}
RUN_STATUSES = ("running", "done", "failed", "diverged", "interrupted")
# Choices of the commands around a config, kept here so the CLI lists them without importing their modules.
EXECUTORS = ("local", "ray")
RUNTIMES = ("keras", "onnx")
EXPORT_FORMATS = ("onnx", "keras", "saved_model")
ATTRIBUTION_METHODS = ("auto", "integrated-gradients", "occlusion")  # mnistlab explain --method
ALIASES = {"activation": {"none": "linear"}, "pooling": {"avg": "average"}, "precision": {"fp32": "float32", "bfloat16": "bf16", "mixed_bfloat16": "bf16"}}


@dataclasses.dataclass(frozen=True)
class Config:
    family: str = "mlp"  # mlp, cnn or rnn: which of the chapter's networks

    # Layers, shared by the families that have them. activation=None means the
    # family's usual one: relu for mlp and cnn, tanh for the recurrent cells.
    activation: str | None = None
    dropout_rate: float = 0.0
    kernel_l1: float = 0.0
    kernel_l2: float = 0.0
    bias_l1: float = 0.0
    bias_l2: float = 0.0
    activity_l1: float = 0.0
    activity_l2: float = 0.0
    output_activation: str = "softmax"

    # MLP: one Dense layer per entry.
    hidden_units: tuple[int, ...] = (256, 256)

    # CNN: one Conv2D per entry of `filters`; pooling after the conv layers
    # whose 0-based indexes are in `pool_after`.
    filters: tuple[int, ...] = (64, 64, 64)
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    pool_after: tuple[int, ...] = (0, 1)
    pool_size: tuple[int, int] = (2, 2)
    pooling: str = "max"
    batch_norm: bool = False

    # RNN: one recurrent layer per entry of `rnn_units` (more than one = stacked).
    cell: str = "simple"
    rnn_units: tuple[int, ...] = (256,)
    bidirectional: bool = False
    recurrent_dropout: float = 0.0

    # Training.
    loss: str = "categorical_crossentropy"
    optimizer: str = "adam"
    learning_rate: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    decay: float = 0.0  # legacy Keras decay: lr / (1 + decay * step)
    beta_1: float = 0.9
    beta_2: float = 0.999
    rho: float = 0.9
    epsilon: float = 1e-7
    batch_size: int = 128
    epochs: int = 20
    validation_split: float = 0.1
    limit: int | None = None  # use only the first `limit` training samples
    precision: str = "float32"

    # Where and how it runs: recorded, but not part of config_hash().
    seed: int = 0
    dataset: str = "auto"
    backend: str = "auto"

    # ------------------------------------------------------------------

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = _coerce(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, value)
        if self.activation is None:
            object.__setattr__(self, "activation", DEFAULT_ACTIVATIONS[self.family])
        self._validate()

    def _validate(self):
        def require(condition, message):
            if not condition:
                raise ConfigError(message)

        for rate_key in ("dropout_rate", "recurrent_dropout", "validation_split"):
            value = getattr(self, rate_key)
            require(0 <= value < 1, f"{rate_key} must be in [0, 1), got {value}")
        for key in ("kernel_l1", "kernel_l2", "bias_l1", "bias_l2", "activity_l1", "activity_l2", "momentum", "decay"):
            require(getattr(self, key) >= 0, f"{key} must be >= 0, got {getattr(self, key)}")
        require(self.momentum < 1 or self.optimizer != "sgd", f"momentum must be < 1, got {self.momentum}")
        require(self.learning_rate is None or self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        require(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        require(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        require(self.limit is None or self.limit >= 1, f"limit must be >= 1, got {self.limit}")
        require(0 < self.beta_1 < 1 and 0 < self.beta_2 < 1, "beta_1 and beta_2 must be in (0, 1)")
        require(0 < self.rho < 1, f"rho must be in (0, 1), got {self.rho}")
        require(self.epsilon > 0, f"epsilon must be > 0, got {self.epsilon}")
        for key in ("hidden_units", "filters", "rnn_units"):
            values = getattr(self, key)
            require(len(values) >= 1 and all(v >= 1 for v in values), f"{key} needs at least one positive width, got {list(values)}")
        for key in ("kernel_size", "strides", "pool_size"):
            require(all(v >= 1 for v in getattr(self, key)), f"{key} must be positive, got {list(getattr(self, key))}")
        bad_pools = [i for i in self.pool_after if not 0 <= i < len(self.filters)]
        require(not bad_pools, f"pool_after holds conv layer indexes 0..{len(self.filters) - 1}, got {list(self.pool_after)}")
        if self.loss == "categorical_crossentropy":
            require(self.output_activation == "softmax", f"categorical_crossentropy needs output_activation=softmax (got {self.output_activation}); use a mean_squared_error or mean_absolute_error loss with other outputs")

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
        for field in dataclasses.fields(self):
            owner = KEY_FAMILY.get(field.name)
            if owner and owner != self.family and not all_families:
                continue
            value = getattr(self, field.name)
            result[field.name] = list(value) if isinstance(value, tuple) else value
        return result

    @classmethod
    def from_dict(cls, values: dict) -> "Config":
        values = _renamed(values)
        _check_keys(values)
        return cls(**values)

    def replace(self, **changes) -> "Config":
        changes = _renamed(changes)
        _check_keys(changes)
        if "family" in changes and "activation" not in changes and self.activation == DEFAULT_ACTIVATIONS[self.family]:
            # The old family's default activation is not a choice the user
            # made: the new family gets its own (an LSTM is tanh, not relu).
            changes["activation"] = None
        return dataclasses.replace(self, **changes)

    def with_overrides(self, assignments: list[str]) -> "Config":
        """Apply `key=value` strings (the CLI's --set) and return the new config."""
        changes = {}
        for assignment in assignments:
            if "=" not in assignment:
                raise ConfigError(f"--set takes key=value, got {assignment!r}")
            key, raw = (part.strip() for part in assignment.split("=", 1))
            key = RENAMED_KEYS.get(key, key)
            _check_keys({key: raw})
            changes[key] = parse_value(key, raw)
        family = changes.get("family", self.family)
        for key in changes:
            owner = KEY_FAMILY.get(key)
            if owner and owner != family:
                raise ConfigError(f"{key} applies to {owner} models, but this config builds a {family}; set family={owner} too or drop {key}")
        return self.replace(**changes)

    def config_hash(self) -> str:
        """What was trained: every key but seed, dataset and backend (the store keys those separately).

        Hashed under the keys' original names, so that runs recorded before a
        key was renamed (model -> family) keep their hash and still resume.
        """
        original_names = {new: old for old, new in RENAMED_KEYS.items()}
        content = {original_names.get(k, k): v for k, v in self.to_dict().items() if k not in RUN_KEYS}
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def run_key(self, dataset_hash: str) -> str:
        """What makes two runs the same run: config hash, dataset content, backend and seed."""
        return f"{self.config_hash()}:{dataset_hash[:16]}:{self.backend}:{self.seed}"

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
                layers += f" {self.pooling}-pool " + "x".join(map(str, self.pool_size)) + " after " + ",".join(str(i + 1) for i in self.pool_after)
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


KEY_FAMILY = {
    "hidden_units": "mlp",
    **dict.fromkeys(("filters", "kernel_size", "strides", "padding", "pool_after", "pool_size", "pooling", "batch_norm"), "cnn"),
    **dict.fromkeys(("cell", "rnn_units", "bidirectional", "recurrent_dropout"), "rnn"),
}
RUN_KEYS = ("seed", "dataset", "backend")
FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(Config)}
VALID_KEYS = tuple(FIELD_TYPES)


# Keys renamed since runs were first recorded: old name -> new name. Old run
# directories, sweep files and `--set model=rnn` keep working.
RENAMED_KEYS = {"model": "family"}


def _renamed(values):
    return {RENAMED_KEYS.get(key, key): value for key, value in values.items()}


def _check_keys(values):
    unknown = [key for key in values if key not in FIELD_TYPES]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, VALID_KEYS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown config key {key!r}{hint}; valid keys: {', '.join(VALID_KEYS)}")


def _base_type(annotation):
    """int | None -> (int, True); tuple[int, ...] -> (tuple, False)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return annotation, False


def parse_value(key: str, raw: str):
    """Parse a --set string for `key` with the field's type."""
    annotation, optional = _base_type(FIELD_TYPES[key])
    text = raw.strip()
    if text.lower() in ALIASES.get(key, {}):
        return ALIASES[key][text.lower()]
    if optional and text.lower() in ("none", "null", ""):
        return None
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple or annotation is tuple:
            items = [item for item in text.strip("[]()").replace("x", ",").split(",") if item.strip()]
            return tuple(int(item) for item in items)
        if annotation is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError(text)
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
    except ValueError:
        kind = {bool: "true or false", int: "an integer", float: "a number"}.get(annotation, "comma-separated integers, e.g. 256,256")
        raise ConfigError(f"{key} must be {kind}, got {raw!r}") from None
    return text


def _coerce(key, value):
    """Bring a value given in Python or JSON (lists, ints for floats...) to the field's type."""
    annotation, optional = _base_type(FIELD_TYPES[key])
    if key in ALIASES and value in ALIASES[key]:
        value = ALIASES[key][value]
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} cannot be empty")
    if isinstance(value, str) and annotation is not str:
        return _coerce(key, parse_value(key, value))
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if isinstance(value, int) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise ConfigError(f"{key} must be a list of integers, got {value!r}")
        value = tuple(value)
        fixed = typing.get_args(annotation)
        if len(fixed) == 2 and fixed[1] is not Ellipsis:
            # A pair such as kernel_size: a single number means a square.
            if len(value) == 1:
                value = value * 2
            if len(value) != 2:
                raise ConfigError(f"{key} takes one number or a pair, got {list(value)}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        value = ALIASES.get(key, {}).get(value.lower(), value.lower()) if key in CHOICES else value
        if key in CHOICES and value not in CHOICES[key]:
            close = difflib.get_close_matches(value, CHOICES[key], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"{key} must be one of {', '.join(CHOICES[key])}, got {value!r}{hint}")
        return value
    return value


# One line per key for `mnistlab keys`; a test checks every Config field has one.
KEY_HELP = {
    "family": "model family: mlp (Listing 1.3.2), cnn (1.4.1) or rnn (1.5.1)",
    "activation": "hidden layers' activation (default: relu for mlp/cnn, tanh for rnn, as Keras and the book)",
    "dropout_rate": "dropout after each hidden layer (rnn: on the inputs of each step)",
    "kernel_l1": "L1 penalty on hidden layers' weights",
    "kernel_l2": "L2 penalty on hidden layers' weights",
    "bias_l1": "L1 penalty on hidden layers' biases",
    "bias_l2": "L2 penalty on hidden layers' biases",
    "activity_l1": "L1 penalty on hidden layers' outputs",
    "activity_l2": "L2 penalty on hidden layers' outputs",
    "output_activation": "activation of the 10-unit output layer",
    "hidden_units": "one Dense layer per width, e.g. 256,256",
    "filters": "one Conv2D layer per entry, e.g. 64,64,64",
    "kernel_size": "convolution kernel, one number (square) or a pair, e.g. 3 or 3,5",
    "strides": "convolution strides, one number or a pair",
    "padding": "valid (shrinks the map) or same (keeps its size)",
    "pool_after": "0-based conv layer indexes followed by pooling",
    "pool_size": "pooling window, one number or a pair",
    "pooling": "max or average pooling",
    "batch_norm": "batch normalization between each convolution and its activation",
    "cell": "recurrent cell: simple (SimpleRNN), lstm or gru",
    "rnn_units": "one recurrent layer per width; more than one = stacked",
    "bidirectional": "read the rows both ways (Bidirectional wrapper)",
    "recurrent_dropout": "dropout on the recurrent state",
    "loss": "training loss",
    "optimizer": "sgd, adam or rmsprop",
    "learning_rate": "step size (default: Keras' for the optimizer: sgd 0.01, adam/rmsprop 0.001)",
    "momentum": "sgd and rmsprop momentum",
    "nesterov": "sgd: Nesterov momentum",
    "decay": "Keras 2's decay: lr / (1 + decay * step)",
    "beta_1": "adam: first-moment decay",
    "beta_2": "adam: second-moment decay",
    "rho": "rmsprop: decay of the squared-gradient average",
    "epsilon": "adam and rmsprop: numerical stability term",
    "batch_size": "samples per gradient step",
    "epochs": "passes over the training data",
    "validation_split": "fraction of the training data held out for validation (never the test set)",
    "limit": "train on only the first N training images",
    "precision": "float32, or bf16 mixed precision",
    "seed": "random seed: same seed, backend and data give the same run",
    "dataset": "mnist, fashion-mnist, mnist-mini, auto, an idx directory or a .npz file",
    "backend": "Keras backend: auto, jax, tensorflow or torch",
}


def _type_name(annotation):
    base, optional = _base_type(annotation)
    name = "ints" if typing.get_origin(base) is tuple else getattr(base, "__name__", str(base))
    return name + (" or none" if optional else "")


def describe_keys(family: str | None = None) -> list[dict]:
    """Every config key (only FAMILY's and the shared ones, if given): name, type, default, choices, help."""
    defaults = Config(family=family or "mlp")
    keys = []
    for field in dataclasses.fields(Config):
        owner = KEY_FAMILY.get(field.name)
        if family and owner and owner != family:
            continue
        default = getattr(defaults, field.name) if not owner or not family or owner == family else field.default
        if isinstance(default, tuple):
            default = ",".join(map(str, default))
        keys.append({"name": field.name, "type": _type_name(field.type), "default": default, "choices": list(CHOICES.get(field.name, ())), "help": KEY_HELP[field.name], "family": owner})
    return keys
