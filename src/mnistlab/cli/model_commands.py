"""Commands about the networks themselves: presets, keys, data, summary, plot."""

from mnistlab.cli import options
from mnistlab.cli.common import config_from_args, print_json
from mnistlab.core import config as config_lib
from mnistlab.core import presets


def cmd_presets(args):
    """list the book's listings and table rows"""
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
    """every config key with its type, default, choices and meaning"""
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
    """print label counts and write a 5x5 sample grid"""
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
    """print the Keras model summary"""
    from mnistlab.outputs import diagram

    print(diagram.summary(config_from_args(args)))


def cmd_plot(args):
    """write the model diagram (PNG or SVG; needs Graphviz)"""
    from mnistlab.outputs import diagram

    diagram.plot(config_from_args(args), args.out)
    print(f"Wrote model diagram to {args.out}")


# --------------------------------------------------------------------------
# The command line of these commands


def add_parsers(commands):
    """This module's commands, each with its options and the function that runs it."""
    sub = options.command(commands, "presets", cmd_presets)
    options.json_option(sub)
    sub = options.command(commands, "keys", cmd_keys)
    sub.add_argument("family", nargs="?", choices=config_lib.FAMILIES, help="only the keys that apply to this family")
    sub = options.command(commands, "data", cmd_data)
    options.dataset_option(sub)
    sub.add_argument("--out", default="mnist-samples.png", help="PNG to write (default mnist-samples.png)")
    sub.add_argument("--seed", type=int, default=0, help="which samples to show (default 0)")
    sub = options.command(commands, "summary", cmd_summary)
    options.config_options(sub)
    sub = options.command(commands, "plot", cmd_plot)
    options.config_options(sub)
    sub.add_argument("--out", required=True, help="diagram file, .png or .svg")
