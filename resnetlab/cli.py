"""The ``resnetlab`` command: one entry point, one subcommand per job.

Each subpackage registers its own subcommands through a ``register(subparsers)`` function
in its ``cli`` module, so this file only assembles them and turns project errors into a
one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from resnetlab import __version__
from resnetlab.errors import ResnetlabError

# Modules whose ``register(subparsers)`` adds subcommands, in the order shown by --help.
COMMAND_MODULES: tuple[str, ...] = (
    "resnetlab.models.cli",  # models, summary
    "resnetlab.data.cli",  # data info
    "resnetlab.training.cli",  # train, eval
    "resnetlab.store.cli",  # runs, show, plot, compare, export
    "resnetlab.live.cli",  # backends
    "resnetlab.live.watch",  # watch
    "resnetlab.jobs.cli",  # jobs
    "resnetlab.inspect.cli",  # inspect ..., experiment ...
    "resnetlab.inference.cli",  # predict
    "resnetlab.export.cli",  # export-model
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="resnetlab",
        description="Build, train, watch and inspect residual networks.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument(
        "-V",
        "--version",
        action="version",
        version=f"%(prog)s {__version__}",
        help="show the version",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that part of the toolkit is not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command line as given: `train --nproc-per-node N` re-runs it for each rank.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except ResnetlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
