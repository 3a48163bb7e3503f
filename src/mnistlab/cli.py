"""The `mnistlab` command: parse, call the library, print.

Keras is imported only inside commands, after the backend has been chosen
from the config, because Keras fixes its backend at import.
"""

import argparse
import json
import pathlib
import sys

from mnistlab import presets as presets_lib
from mnistlab.config import BACKENDS, Config
from mnistlab.errors import MnistlabError

EXIT_USER_ERROR = 2
EXIT_DIVERGED = 3


# --------------------------------------------------------------------------
# Shared helpers


def config_from_args(args):
    """A preset (or the defaults) with the command line's overrides applied and validated."""
    if getattr(args, "preset", None):
        config = presets_lib.get(args.preset).build_config()
    else:
        config = Config()
    config = config.with_overrides(getattr(args, "set", None) or [])
    changes = {}
    for option, key in (("epochs", "epochs"), ("batch_size", "batch_size"), ("seed", "seed"), ("dataset", "dataset"), ("backend", "backend"), ("limit", "limit"), ("precision", "precision")):
        value = getattr(args, option, None)
        if value is not None:
            changes[key] = value
    return config.replace(**changes) if changes else config


def add_config_options(parser, preset_required=False):
    parser.add_argument("preset", nargs=None if preset_required else "?", help="preset name (see `mnistlab presets`); omit to start from the defaults")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. --set hidden_units=512,512 --set optimizer=sgd (repeatable)")
    parser.add_argument("--backend", choices=BACKENDS, help="Keras backend (default auto: the fastest measured for the model family)")


def add_dataset_option(parser):
    parser.add_argument("--dataset", help="mnist, fashion-mnist, mnist-mini, auto (MNIST if available, else mnist-mini), an idx directory or a .npz file")


def print_json(obj):
    print(json.dumps(obj, indent=2, default=str))


def percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


# --------------------------------------------------------------------------
# Commands


def cmd_presets(args):
    rows = list(presets_lib.all_presets().values())
    if args.json:
        print_json([{"name": p.name, "description": p.description, "book_train_accuracy": p.book_train_accuracy, "book_test_accuracy": p.book_test_accuracy, "config": p.config} for p in rows])
        return 0
    width = max(len(p.name) for p in rows)
    for preset in rows:
        book = f"book test {preset.book_test_accuracy}%" if preset.book_test_accuracy else ""
        if preset.book_train_accuracy:
            book = f"book train {preset.book_train_accuracy}% / test {preset.book_test_accuracy}%"
        print(f"{preset.name:<{width}}  {preset.description}  [{book}]")
    print(f"\n{len(rows)} presets. Table 1.3.2 rows read the printed widths as Listing 1.3.2's two hidden layers; append @three-hidden for three hidden layers.")
    return 0


def cmd_data(args):
    from mnistlab import data, plots

    dataset = data.load_dataset(args.dataset or "auto")
    print(dataset.summary())
    # The book's format: print("Train labels: ", dict(zip(unique, counts)))
    print("Train labels: ", data.label_counts(dataset.y_train))
    print("Test labels: ", data.label_counts(dataset.y_test))
    out = pathlib.Path(args.out)
    plots.sample_grid(dataset.x_train, dataset.y_train, out, seed=args.seed)
    print(f"Wrote 5x5 sample grid to {out}")
    return 0


def _built_model(args):
    from mnistlab import train

    config = train.resolve_config(config_from_args(args))
    from mnistlab import models

    return models.build_model(config), config


def cmd_summary(args):
    model, config = _built_model(args)
    from mnistlab import models

    print(models.summary_text(model))
    return 0


def cmd_plot(args):
    if pathlib.Path(args.out).suffix.lower() not in (".png", ".svg"):
        raise MnistlabError(f"--out {args.out}: the diagram is written as .png or .svg; name the file accordingly")
    model, _ = _built_model(args)
    from mnistlab import models

    models.plot(model, args.out)
    print(f"Wrote model diagram to {args.out}")
    return 0


