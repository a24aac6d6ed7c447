"""Command-line options that several subcommands share, spelled once (stdlib only:
importing this never pulls torch into building the parser)."""

from __future__ import annotations

import argparse


def add_override_option(parser: argparse.ArgumentParser, help: str) -> None:
    """``--set FIELD=VALUE`` (also ``-O``, as ``resnetlab train`` spells it), repeatable,
    collected in ``args.overrides``: the one spelling of model overrides on the CLI."""
    parser.add_argument(
        "--set",
        "-O",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=help,
    )
