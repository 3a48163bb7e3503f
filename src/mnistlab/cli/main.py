"""The `mnistlab` command: parse, call one library function, print.

Keras is imported only inside commands, after the backend has been chosen
from the config, because Keras fixes its backend at import.
"""

import os
import pathlib
import sys

from mnistlab.cli import arguments
from mnistlab.core import config as config_lib
from mnistlab.core import fileio, presets, quiet
from mnistlab.core.errors import ConfigError, MissingExtra, MnistlabError
from mnistlab.ml import backend

EXIT_DIVERGED = 3


def print_json(obj):
    print(fileio.dumps(obj, indent=2))


def percent(value):
    return "n/a" if value is None else f"{100 * value:.1f}%"


def config_from_args(args):
    """A preset (or the defaults) with the command line's overrides applied and validated."""
    changes = {
        key: getattr(args, key, None)
        for key in ("epochs", "batch_size", "seed", "dataset", "backend", "limit", "precision")
    }
    return presets.configure(getattr(args, "preset", None), getattr(args, "set", None) or [], **changes)


def need(module, what, extra):
    if not backend.installed(module):
        raise MissingExtra(what, extra)


# --------------------------------------------------------------------------
# Commands: each calls one library function and prints what it returns.


def cmd_presets(args):
    rows = list(presets.all_presets().values())
    if args.json:
        return print_json(
            [
                {
                    "name": p.name,
                    "description": p.description,
                    "book_train_accuracy": p.book_train_accuracy,
                    "book_test_accuracy": p.book_test_accuracy,
                    "config": p.config,
                }
                for p in rows
            ]
        )
    width = max(len(p.name) for p in rows)
    for preset in rows:
        book = (
            f"book train {preset.book_train_accuracy}% / test {preset.book_test_accuracy}%"
            if preset.book_train_accuracy
            else f"book test {preset.book_test_accuracy}%"
        )
        print(f"{preset.name:<{width}}  {preset.description}  [{book}]")
    print(
        f"\n{len(rows)} presets. Table 1.3.2 rows read the printed widths as Listing 1.3.2's two hidden layers; append @three-hidden for three hidden layers."
    )


def cmd_keys(args):
    keys = config_lib.describe_keys(args.family)
    # Columns as wide as their longest entry, and a space between: no two ever run together.
    widths = {column: max(len(str(key[column])) for key in keys) for column in ("name", "type", "default")}
    for key in keys:
        allowed = (
            ", ".join(key["choices"] + [f"{alias}={value}" for alias, value in key["aliases"].items()]) or key["bounds"]
        )
        print(
            f"{key['name']:<{widths['name']}}  {key['type']:<{widths['type']}}  default {key['default']!s:<{widths['default']}}  {key['help']}"
            + (f" [{allowed}]" if allowed else "")
        )


def cmd_data(args):
    from mnistlab.ml import data
    from mnistlab.outputs import plots

    dataset = data.load_dataset(args.dataset or "auto")
    print(dataset.summary())
    # The book's format: print("Train labels: ", dict(zip(unique, counts)))
    print("Train labels: ", data.label_counts(dataset.y_train))
    print("Test labels: ", data.label_counts(dataset.y_test))
    plots.sample_grid(dataset.x_train, dataset.y_train, args.out, seed=args.seed)
    print(f"Wrote 5x5 sample grid to {args.out}")


def cmd_summary(args):
    from mnistlab.outputs import diagram

    print(diagram.summary(config_from_args(args)))


def cmd_plot(args):
    from mnistlab.outputs import diagram

    diagram.plot(config_from_args(args), args.out)
    print(f"Wrote model diagram to {args.out}")


def cmd_train(args):
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
    elif metrics["status"] == "done":
        print(f"Train accuracy (last epoch, as Keras reports it): {percent(metrics['train_accuracy'])}")
        print(f"Test accuracy: {percent(metrics['test_accuracy'])}")
        for note in metrics.get("notes", ()):
            print(f"note: {note}")
        print(f"Run {metrics['run_id']} saved in {metrics['run_dir']}")
    if metrics["status"] == "diverged":
        print(
            f"error: training diverged (loss became {metrics['train_loss']} at epoch {metrics['diverged_at_epoch']}); lower the learning rate or change the loss",
            file=sys.stderr,
        )
        return EXIT_DIVERGED