def cmd_train(args):
    from mnistlab import train

    config = config_from_args(args)
    verbose = 0 if args.json else None
    metrics = train.train(config, run_dir=args.out, name=args.preset, verbose=verbose)
    if args.json:
        print_json(metrics)
    elif metrics["status"] == "diverged":
        pass
    else:
        print(f"Train accuracy (last epoch, as Keras reports it): {percent(metrics['train_accuracy'])}")
        print(f"Test accuracy: {percent(metrics['test_accuracy'])}")
        print(f"Run saved in {metrics['run_dir']}")
    if metrics["status"] == "diverged":
        print(f"error: training diverged (loss became {metrics['train_loss']} at epoch {metrics['diverged_at_epoch']}); lower the learning rate or change the loss", file=sys.stderr)
        return EXIT_DIVERGED
    return 0


def cmd_evaluate(args):
    from mnistlab import train

    result = train.evaluate(args.run_dir, dataset=args.dataset)
    if args.json:
        print_json(result)
    else:
        print(f"Test accuracy: {percent(result['test_accuracy'])} on {result['test_samples']} {result['dataset']} test images (loss {result['test_loss']:.4f})")
    return 0


def cmd_listings(args):
    """The main job: train the three book listings, each in its own process, and print their accuracies."""
    from mnistlab import data, runner

    dataset_name = args.dataset or "auto"
    if dataset_name == "auto":
        # Decide once, in one line, which dataset all three use.
        dataset_name = data.load_dataset("auto").name
    results = []
    for name in ("listing-1.3.2", "listing-1.4.1", "listing-1.5.1"):
        config = presets_lib.get(name).build_config(dataset=dataset_name, seed=args.seed)
        if args.epochs:
            config = config.replace(epochs=args.epochs)
        if args.limit:
            config = config.replace(limit=args.limit)
        print(f"== {name}: {config.describe()}, {config.epochs} epochs on {dataset_name}", flush=True)
        metrics = runner.run_isolated(config, preset=name)
        results.append((name, metrics))
    print()
    print(f"{'listing':<15} {'model':<5} {'backend':<11} {'epochs':>6} {'train acc':>10} {'test acc':>9} {'book test':>10}")
    for name, metrics in results:
        book = presets_lib.get(name).book_test_accuracy
        print(f"{name:<15} {metrics['model']:<5} {metrics['backend']:<11} {metrics['epochs']:>6} {percent(metrics['train_accuracy']):>10} {percent(metrics['test_accuracy']):>9} {book:>9}%")
    if dataset_name != "mnist":
        print(f"(trained on {dataset_name}; the book's figures are for the full MNIST)")
    return 0


def _print_outcomes_summary(outcomes):
    counts = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    print("Runs: " + ", ".join(f"{count} {status}" for status, count in sorted(counts.items())))
    return 0 if not counts.get("failed") else 1


def cmd_reproduce(args):
    from mnistlab import reproduce

    results = reproduce.reproduce(
        args.table, seeds=args.seeds, dataset=args.dataset, epochs=args.epochs, limit=args.limit, workers=args.workers,
        executor=args.executor, address=args.address, store_path=args.store, out_dir=args.out, backend=args.backend or "auto",
        mlp_reading=args.mlp_reading,
    )
    missing = 0
    for name, result in results.items():
        print(result["markdown"])
        print(f"Saved {', '.join(str(p) for p in result['paths'].values())}\n")
        missing += sum(row["planned"] - row["runs"] for row in result["rows"])
    if missing:
        print(f"error: {missing} planned run(s) did not finish (see `mnistlab runs list --status failed`); run the same command again to retry them", file=sys.stderr)
        return 1
    return 0


def cmd_sweep(args):
    from mnistlab import stats, sweep
    from mnistlab.store import Store

    name, dataset_spec, seeds, grid_keys, configs = sweep.load_sweep_file(args.file)
    dataset = sweep.resolve_dataset(args.dataset or dataset_spec)
    jobs = sweep.plan(configs, dataset, group=name)
    outcomes = sweep.run(jobs, store_path=args.store, workers=args.workers, executor=args.executor, address=args.address)
    # One line per grid point: the mean over seeds.
    points = {}
    with Store(args.store) as store:
        for job in jobs:
            run = store.done_run(job.key)
            label = ", ".join(f"{key}={getattr(job.config, key)}" for key in grid_keys) or job.config.describe()
            points.setdefault(label, []).append(None if run is None else 100 * run["test_accuracy"])
    print(f"\nSweep {name} on {dataset.name}, {len(seeds)} seed(s):")
    for label, values in points.items():
        summary = stats.summarize(values)
        ci = "" if summary["ci_low"] is None else f"  95% CI [{summary['ci_low']:.2f}, {summary['ci_high']:.2f}]"
        mean = "n/a" if summary["mean"] is None else f"{summary['mean']:.2f}%"
        print(f"  {label:<50} test {mean} over {summary['n']} run(s){ci}")
    return _print_outcomes_summary(outcomes)


