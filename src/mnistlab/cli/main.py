"""The `mnistlab` command: parse, call one library function, print.

Each command's function is set on its parser (`arguments.build_parser`, `options.command`) and lives in
one of the *_commands modules. Keras is imported only inside commands, after the backend has been chosen from
the config, because Keras fixes its backend at import.
"""

import os
import shlex
import sys

from mnistlab.cli import arguments
from mnistlab.core import quiet
from mnistlab.core.errors import MnistlabError


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = arguments.build_parser().parse_args(argv)
    try:
        with quiet.filtered_stderr(enabled=not args.verbose):
            return args.func(args) or 0
    except MnistlabError as error:
        if getattr(error, "traceback", None):
            print(error.traceback.rstrip(), file=sys.stderr)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(_interrupted(args, argv), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `mnistlab keys | head`: the reader left; not an error
        sys.stdout = open(os.devnull, "w")
        return 0


def _interrupted(args, argv):
    """The one line after Ctrl+C: what the command leaves behind and how to go on, where it has a way on."""
    how_to_go_on = getattr(args, "when_interrupted", None)
    if not how_to_go_on:
        return "interrupted"
    return "interrupted; " + how_to_go_on.format(command=f"`mnistlab {shlex.join(argv)}`")


if __name__ == "__main__":
    sys.exit(main())
