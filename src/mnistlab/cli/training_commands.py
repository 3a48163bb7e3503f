"""Commands that train: train, evaluate, listings, reproduce, sweep."""

import sys

from mnistlab.cli import options
from mnistlab.cli.common import EXIT_DIVERGED, config_from_args, given, percent, print_json
from mnistlab.core import config as config_lib
from mnistlab.core import presets
from mnistlab.core.events import RunStatus

# What Ctrl+C leaves and how to go on, said by cli/main.py with the command as it was typed.
RUNS_THE_REST = "the runs already done are kept; {command} runs the rest"


def cmd_train(args):
    """train a preset or config and save the run"""
    from mnistlab.ml import run_model
    from mnistlab.record import store

    with store.Store(args.store) as index:
        metrics = run_model.train_and_save(
            config_from_args(args),
            preset=args.preset,
            run_dir=args.out,
            index=index,
            force=args.force,
            verbose=0 if args.json else None,
            tensorboard=args.tensorboard,
        )
    if "given_at" in metrics:
        print(
            f"this run is already done as run {metrics['run_id']} ({metrics['run_dir']}); {metrics['given_at']} is that run now (--force trains it again)",
            file=sys.stderr,
        )
    if args.json:
        print_json(metrics)
    elif metrics["status"] == RunStatus.DONE:
        print(f"Train accuracy (last epoch, as Keras reports it): {percent(metrics['train_accuracy'])}")
        print(f"Test accuracy: {percent(metrics['test_accuracy'])}")
        for note in metrics.get("notes", ()):
            print(f"note: {note}")
        print(f"Run {metrics['run_id']} saved in {metrics['run_dir']}")
    if metrics["status"] == RunStatus.DIVERGED:
        print(
            f"error: training diverged (loss became {metrics['train_loss']} at epoch {metrics['diverged_at_epoch']}); lower the learning rate or change the loss",
            file=sys.stderr,
        )
        return EXIT_DIVERGED


def cmd_evaluate(args):
    """reload a run and evaluate it on a test set"""
    from mnistlab.ml import run_model

    result = run_model.evaluate(args.run_dir, dataset=args.dataset)
    if args.json:
        return print_json(result)
    print(
        f"Test accuracy: {percent(result['test_accuracy'])} on {result['test_samples']} {result['dataset']} test images (loss {result['test_loss']:.4f})"
    )


def cmd_listings(args):
    """the main job: train the three book listings and print their test accuracies"""
    from mnistlab.jobs import reproduce

    dataset_name, outcomes = reproduce.listings(
        args.dataset, epochs=args.epochs, limit=args.limit, seed=args.seed, store_path=args.store
    )
    print(
        f"\n{'listing':<15} {'model':<5} {'backend':<11} {'epochs':>6} {'train acc':>10} {'test acc':>9} {'book test':>10}"
    )
    for outcome in outcomes:
        metrics, book = outcome.metrics or {}, presets.get(outcome.job.preset).book_test_accuracy
        print(
            f"{outcome.job.preset:<15} {outcome.job.config.family:<5} {outcome.job.config.backend:<11} {metrics.get('epochs', '-'):>6} {percent(metrics.get('train_accuracy')):>10} {percent(metrics.get('test_accuracy')):>9} {book:>9}%"
        )
    if dataset_name != "mnist":
        print(f"(trained on {dataset_name}; the book's figures are for the full MNIST)")
    return 1 if any(outcome.status == RunStatus.FAILED for outcome in outcomes) else 0


def cmd_reproduce(args):
    """reproduce a table of the chapter across seeds and compare with the book"""
    from mnistlab.jobs import reproduce

    choice = reproduce.TableChoice(
        **given(args, "epochs", "limit", "mlp_reading", "backends"),
        backend=args.backend or "auto",
        rows=reproduce.parse_rows(args.rows, args.table) if args.rows else None,
    )
    results = reproduce.reproduce(
        args.table,
        **given(args, "seeds", "dataset", "workers", "executor", "address"),
        choice=choice,
        store_path=args.store,
        out_dir=args.out,
    )
    for result in results.values():
        print(result["markdown"])
        print(f"Saved {', '.join(str(p) for p in result['paths'].values())}\n")
    missing = sum(row["planned"] - row["runs"] for result in results.values() for row in result["rows"])
    if missing:
        print(
            f"error: {missing} planned run(s) did not finish (see `mnistlab runs list --status failed`); run the same command again to retry them",
            file=sys.stderr,
        )
        return 1


