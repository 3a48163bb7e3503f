"""The chapter's claims about why networks learn, measured with each run's dynamics (ml/dynamics.py).

Trains the setups below over 3 seeds (the book's table rows where it has them; resumable: a run already in the
work store is not trained again), reads each run's dynamics.json and history, and writes the figures each claim
needs with their 95% intervals over seeds, Welch's tests between setups and a one-sentence verdict made from the
figures, to docs/dynamics/claims.json (raw) and figures to docs/dynamics/*.png. docs/dynamics.md is rendered from
the JSON by `render()` (scripts/render_docs.py calls it).

Usage: python scripts/measure_dynamics_claims.py [--dataset fashion-mnist] [--seeds 3] [--workers 2]
           [--work DIR] [--epochs N] [--rnn-epochs N]
"""

import argparse
import json
import math
import pathlib
import sys

import numpy as np

from mnistlab.core import fileio, presets, provenance, stats

REPO = pathlib.Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "dynamics"

# name: (preset, overrides, what it is). The book's rows where it has them (Table 1.3.2 reads its widths as the
# listing's two hidden layers; the RNN rows are Table 1.5.1's); sigmoid and L1 are the chapter's words, not rows.
SETUPS = {
    "relu": ("table-1.3.2-row4", [], "Table 1.3.2 row 4: ReLU, no regularizer, SGD"),
    "sigmoid": ("table-1.3.2-row4", ["activation=sigmoid"], "row 4 with sigmoid instead of ReLU"),
    "l2-0.001": ("table-1.3.2-row2", [], "Table 1.3.2 row 2: L2(0.001), SGD"),
    "l2-0.01": ("table-1.3.2-row3", [], "Table 1.3.2 row 3: L2(0.01), SGD"),
    "l1-0.001": ("table-1.3.2-row4", ["kernel_l1=0.001"], "row 4 with L1(0.001)"),
    "dropout-0.45": ("table-1.3.2-row6", [], "Table 1.3.2 row 6: dropout(0.45), SGD"),
    "adam": ("table-1.3.2-row16", [], "Table 1.3.2 row 16: dropout(0.45), Adam"),
    "rmsprop": ("table-1.3.2-row17", [], "Table 1.3.2 row 17: dropout(0.45), RMSprop"),
    "rnn-sgd": ("table-1.5.1-row1", [], "Table 1.5.1 row 1: SimpleRNN(256), SGD"),
    "rnn-adam": ("table-1.5.1-row3", [], "Table 1.5.1 row 3: SimpleRNN(256), Adam"),
}
FIRST_KERNEL, FIRST_ACTIVATION = "dense/kernel", "activation"
RECURRENT_KERNEL = "simple_rnn/recurrent_kernel"


def train_all(dataset_name, seeds, workers, work, epochs, rnn_epochs):
    """{setup: [run directory per seed]}: every setup x seed trained (or found done) in WORK's store."""
    from mnistlab.jobs import sweep
    from mnistlab.ml import data

    dataset = data.load_dataset(dataset_name)
    configs, names = [], []
    for name, (preset, overrides, _) in SETUPS.items():
        for seed in range(seeds):
            config = presets.get(preset).build_config(seed=seed, dataset=dataset_name).with_overrides(overrides)
            wanted = rnn_epochs if config.family == "rnn" else epochs
            config = config.with_overrides([f"epochs={wanted}"]) if wanted else config
            configs.append((preset, config))
            names.append(name)
    jobs = sweep.plan(configs, dataset, group="dynamics-claims")
    outcomes = sweep.run(jobs, store_path=work / "runs.db", workers=workers, quiet=True)
    runs = {name: [] for name in SETUPS}
    for name, outcome in zip(names, outcomes):
        if outcome.status not in ("done", "skipped"):
            raise SystemExit(f"{outcome.job.label}: {outcome.status} ({outcome.error}); see {work}")
        runs[name].append(pathlib.Path(outcome.metrics["run_dir"]))
    return dataset.name, len(dataset.x_train), runs


