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


# The figures the compare view draws over seeds, and where each can lie (a band is cut there).
BAND_FIGURES = {
    "weights": {"norm": (0.0, float("inf")), "update_ratio": (0.0, float("inf")), "gradient_norm": (0.0, float("inf"))},
    "layers": {"dead": (0.0, 1.0), "saturated": (0.0, 1.0)},
}


def bands_over_seeds(records):
    """{"weights": {name: {figure: rows}}, "layers": {...}} over the runs' dynamics RECORDS (None: a run without
    them, left out), each row {"epoch", "n", "mean", "std", "ci_low", "ci_high"} from epoch 0; kernels only (a
    bias' ratio to a norm that starts at 0 says little), and a layer's share only where it applies. None when no
    run has dynamics."""
    from mnistlab.core import stats

    records = [record for record in records if record]
    if not records:
        return None
    result = {"weights": {}, "layers": {}, "runs": len(records)}
    longest = max(len(record["epochs"]) for record in records)
    names = {
        "weights": [weight["name"] for weight in records[0]["weights"] if weight["name"].endswith("kernel")],
        "layers": [layer["name"] for layer in records[0]["layers"]],
    }
    for part, figures in BAND_FIGURES.items():
        for name in names[part]:
            for figure, bounds in figures.items():
                rows = []
                for position in range(longest):
                    values = [
                        record["epochs"][position][part].get(name, {}).get(figure)
                        for record in records
                        if len(record["epochs"]) > position
                    ]
                    values = [value for value in values if value is not None]
                    rows.append({"epoch": position, **stats.summarize(values, bounds=bounds)})
                if any(row["n"] for row in rows):
                    result[part].setdefault(name, {})[figure] = rows
    return result
