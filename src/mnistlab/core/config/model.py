"""The `Config` dataclass: each knob declared once, as a field made with `knob(...)`, and what a config does
(validate, change, hash, describe itself). `KNOBS` and the tables below it are read from these fields."""

import dataclasses
import difflib
import hashlib
import json

from mnistlab.core.config import geometry, parsing
from mnistlab.core.config.knobs import (
    ACTIVATIONS,
    BACKENDS,
    DEFAULT_LEARNING_RATES,
    FAMILIES,
    IMAGE_SIDE,
    INPUT_SHAPES,
    LOSSES,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_FILTERS,
    MAX_LAYERS,
    MAX_PARAMETERS,
    MAX_PENALTY,
    MAX_SEED,
    MAX_TRAINING_IMAGES,
    MAX_UNITS,
    OPTIMIZERS,
    OUTPUT_ACTIVATIONS,
    PRECISIONS,
    Knob,
    knob,
)
from mnistlab.core.errors import ConfigError


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
    dynamics: bool = knob(
        True,
        "record each layer's weights, gradients and outputs at the end of every epoch (`mnistlab dynamics RUN`)",
        run_setting=True,
    )

    # ------------------------------------------------------------------

    def __post_init__(self):
        for field in dataclasses.fields(self):
            try:
                object.__setattr__(self, field.name, parsing.coerce(KNOBS[field.name], getattr(self, field.name)))
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
            geometry.check_cnn(self)
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

    def parameter_estimate(self) -> int:
        """The model's parameter count, computed from the knobs as Keras' layers count them (batch norm included)."""
        return geometry.parameter_estimate(self)

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
        return geometry.describe(self)


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
            raise ConfigError(
                f"unknown config key {parsing.shown_text(key)}{hint}; valid keys: {', '.join(VALID_KEYS)}"
            )
    return values


def parse_value(key: str, raw: str):
    """Parse a --set string for `key` into a value of the knob's type (checked by Config)."""
    return parsing.parse(KNOBS[key], raw)