def _read(run_dir):
    from mnistlab.record import rundir

    return {
        "dynamics": rundir.read_dynamics(run_dir),
        "history": rundir.read_history(run_dir),
        "metrics": rundir.read_metrics(run_dir),
    }


def _summary(values, bounds=None):
    return stats.summarize([value for value in values if value is not None and math.isfinite(value)], bounds=bounds)


NON_NEGATIVE = (0.0, math.inf)  # norms and ratios: a band is cut at 0
SHARE = (0.0, 1.0)  # never-firing and saturated shares: a band is cut at 0 and 1
SATURATION_SHOWN = 0.05  # below 5% of its outputs saturated, a layer's "sigmoid saturates" does not show


def _series(records, part, name, figure, bounds=NON_NEGATIVE):
    """Per epoch (0..E): the summary over seeds of FIGURE of NAME, its band cut to BOUNDS."""
    epochs = len(records[0]["dynamics"]["epochs"])
    return [
        {
            "epoch": epoch,
            **_summary([record["dynamics"]["epochs"][epoch][part][name][figure] for record in records], bounds),
        }
        for epoch in range(epochs)
    ]


def _last(records, part, name, figure):
    return [record["dynamics"]["epochs"][-1][part][name][figure] for record in records]


def _kernel_norm(record, epoch=-1):
    weights = record["dynamics"]["epochs"][epoch]["weights"]
    return math.sqrt(sum(figures["norm"] ** 2 for name, figures in weights.items() if name.endswith("/kernel")))


def _mean_update_ratio(record, name):
    ratios = [epoch["weights"][name]["update_ratio"] for epoch in record["dynamics"]["epochs"][1:]]
    ratios = [ratio for ratio in ratios if ratio is not None]
    return float(np.mean(ratios)) if ratios else None


def _test(records):
    return _summary([100 * record["metrics"]["test_accuracy"] for record in records])


def _welch(a, b):
    a, b = [value for value in a if value is not None], [value for value in b if value is not None]
    if len(a) < 2 or len(b) < 2:
        return None
    return stats.compare(a, b)


def _p(comparison):
    return "n/a" if comparison is None or comparison.get("p_value") is None else f"{comparison['p_value']:.2g}"


def _figure(summary, scale=1.0, digits=3):
    if summary["mean"] is None:
        return "n/a"
    if summary["ci_low"] is None:
        return f"{scale * summary['mean']:.{digits}g}"
    return f"{scale * summary['mean']:.{digits}g} [{scale * summary['ci_low']:.{digits}g}, {scale * summary['ci_high']:.{digits}g}]"