def cmd_runs(args):
    from mnistlab import stats
    from mnistlab.store import Store

    with Store(args.store) as store:
        store.reap()
        if args.runs_command == "list":
            rows = store.runs(status=args.status, preset=args.preset, group=args.group)
            if args.json:
                print_json(rows)
                return 0
            print(f"{'id':>5} {'status':<11} {'preset / model':<28} {'dataset':<14} {'backend':<10} {'seed':>4} {'test acc':>9} {'seconds':>8}")
            for row in rows[-args.last :] if args.last else rows:
                label = row["preset"] or row["model"]
                print(f"{row['id']:>5} {row['status']:<11} {label:<28} {row['dataset']:<14} {row['backend']:<10} {row['seed']:>4} {percent(row['test_accuracy']):>9} {row['seconds'] or 0:>8.1f}")
            return 0
        if args.runs_command == "show":
            run = store.get(args.run_id)
            run["epochs"] = store.epochs(args.run_id)
            for key in ("config_json", "metrics_json", "machine_json", "versions_json"):
                if run.get(key):
                    run[key.removesuffix("_json")] = json.loads(run.pop(key))
                else:
                    run.pop(key, None)
            print_json(run)
            return 0
        # compare
        sides = [_runs_for(store, spec, args.dataset) for spec in (args.a, args.b)]
        try:
            result = stats.compare([100 * r["test_accuracy"] for r in sides[0]], [100 * r["test_accuracy"] for r in sides[1]])
        except ValueError as error:
            raise MnistlabError(str(error)) from None
        result["a"], result["b"] = args.a, args.b
        if args.json:
            print_json(result)
            return 0
        print(f"A = {args.a}: test {result['mean_a']:.2f}% over {result['n_a']} runs")
        print(f"B = {args.b}: test {result['mean_b']:.2f}% over {result['n_b']} runs")
        print(f"A - B = {result['difference']:+.2f} points, 95% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] ({result['test']})")
        print(f"Verdict: {result['verdict']}.")
        return 0


def cmd_report(args):
    from mnistlab import report

    if args.target in presets_lib.TABLES:
        result = report.table_report(args.target, args.out, store_path=args.store, table_json=args.table_json)
    elif pathlib.Path(args.target).is_dir():
        result = report.run_report(args.target, args.out)
    else:
        raise MnistlabError(f"{args.target!r} is neither a run directory nor one of {', '.join(presets_lib.TABLES)}")
    print(f"Wrote {result['html']} and {len(result['figures'])} PNGs in {pathlib.Path(result['figures'][0]).parent}")
    return 0


def cmd_figures(args):
    from mnistlab import figures

    for path in figures.write_all(args.out):
        print(f"Wrote {path}")
    return 0


def cmd_predict(args):
    from mnistlab import predict

    predict.activate_for([args.run_dir], args.runtime, args.backend)
    results = predict.predict_files(args.run_dir, args.images, top=args.top, runtime=args.runtime, show_input_dir=args.show_input)
    if args.json:
        print_json(results)
        return 0
    for result in results:
        ranked = ", ".join(f"{item['class']} ({100 * item['probability']:.1f}%)" for item in result["top"])
        print(f"{result['image']}: {result['prediction']}   top {len(result['top'])}: {ranked}")
        if result.get("input_png"):
            print(f"  model input written to {result['input_png']}")
    return 0


def cmd_serve(args):
    from mnistlab import serve

    serve.run(args.run_dirs, host=args.host, port=args.port, runtime=args.runtime, store_path=args.store)
    return 0


def cmd_export(args):
    from mnistlab import export

    result = export.export(args.run_dir, args.format, args.out)
    message = f"Wrote {result['path']}"
    if "max_abs_difference" in result:
        message += f" (ONNX vs Keras on {result['samples']} test digits: max |difference| {result['max_abs_difference']:.1e}, same class on {100 * result['argmax_agreement']:.1f}%)"
    print(message)
    return 0


