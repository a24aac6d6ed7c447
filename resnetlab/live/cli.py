"""``resnetlab backends``: matplotlib backends, which work here, and what ``--live auto`` picks."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "backends",
        help="list plotting backends, which are importable here, and the live default",
        description="List matplotlib's backends (each import-checked in a subprocess), "
        "whether they are interactive, and which live backend `--live auto` picks here.",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="BACKEND",
        help="check only these backends (default: all of matplotlib's)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_backends)


def cmd_backends(args: argparse.Namespace) -> int:
    from resnetlab.live.backends import list_backends, pick_backend

    infos = list_backends(args.names or None)
    choice = pick_backend()
    if args.json:
        print(
            json.dumps(
                {
                    "auto": {"backend": choice.name, "reason": choice.reason},
                    "backends": [info.__dict__ for info in infos],
                },
                indent=2,
            )
        )
        return 0
    width = max(len(i.name) for i in infos)
    print(f"{'backend':<{width}}  {'kind':<11}  {'importable':<10}  {'live driver':<11}  detail")
    for info in infos:
        kind = "interactive" if info.interactive else "static"
        ok = "yes" if info.importable else "no"
        detail = "" if info.importable else info.detail
        print(f"{info.name:<{width}}  {kind:<11}  {ok:<10}  {info.driver or '-':<11}  {detail}")
    print(f"\n--live auto picks here: {choice.name} ({choice.reason})")
    return 0