def cmd_sweep(args):
    """run a grid of configs x seeds from a TOML file"""
    from mnistlab.jobs import sweep

    changes = {key: getattr(args, key) for key in ("epochs", "limit") if getattr(args, key) is not None}
    result = sweep.run_file(
        args.file,
        store_path=args.store,
        changes=changes,
        **given(args, "dataset", "workers", "executor", "address", "seeds"),
    )
    print(f"\nSweep {result['name']} on {result['dataset']}, {len(result['seeds'])} seed(s):")
    for point in result["points"]:
        summary = point["summary"]
        interval = "" if summary["ci_low"] is None else f"  95% CI [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"
        mean = "n/a" if summary["mean"] is None else f"{summary['mean']:.2f}%"
        print(f"  {point['label']:<50} test {mean} over {summary['n']} run(s){interval}")
    counts = {}
    for outcome in result["outcomes"]:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print("Runs: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
    return 1 if counts.get(RunStatus.FAILED.value) else 0


# --------------------------------------------------------------------------
# The command line of these commands


def add_parsers(commands):
    """This module's commands, each with its options and the function that runs it."""
    for add in (_add_train, _add_evaluate, _add_listings, _add_reproduce, _add_sweep):
        add(commands)


def _add_train(commands):
    sub = options.command(
        commands,
        "train",
        cmd_train,
        when_interrupted="the run is kept as interrupted (`mnistlab runs list` shows it); {command} trains it again from the start",
    )
    options.config_options(sub)
    options.dataset_option(sub)
    options.size_options(sub)
    options.knob_option(sub, "batch_size", "the config's, 128 in the book")
    options.knob_option(sub, "seed", "0")
    options.knob_option(sub, "precision", "float32; bf16 needs a GPU or a CPU with bf16 instructions")
    sub.add_argument(
        "--out",
        help="run directory (default: <runs root>/<time>-<preset>-<backend>-s<seed>; the runs root is $MNISTLAB_RUNS or ./runs)",
    )
    sub.add_argument("--force", action="store_true", help="train even when the same run is already done in the store")
    sub.add_argument("--tensorboard", metavar="DIR", help="also write TensorBoard logs to DIR")
    options.json_option(sub, "print the metrics as JSON instead of progress")
    options.store_option(sub)


def _add_evaluate(commands):
    sub = options.command(commands, "evaluate", cmd_evaluate)
    sub.add_argument("run_dir", help="a run directory written by `mnistlab train`")
    options.dataset_option(sub)
    options.json_option(sub)


def _add_listings(commands):
    sub = options.command(
        commands, "listings", cmd_listings, when_interrupted="{command} trains the three listings again"
    )
    options.dataset_option(sub)
    options.size_options(sub)
    sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    options.store_option(sub)


def _add_reproduce(commands):
    sub = options.command(commands, "reproduce", cmd_reproduce, when_interrupted=RUNS_THE_REST)
    sub.add_argument("table", choices=(*presets.TABLES, "all"), help="which table, or all three")
    sub.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    options.dataset_option(sub)
    options.size_options(sub)
    sub.add_argument("--backend", choices=config_lib.BACKENDS, help="Keras backend for every run (default auto)")
    sub.add_argument(
        "--backends",
        type=options.names,
        metavar="B1,B2,...",
        help="run every row on each of these backends, e.g. jax,tensorflow,torch; the table says whether they differ beyond seed noise",
    )
    sub.add_argument("--rows", help="only these rows of the table, e.g. 3,4 or 2-4 (default: every row)")
    options.one_of(sub, "--mlp-reading", presets.MLP_READINGS, "how Table 1.3.2's three widths are read (see README)")
    sub.add_argument("--out", help="directory for the .md/.csv/.json table (default: tables/ beside the store)")
    options.executor_options(sub)


def _add_sweep(commands):
    sub = options.command(commands, "sweep", cmd_sweep, when_interrupted=RUNS_THE_REST)
    sub.add_argument("file", help="sweep file (see sweeps/)")
    options.dataset_option(sub)
    options.size_options(sub, seeds=True)
    options.executor_options(sub)