def _runs_for(store, spec, dataset=None):
    """Done runs of one configuration named by a preset, a config-hash prefix or group=NAME."""
    if spec.startswith("group="):
        runs = store.runs(status="done", group=spec.split("=", 1)[1])
    elif presets_lib.all_presets().get(spec) or "@" in spec:
        runs = store.runs(status="done", preset=spec)
    else:
        runs = store.runs(status="done", config_hash=spec)
    if dataset:
        runs = [run for run in runs if run["dataset"] == dataset]
    if not runs:
        raise MnistlabError(f"no finished runs match {spec!r}; give a preset name, a config hash (see `mnistlab runs list --json`) or group=NAME")
    variants = {(run["config_hash"], run["dataset"], run["backend"]) for run in runs}
    if len(variants) > 1:
        listed = "; ".join(f"config {c} on {d} with {b}" for c, d, b in sorted(variants))
        raise MnistlabError(f"{spec!r} matches runs of {len(variants)} different setups ({listed}); name one config hash or add --dataset")
    return runs


# --------------------------------------------------------------------------


def build_parser():
    parser = argparse.ArgumentParser(prog="mnistlab", description="Build, train, compare and use the MLP, CNN and RNN of Chapter 1 of Advanced Deep Learning with Keras.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub = commands.add_parser("presets", help="list the book's listings and table rows")
    sub.add_argument("--json", action="store_true")
    sub.set_defaults(handler=cmd_presets)

    sub = commands.add_parser("data", help="print label counts and write a 5x5 sample grid")
    add_dataset_option(sub)
    sub.add_argument("--out", default="mnist-samples.png", help="PNG to write (default mnist-samples.png)")
    sub.add_argument("--seed", type=int, default=0)
    sub.set_defaults(handler=cmd_data)

    sub = commands.add_parser("summary", help="print the Keras model summary")
    add_config_options(sub)
    sub.set_defaults(handler=cmd_summary)

    sub = commands.add_parser("plot", help="write the model diagram (PNG or SVG)")
    add_config_options(sub)
    sub.add_argument("--out", required=True, help="diagram file, .png or .svg")
    sub.set_defaults(handler=cmd_plot)

    sub = commands.add_parser("train", help="train a preset or config and save the run")
    add_config_options(sub)
    add_dataset_option(sub)
    sub.add_argument("--epochs", type=int)
    sub.add_argument("--batch-size", type=int)
    sub.add_argument("--seed", type=int)
    sub.add_argument("--limit", type=int, help="use only the first N training samples")
    sub.add_argument("--precision", choices=("float32", "bf16"))
    sub.add_argument("--out", help="run directory (default runs/<time>-<preset>-<backend>-s<seed>)")
    sub.add_argument("--json", action="store_true", help="print the metrics as JSON instead of progress")
    sub.set_defaults(handler=cmd_train)

    sub = commands.add_parser("evaluate", help="reload a run and evaluate it on a test set")
    sub.add_argument("run_dir")
    add_dataset_option(sub)
    sub.add_argument("--json", action="store_true")
    sub.set_defaults(handler=cmd_evaluate)

    sub = commands.add_parser("listings", help="the main job: train the three book listings and print their test accuracies")
    add_dataset_option(sub)
    sub.add_argument("--epochs", type=int, help="override each listing's epochs (default: the book's)")
    sub.add_argument("--limit", type=int, help="use only the first N training samples")
    sub.add_argument("--seed", type=int, default=0)
    sub.set_defaults(handler=cmd_listings)

    def add_executor_options(sub):
        sub.add_argument("--workers", type=int, default=1, help="runs at once (default 1)")
        sub.add_argument("--executor", choices=("local", "ray"), default="local", help="local processes (default) or Ray tasks")
        sub.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
        sub.add_argument("--store", help="run store (default: $MNISTLAB_STORE or runs/runs.db)")

    from mnistlab import presets as _presets

    sub = commands.add_parser("reproduce", help="reproduce a table of the chapter across seeds and compare with the book")
    sub.add_argument("table", choices=(*_presets.TABLES, "all"))
    sub.add_argument("--seeds", type=int, default=3, help="seeds per row (default 3)")
    add_dataset_option(sub)
    sub.add_argument("--epochs", type=int, help="override the book's epochs (for quick checks)")
    sub.add_argument("--limit", type=int, help="use only the first N training samples")
    sub.add_argument("--backend", choices=BACKENDS)
    sub.add_argument("--mlp-reading", choices=_presets.MLP_READINGS, default=_presets.LISTING_READING, help="how Table 1.3.2's three widths are read (see README)")
    sub.add_argument("--out", help="directory for the .md/.csv/.json table (default: tables/ beside the store)")
    add_executor_options(sub)
    sub.set_defaults(handler=cmd_reproduce)

    sub = commands.add_parser("sweep", help="run a grid of configs x seeds from a TOML file")
    sub.add_argument("file")
    add_dataset_option(sub)
    add_executor_options(sub)
    sub.set_defaults(handler=cmd_sweep)

    sub = commands.add_parser("runs", help="list, show and compare stored runs")
    runs_commands = sub.add_subparsers(dest="runs_command", required=True, metavar="list|show|compare")
    listing = runs_commands.add_parser("list", help="list runs")
    listing.add_argument("--status", choices=("running", "done", "failed", "diverged", "interrupted"))
    listing.add_argument("--preset")
    listing.add_argument("--group")
    listing.add_argument("--last", type=int, help="only the last N")
    listing.add_argument("--json", action="store_true")
    show = runs_commands.add_parser("show", help="everything stored about one run")
    show.add_argument("run_id", type=int)
    compare = runs_commands.add_parser("compare", help="is A's test accuracy over seeds different from B's?")
    compare.add_argument("a", help="preset name, config hash (prefix) or group=NAME")
    compare.add_argument("b")
    compare.add_argument("--dataset", help="only runs on this dataset name")
    compare.add_argument("--json", action="store_true")
    for runs_sub in (listing, show, compare):
        runs_sub.add_argument("--store", help="run store (default: $MNISTLAB_STORE or runs/runs.db)")
    sub.set_defaults(handler=cmd_runs)

    sub = commands.add_parser("report", help="HTML report (with PNGs) of a run directory or a reproduced table")
    sub.add_argument("target", help="a run directory, or table-1.3.2 / table-1.4.1 / table-1.5.1")
    sub.add_argument("--out", required=True, help="the HTML file to write; PNGs go to <name>_files/ beside it")
    sub.add_argument("--store", help="run store (for tables)")
    sub.add_argument("--table-json", help="which reproduction of the table (default: the latest)")
    sub.set_defaults(handler=cmd_report)

    sub = commands.add_parser("predict", help="classify your own digit images with a trained run")
    sub.add_argument("run_dir")
    sub.add_argument("images", nargs="+", help="PNG, JPEG, BMP, GIF, TIFF, WebP or .npy files")
    sub.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    sub.add_argument("--runtime", choices=("keras", "onnx"), default="keras")
    sub.add_argument("--backend", choices=BACKENDS, default="auto", help="Keras backend for the keras runtime")
    sub.add_argument("--show-input", metavar="DIR", help="write the 28x28 input each model saw as PNGs here")
    sub.add_argument("--json", action="store_true")
    sub.set_defaults(handler=cmd_predict)

    sub = commands.add_parser("serve", help="the draw-a-digit web page and JSON API")
    sub.add_argument("run_dirs", nargs="*", help="runs to serve (default: the latest finished run of each family)")
    sub.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this machine only)")
    sub.add_argument("--port", type=int, default=8000)
    sub.add_argument("--runtime", choices=("keras", "onnx"), default="keras")
    sub.add_argument("--store", help="run store to find the latest runs in")
    sub.set_defaults(handler=cmd_serve)

    sub = commands.add_parser("export", help="export a run to ONNX, Keras or a TensorFlow SavedModel")
    sub.add_argument("run_dir")
    sub.add_argument("--format", choices=("onnx", "keras", "saved_model"), default="onnx")
    sub.add_argument("--out", help="default: RUN_DIR/model.onnx, RUN_DIR/exported.keras or RUN_DIR/saved_model")
    sub.set_defaults(handler=cmd_export)

    sub = commands.add_parser("figures", help="the chapter's teaching figures: activations, gradient descent, reshaping")
    sub.add_argument("--out", default="figures", help="directory (default figures/)")
    sub.set_defaults(handler=cmd_figures)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except MnistlabError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
