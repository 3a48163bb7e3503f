"""The report's "Inside training" section: each kernel's norm, update over norm and gradient norm, and each
layer's never-firing or saturated share, over epochs (epoch 0: before training), for one run or for setups
compared over seeds (the mean, and the 95% interval shaded where there are two seeds or more)."""

from mnistlab.analysis import dynamics
from mnistlab.outputs import plots
from mnistlab.outputs.report_html import image

FIGURE_TITLES = {
    "norm": "weight norm",
    "update_ratio": "update / weight",
    "gradient_norm": "gradient norm",
    "dead": "never firing (share)",
    "saturated": "saturated (share)",
}
LOGARITHMIC = ("update_ratio", "gradient_norm")
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def _panels(banded):
    """[(part, name, figure)] every setup has, kernels first; a row of the grid per name."""
    first = banded[0][1]
    panels = []
    for part in ("weights", "layers"):
        for name, figures in first[part].items():
            for figure in figures:
                if all(name in other[part] and figure in other[part][name] for _, other in banded):
                    panels.append((part, name, figure))
    return panels


def dynamics_figure(banded, path):
    """BANDED: [(label, analysis.dynamics.bands_over_seeds(...))]; a grid of small plots: a row per kernel (its
    norm, update over norm, gradient norm), then the layers' shares (never firing or saturated) three to a row; one
    scale per plot, the setups in one plot each."""
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter

    plt = plots.plt
    panels = _panels(banded)
    kernels = list(dict.fromkeys(name for part, name, _ in panels if part == "weights"))
    grid = [
        [(part, name, quantity) for part, name, quantity in panels if part == "weights" and name == kernel]
        for kernel in kernels
    ]
    shares = [panel for panel in panels if panel[0] == "layers"]
    grid += [shares[start : start + 3] for start in range(0, len(shares), 3)]
    figure, axes = plt.subplots(len(grid), 3, figsize=(10.2, 2.1 * len(grid)), squeeze=False)
    for row, cells in enumerate(grid):
        for column in range(3):
            axis = axes[row][column]
            if column >= len(cells):
                axis.axis("off")
                continue
            part, name, quantity = cells[column]
            values = []
            for position, (label, bands) in enumerate(banded):
                values += _draw(axis, bands[part][name][quantity], COLORS[position % len(COLORS)], label)
            positive = [value for value in values if value > 0]
            # A logarithmic scale where the values span more than a decade; within one, its ticks would be bare.
            if quantity in LOGARITHMIC and positive and max(positive) > 10 * min(positive):
                axis.set_yscale("log")
                axis.yaxis.set_minor_formatter(NullFormatter())
            else:
                axis.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.set_title(f"{name}: {FIGURE_TITLES[quantity]}", fontsize=8)
            axis.tick_params(labelsize=7)
            axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="best")
    figure.supxlabel("epoch (0: before training)", fontsize=8)
    figure.tight_layout()
    return plots.save_figure(figure, path)


def _draw(axis, entries, color, label):
    """One setup's mean over epochs, its 95% interval shaded where it has one; the values drawn."""
    points = [entry for entry in entries if entry["mean"] is not None]
    axis.plot(
        [entry["epoch"] for entry in points], [entry["mean"] for entry in points], color=color, marker=".", label=label
    )
    shaded = [entry for entry in points if entry["ci_low"] is not None]
    if shaded:
        axis.fill_between(
            [entry["epoch"] for entry in shaded],
            [entry["ci_low"] for entry in shaded],
            [entry["ci_high"] for entry in shaded],
            color=color,
            alpha=0.2,
        )
    return [entry["mean"] for entry in points] + [entry["ci_low"] for entry in shaded]


def dynamics_section(banded, figures, note=""):
    """("Inside training", html) for [(label, bands)], or None where no run has dynamics recorded."""
    banded = [(label, bands) for label, bands in banded if bands]
    if not banded or not _panels(banded):
        return None
    path = dynamics_figure(banded, figures / "dynamics.png")
    text = (
        "<p>On 256 training images fixed by the seed, at epoch 0 and after each epoch "
        "(<code>mnistlab dynamics RUN</code> prints the first and last figures)."
        + (f" {note}" if note else "")
        + "</p>"
    )
    return ("Inside training", text + image(path, "weights, gradients and units over epochs"))


def run_section(record, figures, label):
    """The section for one run's dynamics record (None: the run has none)."""
    return dynamics_section([(label, dynamics.bands_over_seeds([record]))], figures)
