"""`mnistlab runs ...`: list, show, compare, disagree, predictions, reindex."""

from mnistlab.cli import options
from mnistlab.cli.common import percent, print_json
from mnistlab.core import events


def cmd_runs_list(args):
    """list runs with their settings"""
    from mnistlab.core import paths
    from mnistlab.record import store

    if not paths.store_path(args.store).exists():  # listing creates nothing
        print(f"No runs yet: {paths.store_path(args.store)} does not exist (`mnistlab train` makes it)")
        return
    with store.Store(args.store) as index:
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
            store.seconds_in_words(row),
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
    """everything stored about one run"""
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
    """is A's test accuracy over seeds different from B's?"""
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
    """the disagreement atlas: the test digits a group of runs answer differently, and those every run gets wrong"""
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
    """write predictions.npz (per-example test predictions) for runs trained before runs kept them"""
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
    """rebuild the store from the run directories (nothing is lost with runs.db)"""
    from mnistlab.record import store

    with store.Store(args.store) as index:
        count = index.reindex(args.root)
        print(f"Indexed {count} run director{'y' if count == 1 else 'ies'} in {index.path}")


# --------------------------------------------------------------------------
# The command line of these commands


def add_parsers(commands):
    """This module's commands, each with its options and the function that runs it."""
    runs = commands.add_parser("runs", help="list, show, compare, disagree on and re-index stored runs").add_subparsers(
        dest="runs_command", required=True, metavar="list|show|compare|disagree|predictions|reindex"
    )
    for add in (_add_list, _add_show, _add_compare, _add_disagree, _add_predictions, _add_reindex):
        add(runs)


def _add_list(runs):
    sub = options.command(runs, "list", cmd_runs_list)
    sub.add_argument("--status", choices=events.STORED_STATUSES, help="only runs with this status")
    sub.add_argument("--preset", help="only runs of this preset")
    sub.add_argument("--group", help="only runs of this sweep or table")
    sub.add_argument("--last", type=int, help="only the last N")
    options.json_option(sub, "print the raw records as JSON")


def _add_show(runs):
    sub = options.command(runs, "show", cmd_runs_show)
    sub.add_argument("run_id", type=int, help="the run's id (see `mnistlab runs list`)")
    options.json_option(sub, "print the raw record as JSON")


def _add_compare(runs):
    sub = options.command(runs, "compare", cmd_runs_compare)
    sub.add_argument("a", help="preset name, config hash (prefix) or group=NAME")
    sub.add_argument("b", nargs="*", help="the same kinds of name as A (more than one: every pair is compared)")
    sub.add_argument("--dataset", help="only runs on this dataset name")
    options.backend_option(sub, "only runs on this backend", any_backend=False)
    sub.add_argument(
        "--by",
        choices=("backend",),
        help="split each setup by backend and compare every pair (with A alone: do A's backends agree?)",
    )
    options.json_option(sub)


def _add_disagree(runs):
    sub = options.command(runs, "disagree", cmd_runs_disagree)
    options.one_or_more(
        sub,
        "selectors",
        "SELECTOR",
        "preset name, config hash (prefix), group=NAME or a run directory; several are taken together",
    )
    sub.add_argument("--dataset", help="only runs on this dataset name")
    sub.add_argument(
        "--by",
        choices=("backend", "preset", "config_hash", "seed"),
        help="also per group of runs, and whether the groups disagree beyond seed noise",
    )
    sub.add_argument(
        "--examples", type=int, default=20, help="how many digits to list of each kind (default 20; --json lists all)"
    )
    options.json_option(sub, "print the whole atlas as JSON")


def _add_predictions(runs):
    sub = options.command(runs, "predictions", cmd_runs_predictions)
    options.one_or_more(sub, "run_dirs", "RUN_DIR", "run directories with a model.keras")
    sub.add_argument("--force", action="store_true", help="write it again where it exists")


def _add_reindex(runs):
    sub = options.command(runs, "reindex", cmd_runs_reindex)
    sub.add_argument("root", nargs="?", help="directory of run directories (default: $MNISTLAB_RUNS or runs/)")
    for sub in runs.choices.values():
        options.store_option(sub)