def cmd_evaluate(args):
    from mnistlab.ml import run_model

    result = run_model.evaluate(args.run_dir, dataset=args.dataset)
    if args.json:
        return print_json(result)
    print(
        f"Test accuracy: {percent(result['test_accuracy'])} on {result['test_samples']} {result['dataset']} test images (loss {result['test_loss']:.4f})"
    )


def cmd_listings(args):
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
    return 1 if any(outcome.status == "failed" for outcome in outcomes) else 0


def cmd_reproduce(args):
    from mnistlab.jobs import reproduce

    results = reproduce.reproduce(
        args.table,
        seeds=args.seeds,
        dataset=args.dataset,
        epochs=args.epochs,
        limit=args.limit,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
        store_path=args.store,
        out_dir=args.out,
        backend=args.backend or "auto",
        mlp_reading=args.mlp_reading,
        rows=reproduce.parse_rows(args.rows, args.table) if args.rows else None,
        backends=args.backends,
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
    from mnistlab.jobs import sweep

    changes = {key: getattr(args, key) for key in ("epochs", "limit") if getattr(args, key) is not None}
    result = sweep.run_file(
        args.file,
        dataset=args.dataset,
        store_path=args.store,
        workers=args.workers,
        executor=args.executor,
        address=args.address,
        changes=changes,
        seeds=args.seeds,
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
    return 1 if counts.get("failed") else 0


def cmd_runs_list(args):
    from mnistlab.core import paths
    from mnistlab.record import store

    if not paths.store_path(args.store).exists():  # listing creates nothing
        print(f"No runs yet: {paths.store_path(args.store)} does not exist (`mnistlab train` makes it)")
        return
    with store.Store(args.store) as index:
        index.reap()
        rows = index.runs(status=args.status, preset=args.preset, group=args.group)
    rows = rows[-args.last :] if args.last else rows
    if args.json:
        return print_json(rows)
    header = ("id", "status", "setup", "dataset", "backend", "seed", "test acc", "seconds")
    lines = [
        (
            str(row["id"]),
            row["status"],
            store.describe_run(row),
            row["dataset"],
            row["backend"],
            str(row["seed"]),
            percent(row["test_accuracy"]),
            f"{row['seconds'] or 0:.1f}",
        )
        for row in rows
    ]
    # Columns as wide as their longest cell, so long settings never push the others out of line.
    widths = [max(len(line[column]) for line in [header, *lines]) for column in range(len(header))]
    numeric = {0, 5, 6, 7}
    for line in [header, *lines]:
        print(
            " ".join(
                cell.rjust(width) if column in numeric else cell.ljust(width)
                for column, (cell, width) in enumerate(zip(line, widths))
            ).rstrip()
        )


def cmd_runs_show(args):
    from mnistlab.record import store

    with store.Store(args.store) as index:
        run = index.show(args.run_id)
    if args.json:
        return print_json(run)
    print(store.format_run(run))


def _seeds_words(count, repeats):
    """'3 seeds', and the repeats of a seed set aside (each seed counts once), in words."""
    return f"{count} seed{'s' if count != 1 else ''}" + (f" ({repeats['words']})" if repeats["count"] else "")


def _book_words(figure, where, held, reason, inside):
    """The book's figure beside a setup: with the verdict where the setup is the book's, else why not (book.against_book)."""
    from mnistlab.analysis import book

    return "" if figure is None else f"; book {figure}% ({where}): {book.verdict_words(held, reason, inside)}"


def cmd_runs_compare(args):
    from mnistlab.analysis import bands, compare

    if len(args.b) == 1 and not args.by:
        result = compare.compare(args.a, args.b[0], store_path=args.store, dataset=args.dataset, backend=args.backend)
        if args.json:
            return print_json(result)
        for side in ("a", "b"):
            against = result["book_" + side]
            book = _book_words(
                against["book_test"], against["book_where"], against["comparable"], against["reason"], against["inside"]
            )
            print(
                f"{side.upper()} = {result[side]} ({result['setup_' + side]}): test {result['mean_' + side]:.2f}% over {_seeds_words(result['n_' + side], result['repeats_' + side])}{book}"
            )
        print(
            f"A - B = {result['difference']:+.2f} points, 95% CI [{result['ci_low']:+.2f}, {result['ci_high']:+.2f}] ({result['test']})"
        )
        print(f"Verdict: {result['verdict']}.")
        return
    result = bands.compare_setups(
        [args.a, *args.b], store_path=args.store, dataset=args.dataset, by=args.by, backend=args.backend
    )
    if args.json:
        return print_json(
            {
                "setups": [
                    {key: value for key, value in setup.items() if key != "bands"} for setup in result["setups"]
                ],
                "comparisons": result["comparisons"],
            }
        )
    for setup in result["setups"]:
        test = setup["test"]
        interval = "" if test["ci_low"] is None else f", 95% CI [{test['ci_low']:.2f}, {test['ci_high']:.2f}]"
        book = _book_words(
            setup["book_test"],
            setup["book_where"],
            setup["book_comparable"],
            setup["book_reason"],
            setup["book_test_in_ci"],
        )
        print(
            f"{setup['name']} ({setup['setup']}): test {test['mean']:.2f}% over {_seeds_words(test['n'], setup['repeats'])}{interval}{book}"
        )
    for comparison in result["comparisons"]:
        numbers = (
            ""
            if comparison.get("difference") is None
            else f" {comparison['difference']:+.2f} points, 95% CI [{comparison['ci_low']:+.2f}, {comparison['ci_high']:+.2f}];"
        )
        print(f"{comparison['a']} - {comparison['b']}:{numbers} {comparison['verdict']}")


def cmd_runs_disagree(args):
    from mnistlab.analysis import atlas, compare, seeds
    from mnistlab.record import rundir, store

    with store.Store(args.store) as index:
        runs = [run for spec in args.selectors for run in compare.find_runs(index, spec, args.dataset)]
    # One run per seed (a repeat of a seed would count its answers twice); run directories once each.
    counted, _ = seeds.select_counted(list({run["id"]: run for run in runs}.values()))
    run_dirs = list(dict.fromkeys(run["run_dir"] for run in counted))
    result = atlas.disagreement(run_dirs, by=args.by)
    if args.json:
        return print_json(result)
    names = result["class_names"]
    backends = sorted({run["backend"] for run in result["runs"]})
    print(
        f"{len(result['runs'])} runs ({', '.join(backends)}) on {result['test_digits']} {result['dataset']} test digits:"
    )
    print(
        f"  disagree on {result['disagreed']} ({100 * result['disagreement_rate']:.2f}%); all wrong on {result['all_wrong']}"
    )
    for kind, digits in (
        ("most contested", result["disagreed_digits"]),
        ("wrong in every run", result["all_wrong_digits"]),
    ):
        if digits:
            shown = "; ".join(
                f"#{digit['index']} label {names[digit['label']]} answers {','.join(names[a] for a in digit['answers'])}"
                for digit in digits[: args.examples]
            )
            print(f"  {kind}: {shown}" + (" ..." if len(digits) > args.examples else ""))
    print(
        "  per class, digits disagreed on: "
        + ", ".join(f"{entry['name']} {100 * entry['rate']:.1f}%" for entry in result["per_class"])
    )
    for group, summary in result.get("groups", {}).items():
        print(
            f"  {args.by} {group}: {summary['run_count']} runs, disagree on {summary['disagreed']} ({100 * summary['disagreement_rate']:.2f}%), all wrong on {summary['all_wrong']}"
        )
    if result.get("by"):
        test = result["groups_test"]
        print(
            f"  {test['verdict'] if test else f'no test of the groups: each {args.by} needs at least 2 runs (seed noise to compare with)'}"
        )
    if result["missing"]:
        print(
            f"  {len(result['missing'])} run(s) without {rundir.PREDICTIONS_FILE}, left out: {', '.join(result['missing'])}; `mnistlab runs predictions RUN_DIR...` writes them"
        )


def cmd_runs_predictions(args):
    from mnistlab.ml import run_model
    from mnistlab.record import rundir

    for run_dir in args.run_dirs:
        if (rundir.check(run_dir) / rundir.PREDICTIONS_FILE).exists() and not args.force:
            print(f"{run_dir}: has {rundir.PREDICTIONS_FILE} already (--force writes it again)")
            continue
        result = run_model.write_predictions_from_model(run_dir)
        print(
            f"{run_dir}: wrote {rundir.PREDICTIONS_FILE} ({result['test_samples']} test digits, {result['seconds']:.1f} s)"
        )


def cmd_runs_reindex(args):
    from mnistlab.record import store

    with store.Store(args.store) as index:
        count = index.reindex(args.root)
        print(f"Indexed {count} run director{'y' if count == 1 else 'ies'} in {index.path}")


def cmd_report(args):
    from mnistlab.analysis import tables
    from mnistlab.outputs import report

    if args.format != "html":
        if len(args.targets) != 1 or args.targets[0] not in presets.TABLES:
            raise ConfigError(
                f"--format {args.format} exports a table: mnistlab report {presets.TABLES[1]} --format {args.format}"
            )
        text = tables.table_export(
            tables.table_data(args.targets[0], store_path=args.store, table_json=args.table_json), args.format
        )
        if args.out:
            fileio.write_text(args.out, text)
            print(f"Wrote {args.out}")
        else:
            sys.stdout.write(text)
        return
    if not args.out:
        raise ConfigError("an HTML report needs --out FILE.html (its PNGs go beside it)")
    result = report.report(
        args.targets,
        args.out,
        store_path=args.store,
        table_json=args.table_json,
        by=args.by,
        dataset=args.dataset,
        backend=args.backend,
    )
    print(
        f"Wrote {result['html']} and {len(result['figures'])} PNGs in {pathlib.Path(result['html']).with_name(pathlib.Path(result['html']).stem + '_files')}"
    )


def cmd_figures(args):
    from mnistlab.outputs import figures

    for path in figures.write_all(args.out):
        print(f"Wrote {path}")


def cmd_predict(args):
    from mnistlab.ml import predict

    results = predict.predict_runs(
        args.paths, top=args.top, runtime=args.runtime, backend=args.backend, show_input_dir=args.show_input
    )
    if args.json:
        return print_json(results)
    several, previous = len({result["run_dir"] for result in results}) > 1, None
    for result in results:
        if several and result["run_dir"] != previous:
            print(f"{result['run_dir']}:")
            previous = result["run_dir"]
        ranked = ", ".join(f"{item['label']} ({100 * item['probability']:.1f}%)" for item in result["top"])
        print(f"{result['image']}: {result['label']}   top {len(result['top'])}: {ranked}")
        if result.get("input_png"):
            print(f"  model input written to {result['input_png']}")


def cmd_explain(args):
    from mnistlab.outputs import sheets

    run_dirs, images = sheets.split_paths(args.paths)
    results = sheets.explain_files(
        run_dirs,
        images,
        args.out,
        method=args.method,
        backend=args.backend,
        store_path=args.store,
        dataset=args.dataset,
    )
    if args.json:
        return print_json(results)
    for result in results:
        print(
            f"{result['image']}: {result['family']} says {result['label']} (runner-up {result['runner_up']}, {result['attribution']}) -> {result['sheet']}"
        )


def cmd_serve(args):
    need("fastapi", "mnistlab serve", "serve")
    need("uvicorn", "mnistlab serve", "serve")
    from mnistlab.web import serve

    serve.run(
        args.run_dirs,
        host=args.host,
        port=args.port,
        runtime=args.runtime,
        store_path=args.store,
        dataset=args.dataset,
        workers=args.workers,
        log=lambda line: print(line, flush=True),
    )


def cmd_lab(args):
    need("fastapi", "mnistlab lab", "serve")
    need("uvicorn", "mnistlab lab", "serve")
    from mnistlab.web import lab

    lab.run(
        host=args.host,
        port=args.port,
        workers=args.workers,
        store_path=args.store,
        log=lambda line: print(line, flush=True),
        no_token=args.no_token,
        ray_address=args.ray_address,
        datasets=args.dataset,
    )


def cmd_export(args):
    from mnistlab.ml import export

    result = export.export(args.run_dir, args.format, args.out)
    message = f"Wrote {result['path']}"
    if "max_abs_difference" in result:
        message += f" (ONNX vs Keras on {result['samples']} {result['parity_dataset']} test digits: max |difference| {result['max_abs_difference']:.1e}, same class on {100 * result['argmax_agreement']:.1f}%)"
    print(message)


def main(argv=None):
    args = arguments.build_parser().parse_args(argv)
    try:
        with quiet.filtered_stderr(enabled=not args.verbose):
            return globals()[f"cmd_{args.handler}"](args) or 0
    except MnistlabError as error:
        if getattr(error, "traceback", None):
            print(error.traceback.rstrip(), file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mnistlab keys | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
