"""The command line's arguments: one small function per command group, help on every option.

Each command is declared with the function that runs it (`options.command(commands, "train", cmd_train)`), whose
docstring is the command's help.
Choice lists come from the library (config, presets), never copied.
"""

import argparse
import importlib.metadata

from mnistlab.cli import model_commands, runs_commands, training_commands, use_commands


def build_parser():
    parser = argparse.ArgumentParser(
        prog="mnistlab",
        description="Build, train, compare and use the MLP, CNN and RNN of Chapter 1 of Advanced Deep Learning with Keras.",
    )
    parser.add_argument("--version", action="version", version=f"mnistlab {importlib.metadata.version('mnistlab')}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show the libraries' own log lines (TensorFlow, XLA, absl), hidden by default",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (model_commands, training_commands, runs_commands, use_commands):
        module.add_parsers(commands)
    return parser