def claim_activation(read):
    relu, sigmoid = read["relu"], read["sigmoid"]
    gradient = {
        name: _summary(_last(read[name], "weights", FIRST_KERNEL, "gradient_norm")) for name in ("relu", "sigmoid")
    }
    first_gradient = {
        name: _summary(
            [record["dynamics"]["epochs"][1]["weights"][FIRST_KERNEL]["gradient_norm"] for record in read[name]]
        )
        for name in ("relu", "sigmoid")
    }
    test = _welch(
        _last(sigmoid, "weights", FIRST_KERNEL, "gradient_norm"), _last(relu, "weights", FIRST_KERNEL, "gradient_norm")
    )
    saturated = _summary(_last(sigmoid, "layers", FIRST_ACTIVATION, "saturated"), SHARE)
    dead = _summary(_last(relu, "layers", FIRST_ACTIVATION, "dead"), SHARE)
    smaller = test is not None and test["significant"] and gradient["sigmoid"]["mean"] < gradient["relu"]["mean"]
    ratio = gradient["sigmoid"]["mean"] / gradient["relu"]["mean"]
    saturates = saturated["mean"] >= SATURATION_SHOWN
    halves = (
        f"sigmoid's first-layer gradient ends {ratio:.2g} times ReLU's (Welch p = {_p(test)}): "
        + ("its gradients are smaller, as the claim says" if smaller else "not significantly smaller")
        + f"; {100 * saturated['mean']:.1f}% of its first layer's outputs are within 1% of 0 or 1: "
        + ("it saturates, as the claim says" if saturates else "saturation, the claim's cause, does not show here")
    )
    verdict = (
        "Supported" if smaller and saturates else "Supported in part" if smaller or saturates else "Not supported here"
    ) + f": {halves}. The figures show smaller gradients, not that sigmoid cannot learn"
    verdict += f" (test accuracy {_figure(_test(sigmoid))}% against ReLU's {_figure(_test(relu))}%)."
    return {
        "id": "activation",
        "claim": "ReLU rather than sigmoid: sigmoid saturates and its gradients vanish",
        "setups": ["relu", "sigmoid"],
        "figures": {
            "first-layer gradient norm after epoch 1": first_gradient,
            "first-layer gradient norm after the last epoch": gradient,
            "sigmoid's saturated share, first layer, last epoch (%)": {"sigmoid": _scaled(saturated, 100)},
            "ReLU's never-firing units, first layer, last epoch (%)": {"relu": _scaled(dead, 100)},
        },
        "tests": {"last-epoch gradient, sigmoid vs ReLU": test},
        "series": {name: _series(read[name], "weights", FIRST_KERNEL, "gradient_norm") for name in ("relu", "sigmoid")},
        "series_title": "first-layer kernel's gradient norm",
        "verdict": verdict,
    }


def _scaled(summary, factor):
    return {
        key: (value * factor if key in ("mean", "std", "ci_low", "ci_high") and value is not None else value)
        for key, value in summary.items()
    }


def claim_regularizers(read):
    names = ("relu", "l2-0.001", "l2-0.01", "l1-0.001")
    norms = {name: _summary([_kernel_norm(record) for record in read[name]]) for name in names}
    tests = {
        f"{name} vs none": _welch([_kernel_norm(r) for r in read[name]], [_kernel_norm(r) for r in read["relu"]])
        for name in names[1:]
    }
    smaller = [
        name
        for name in names[1:]
        if tests[f"{name} vs none"]
        and tests[f"{name} vs none"]["significant"]
        and norms[name]["mean"] < norms["relu"]["mean"]
    ]
    parts = [
        f"{name} {norms[name]['mean'] / norms['relu']['mean']:.2f}x (p = {_p(tests[f'{name} vs none'])})"
        for name in names[1:]
    ]
    verdict = (
        ("Supported" if len(smaller) == len(names) - 1 else "Supported in part" if smaller else "Not supported here")
        + ": the kernels' norm after the last epoch, against no regularizer's: "
        + ", ".join(parts)
        + "; the figures show smaller weights, not by themselves better generalization (test accuracy: "
        + ", ".join(f"{name} {_figure(_test(read[name]))}%" for name in names)
        + ")."
    )
    return {
        "id": "regularizers",
        "claim": "L2 (and L1) keep the weights small",
        "setups": list(names),
        "figures": {"all kernels' norm after the last epoch": norms},
        "tests": tests,
        "series": {name: _series_kernel_norm(read[name]) for name in names},
        "series_title": "all kernels' norm",
        "verdict": verdict,
    }


def _series_kernel_norm(records):
    epochs = len(records[0]["dynamics"]["epochs"])
    return [
        {"epoch": epoch, **_summary([_kernel_norm(record, epoch) for record in records], NON_NEGATIVE)}
        for epoch in range(epochs)
    ]


def _gap(record):
    last = record["history"][-1]
    return last["val_loss"] - last["loss"]


