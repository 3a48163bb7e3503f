"""Every knob's declaration type (`Knob`, made by `knob(...)` on a `Config` field), and the choices and bounds
the knobs are declared with."""

import dataclasses
import typing
from collections.abc import Mapping

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
# Choices of the commands around a config, kept here so the CLI lists them without importing their modules.
EXECUTORS = ("local", "ray")
RUNTIMES = ("keras", "onnx")
# onnx-inside: the inside view's graph (every tensor the inside view shows, then the probabilities), for a page that
# runs the network in the browser (issue "Share trained networks as a web page").
EXPORT_FORMATS = ("onnx", "onnx-inside", "keras", "saved_model")
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
        return base_type(self.type)[0]

    @property
    def optional(self):
        return base_type(self.type)[1]

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
        # Each end: (its number, whether it is included), or None where the knob has none.
        low = _end(self.minimum, self.exclusive_minimum)
        high = _end(self.maximum, self.exclusive_maximum)
        if low and high:
            return f"in {'[' if low[1] else '('}{low[0]}, {high[0]}{']' if high[1] else ')'}"
        if low:
            return f"{'>=' if low[1] else '>'} {low[0]}"
        if high:
            return f"{'<=' if high[1] else '<'} {high[0]}"
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


def number_text(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _end(inclusive, exclusive):
    """One end of a knob's range, as (its number written, whether the number is included), or None."""
    if inclusive is not None:
        return number_text(inclusive), True
    if exclusive is not None:
        return number_text(exclusive), False
    return None


def base_type(annotation):
    """int | None -> (int, True); tuple[int, ...] -> (tuple[int, ...], False)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        return next(a for a in args if a is not type(None)), True
    return annotation, False
