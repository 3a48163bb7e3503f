"""What a config builds, computed from its knobs without Keras: each CNN layer's feature map (a CNN that shrinks
the image to nothing is refused, naming the knob), the model's parameter count, and the model in a few words."""

from mnistlab.core.config.knobs import IMAGE_SIDE, INPUT_SHAPES
from mnistlab.core.errors import ConfigError


def feature_maps(config):
    """(height, width, channels) after each conv layer and its pooling, as Keras computes them (pooling: valid,
    strides = its window); a side below 1 means the layer cannot be built."""
    side, maps = [IMAGE_SIDE, IMAGE_SIDE], []
    for index, filters in enumerate(config.filters):
        for axis in (0, 1):
            kernel, stride = config.kernel_size[axis], config.strides[axis]
            side[axis] = (side[axis] - kernel) // stride + 1 if config.padding == "valid" else -(-side[axis] // stride)
        maps.append((side[0], side[1], filters, "conv"))
        if index in config.pool_after and min(side) >= 1:
            side = [(side[axis] - config.pool_size[axis]) // config.pool_size[axis] + 1 for axis in (0, 1)]
            maps.append((side[0], side[1], filters, "pool"))
    return maps


def check_cnn(config):
    """A CNN that shrinks the 28x28 image below one pixel is refused here, naming the knob, not in Keras."""
    for number, (height, width, _, kind) in enumerate(feature_maps(config)):
        if min(height, width) < 1:
            layer = sum(1 for *_, made in feature_maps(config)[: number + 1] if made == "conv")
            what = f"conv layer {layer}" if kind == "conv" else f"the pooling after conv layer {layer}"
            raise ConfigError(
                f"this cnn config cannot be built: {what} leaves the 28x28 image no pixels (kernel {config.kernel_size}, strides {config.strides}, "
                f"padding {config.padding}, pool {config.pool_size} after {list(config.pool_after)}); use padding=same, smaller kernels or fewer pooling layers",
                field="kernel_size" if kind == "conv" else "pool_size",
            )


def parameter_estimate(config) -> int:
    """The model's parameter count, computed from the knobs as Keras' layers count them (batch norm included)."""
    if config.family == "mlp":
        widths = [INPUT_SHAPES["mlp"][0], *config.hidden_units]
        return sum((before + 1) * after for before, after in zip(widths, widths[1:])) + (widths[-1] + 1) * 10
    if config.family == "cnn":
        total, channels = 0, 1
        for height, width, filters, kind in feature_maps(config):
            if kind == "conv":
                total += (
                    config.kernel_size[0] * config.kernel_size[1] * channels + (0 if config.batch_norm else 1)
                ) * filters + (4 * filters if config.batch_norm else 0)
                channels = filters
            flat = max(height, 0) * max(width, 0) * filters
        return total + (flat + 1) * 10
    gates = {"simple": 1, "lstm": 4, "gru": 3}[config.cell]
    total, features = 0, INPUT_SHAPES["rnn"][1]
    for units in config.rnn_units:
        one_way = gates * (features + units + (2 if config.cell == "gru" else 1)) * units
        total += one_way * (2 if config.bidirectional else 1)
        features = units * (2 if config.bidirectional else 1)
    return total + (features + 1) * 10


def describe(config) -> str:
    """A short human description of the model, e.g. 'mlp 256-256 relu dropout 0.45'."""
    if config.family == "mlp":
        layers = "-".join(map(str, config.hidden_units))
    elif config.family == "cnn":
        # Every geometry knob that differs from Listing 1.4.1's, so two CNNs never read the same.
        layers = "conv " + "-".join(map(str, config.filters)) + " " + "x".join(map(str, config.kernel_size))
        if config.strides != (1, 1):
            layers += " stride " + "x".join(map(str, config.strides))
        if config.padding != "valid":
            layers += f" {config.padding}"
        if config.pool_after:
            layers += (
                f" {config.pooling}-pool "
                + "x".join(map(str, config.pool_size))
                + " after "
                + ",".join(str(i + 1) for i in config.pool_after)
            )
        if config.batch_norm:
            layers += " batchnorm"
    else:
        layers = ("bi-" if config.bidirectional else "") + f"{config.cell} " + "-".join(map(str, config.rnn_units))
    parts = [config.family, layers, config.activation]
    if config.dropout_rate:
        parts.append(f"dropout {config.dropout_rate:g}")
    if config.kernel_l2:
        parts.append(f"l2 {config.kernel_l2:g}")
    if config.kernel_l1:
        parts.append(f"l1 {config.kernel_l1:g}")
    parts.append(config.optimizer)
    return " ".join(p for p in parts if p)