def claim_dropout(read):
    names = ("relu", "dropout-0.45")
    gaps = {name: _summary([_gap(record) for record in read[name]]) for name in names}
    dead = {
        name: _scaled(_summary(_last(read[name], "layers", FIRST_ACTIVATION, "dead"), SHARE), 100) for name in names
    }
    validation = {name: _summary([record["history"][-1]["val_loss"] for record in read[name]]) for name in names}
    validation_test = _welch(
        [r["history"][-1]["val_loss"] for r in read["dropout-0.45"]],
        [r["history"][-1]["val_loss"] for r in read["relu"]],
    )
    gap_test = _welch([_gap(r) for r in read["dropout-0.45"]], [_gap(r) for r in read["relu"]])
    dead_test = _welch(
        _last(read["dropout-0.45"], "layers", FIRST_ACTIVATION, "dead"),
        _last(read["relu"], "layers", FIRST_ACTIVATION, "dead"),
    )
    narrower = gap_test and gap_test["significant"] and gaps["dropout-0.45"]["mean"] < gaps["relu"]["mean"]
    lower = (
        validation_test
        and validation_test["significant"]
        and validation["dropout-0.45"]["mean"] < validation["relu"]["mean"]
    )
    verdict = (
        f"{'Supported' if lower else 'Supported in part' if narrower else 'Not supported here'}: the validation loss after "
        f"the last epoch is {validation['dropout-0.45']['mean']:.3g} with dropout(0.45) against {validation['relu']['mean']:.3g} "
        f"without (p = {_p(validation_test)}); validation loss minus training loss is {gaps['dropout-0.45']['mean']:.3g} "
        f"against {gaps['relu']['mean']:.3g} (p = {_p(gap_test)}), but Keras computes the training loss with dropout on, "
        "which raises it by itself: that gap is narrower by how it is measured as much as by less overfitting, and the "
        f"validation loss is the fair figure. Never-firing first-layer units: {dead['dropout-0.45']['mean']:.1f}% against "
        f"{dead['relu']['mean']:.1f}% (p = {_p(dead_test)}). Co-adaptation itself is not measured by these figures."
    )
    return {
        "id": "dropout",
        "claim": "Dropout keeps units from co-adapting (less overfitting)",
        "setups": list(names),
        "figures": {
            "validation loss, last epoch": validation,
            "validation loss - training loss (dropout on), last epoch": gaps,
            "never-firing first-layer units, last epoch (%)": dead,
        },
        "tests": {
            "validation loss, dropout vs none": validation_test,
            "gap, dropout vs none": gap_test,
            "never-firing, dropout vs none": dead_test,
        },
        "series": {name: _series(read[name], "layers", FIRST_ACTIVATION, "dead", SHARE) for name in names},
        "series_title": "never-firing share of the first layer's units",
        "verdict": verdict,
    }


def claim_optimizers(read):
    names = ("dropout-0.45", "adam", "rmsprop")
    kernels = [
        weight["name"] for weight in read["adam"][0]["dynamics"]["weights"] if weight["name"].endswith("/kernel")
    ]
    ratios = {
        kernel: {name: _summary([_mean_update_ratio(record, kernel) for record in read[name]]) for name in names}
        for kernel in kernels
    }
    spread = {
        name: max(ratios[k][name]["mean"] for k in kernels) / min(ratios[k][name]["mean"] for k in kernels)
        for name in names
    }
    # Per seed, the largest layer's mean update/weight over the smallest's: a test of "the layers' steps are more
    # alike under Adam (RMSprop) than under SGD's one rate".
    per_seed = {
        name: [
            max(_mean_update_ratio(record, k) for k in kernels) / min(_mean_update_ratio(record, k) for k in kernels)
            for record in read[name]
        ]
        for name in names
    }
    tests = {f"layer spread, {name} vs SGD": _welch(per_seed[name], per_seed["dropout-0.45"]) for name in names[1:]}
    evener = [
        name
        for name in names[1:]
        if tests[f"layer spread, {name} vs SGD"]
        and tests[f"layer spread, {name} vs SGD"]["significant"]
        and spread[name] < spread["dropout-0.45"]
    ]
    verdict = (
        ("Supported" if len(evener) == 2 else "Supported in part" if evener else "Not supported here")
        + ": the layers' steps are more alike under "
        + (" and ".join(evener) if evener else "neither adaptive optimizer")
        + " than under SGD ("
        + ", ".join(f"{name} p = {_p(tests[f'layer spread, {name} vs SGD'])}" for name in names[1:])
        + "). Per layer, the mean update over weight norm across epochs: "
        + "; ".join(
            f"{name} "
            + ", ".join(f"{ratios[k][name]['mean']:.2g}" for k in kernels)
            + f" (largest/smallest layer {spread[name]:.2g}x)"
            for name in names
        )
        + ". Adam and RMSprop scale each weight's step by its own gradient history; a layer-level ratio shows whether the "
        "layers' relative steps are more alike than SGD's one rate gives, not the per-weight adaptation itself."
    )
    return {
        "id": "optimizers",
        "claim": "Adam (and RMSprop) adapt each weight's step, where SGD takes one rate for all",
        "setups": list(names),
        "figures": {f"mean update / weight, {kernel}": ratios[kernel] for kernel in kernels},
        "tests": tests,
        "series": {name: _series(read[name], "weights", kernels[0], "update_ratio")[1:] for name in names},
        "series_title": f"{kernels[0]}'s update / weight",
        "verdict": verdict,
        "layer_spread": spread,
    }


