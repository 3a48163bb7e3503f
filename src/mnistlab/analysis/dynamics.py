"""A run's dynamics (its dynamics.json, written by ml/dynamics.py) read for people: the first and last epoch's
figures of each weight and each layer's output, and one quantity's series over epochs."""

WEIGHT_FIGURES = ("norm", "update_ratio", "gradient_norm")
LAYER_FIGURES = ("mean", "std", "dead", "saturated")


def series(record, part, name, figure):
    """[(epoch, value)] of FIGURE ("norm", "dead"...) of the weight or layer NAME (PART: "weights" or "layers"),
    epoch 0 first; a value is None where it was not finite or does not apply."""
    return [(epoch["epoch"], epoch[part].get(name, {}).get(figure)) for epoch in record["epochs"]]


def summary(record):
    """{"epochs": N, "probe": ..., "weights": [{"name", "shape", figure: [first, last]}...],
    "layers": [{"name", "kind", "activation", figure: [first, last]}...]}: the first measurement (epoch 0,
    before training) and the last, for each weight and layer; update_ratio's first is epoch 1's (none before)."""
    epochs = record["epochs"]
    first, last = epochs[0], epochs[-1]
    weights = []
    for weight in record["weights"]:
        name = weight["name"]
        row = {"name": name, "shape": weight["shape"]}
        for figure in WEIGHT_FIGURES:
            values = [value for _, value in series(record, "weights", name, figure) if value is not None]
            row[figure] = [values[0], values[-1]] if values else [None, None]
        weights.append(row)
    layers = []
    for layer in record["layers"]:
        name = layer["name"]
        row = dict(layer)
        for figure in LAYER_FIGURES:
            row[figure] = [first["layers"][name].get(figure), last["layers"][name].get(figure)]
        layers.append(row)
    return {
        "epochs": last["epoch"],
        "probe": record["probe"],
        "weights": weights,
        "layers": layers,
        "seconds": sum(epoch.get("seconds") or 0 for epoch in epochs),
    }


def _number(value, share=False):
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if share else f"{value:.3g}"


def _change(pair, share=False):
    first, last = pair
    return f"{_number(first, share)} -> {_number(last, share)}"


def summary_lines(record, title):
    """The terminal's view: TITLE, then a line per weight and per layer output with its first and last figures."""
    facts = summary(record)
    lines = [
        f"{title}: epoch 0 (before training) -> epoch {facts['epochs']}, on {facts['probe']['size']} probe "
        f"training images; measuring took {facts['seconds']:.2f} s in all"
    ]
    weight_rows = [("weight", "shape", "norm", "update / weight", "gradient norm")]
    for row in facts["weights"]:
        weight_rows.append(
            (
                row["name"],
                "x".join(map(str, row["shape"])),
                _change(row["norm"]),
                _change(row["update_ratio"]),
                _change(row["gradient_norm"]),
            )
        )
    layer_rows = [("layer output", "activation", "mean", "std", "never firing", "saturated")]
    for row in facts["layers"]:
        layer_rows.append(
            (
                row["name"],
                row["activation"] or "-",
                _change(row["mean"]),
                _change(row["std"]),
                _change(row["dead"], share=True) if row["activation"] in ("relu", "relu6") else "-",
                _change(row["saturated"], share=True) if row["saturated"][0] is not None else "-",
            )
        )
    return lines + _aligned(weight_rows) + [""] + _aligned(layer_rows)


def _aligned(rows):
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