def claim_rnn(read):
    names = ("rnn-sgd", "rnn-adam")
    series = {name: _series(read[name], "weights", RECURRENT_KERNEL, "gradient_norm") for name in names}
    first = {
        name: _summary([r["dynamics"]["epochs"][1]["weights"][RECURRENT_KERNEL]["gradient_norm"] for r in read[name]])
        for name in names
    }
    last = {name: _summary(_last(read[name], "weights", RECURRENT_KERNEL, "gradient_norm")) for name in names}
    change = last["rnn-sgd"]["mean"] / first["rnn-sgd"]["mean"]
    test = _welch(
        _last(read["rnn-sgd"], "weights", RECURRENT_KERNEL, "gradient_norm"),
        [r["dynamics"]["epochs"][1]["weights"][RECURRENT_KERNEL]["gradient_norm"] for r in read["rnn-sgd"]],
    )
    verdict = (
        f"Under SGD the recurrent kernel's gradient norm goes from {first['rnn-sgd']['mean']:.3g} after epoch 1 to "
        f"{last['rnn-sgd']['mean']:.3g} after the last ({change:.2g}x, p = {_p(test)}), "
        f"with test accuracy {_figure(_test(read['rnn-sgd']))}%; Adam's ends at {last['rnn-adam']['mean']:.3g}. "
        + (
            "No vanishing or exploding gradient shows over these epochs on 28 steps; the figures cannot speak for longer sequences."
            if 0.1 < change < 10
            else "The gradient changes by an order of magnitude or more: the sign of a vanishing or exploding gradient."
        )
    )
    return {
        "id": "rnn",
        "claim": "The RNN's recurrent kernel under SGD: how its gradient behaves over training",
        "setups": list(names),
        "figures": {"recurrent kernel's gradient norm after epoch 1": first, "after the last epoch": last},
        "tests": {"SGD: last epoch vs epoch 1": test},
        "series": series,
        "series_title": "recurrent kernel's gradient norm",
        "verdict": verdict,
    }


CLAIMS = (claim_activation, claim_regularizers, claim_dropout, claim_optimizers, claim_rnn)


def draw(claim, path):
    """The claim's series over epochs: a line per setup, its 95% band over seeds shaded."""
    from mnistlab.outputs import plots

    plt = plots.plt
    figure, axis = plt.subplots(figsize=(6, 3.4))
    for name, rows in claim["series"].items():
        rows = [row for row in rows if row["mean"] is not None]
        epochs = [row["epoch"] for row in rows]
        axis.plot(epochs, [row["mean"] for row in rows], label=f"{name} ({SETUPS[name][2]})", linewidth=1.5)
        banded = [row for row in rows if row["ci_low"] is not None]
        if banded:
            axis.fill_between(
                [r["epoch"] for r in banded], [r["ci_low"] for r in banded], [r["ci_high"] for r in banded], alpha=0.2
            )
    axis.set_xlabel("epoch (0: before training)")
    axis.set_ylabel(claim["series_title"])
    axis.legend(fontsize=7, loc="best")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    plots.save_figure(figure, path)


def render(results):
    """docs/dynamics.md from the claims' JSON."""
    lines = [
        "# Why it learns: the chapter's claims, measured",
        "",
        "<!-- rendered by scripts/render_docs.py from docs/dynamics/claims.json (scripts/measure_dynamics_claims.py); do not edit -->",
        "",
        f"Each run records its dynamics (`mnistlab dynamics RUN`, the lab's run page, docs/architecture.md's `ml/dynamics.py`): "
        f"per weight its norm, its update over its norm and the loss' gradient on 256 fixed training images, per layer the "
        f"never-firing and saturated shares, at epoch 0 and after each epoch. Here {results['seeds']} seeds per setup on "
        f"{results['dataset']} ({results['train_images']:,} training images), {results['epochs_note']}; "
        f"figures are means over seeds with their 95% t-intervals, and Welch's test between setups. "
        f"Figures drawn on {results['date']} at commit `{results['commit'][:10]}` ({results['machine']['cpus']} CPUs, "
        f"{results['machine']['platform']}) from the runs listed in docs/dynamics/claims.json, kept in the script's "
        "resumable store (each run directory's name says when it was trained).",
        "",
        "| setup | what |",
        "|---|---|",
    ]
    lines += [f"| {name} | {what} |" for name, what in results["setups"].items()]
    for claim in results["claims"]:
        lines += ["", f"## {claim['claim']}", "", f"**Verdict.** {claim['verdict']}", ""]
        for title, per_setup in claim["figures"].items():
            lines.append(
                f"- {title}: " + "; ".join(f"{name} {_figure(summary)}" for name, summary in per_setup.items())
            )
        for title, test in claim["tests"].items():
            if test:
                lines.append(f"- Welch's test, {title}: p = {_p(test)}, effect size d = {test['cohens_d']:.2g}")
        lines += ["", f"![{claim['series_title']} over epochs](dynamics/{claim['id']}.png)"]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--work", default=str(REPO / ".dynamics-claims"), help="the runs' store and directories (resumable)"
    )
    parser.add_argument("--epochs", type=int, help="epochs of the MLP setups (default: the book's 20)")
    parser.add_argument("--rnn-epochs", type=int, help="epochs of the RNN setups (default: the book's 20)")
    args = parser.parse_args()
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    import os

    os.environ["MNISTLAB_RUNS"] = str(work)
    dataset, train_images, runs = train_all(args.dataset, args.seeds, args.workers, work, args.epochs, args.rnn_epochs)
    read = {name: [_read(run_dir) for run_dir in run_dirs] for name, run_dirs in runs.items()}
    claims = [claim(read) for claim in CLAIMS]
    OUT.mkdir(parents=True, exist_ok=True)
    for claim in claims:
        draw(claim, OUT / f"{claim['id']}.png")
    epochs_note = f"MLP setups {args.epochs or 'the book’s 20'} epochs, RNN setups {args.rnn_epochs or 'the book’s 20'}"
    results = {
        **provenance.stamp(REPO),
        "dataset": dataset,
        "train_images": train_images,
        "seeds": args.seeds,
        "epochs_note": epochs_note,
        "setups": {name: what for name, (_, _, what) in SETUPS.items()},
        "runs": {name: [str(path.name) for path in paths] for name, paths in runs.items()},
        "claims": claims,
    }
    fileio.write_json(OUT / "claims.json", results)
    (REPO / "docs" / "dynamics.md").write_text(render(results))
    print(json.dumps([{"claim": claim["claim"], "verdict": claim["verdict"]} for claim in claims], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
