"""The `distill-guard` command: one subcommand per module, each registering its own arguments."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module exposes `register(subparsers)`, which adds its subcommand(s) and sets `func` on the parser
# to a callable taking the parsed namespace and returning an exit code.
_COMMAND_MODULES = (
    "app.drivers.replay_cli",
    "app.drivers.worker_cli",
    "app.rules.cli",
    "app.sim.cli",
    "app.evaluate.cli",
    "app.explain.cli",
    "app.demo.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distill-guard", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            continue  # a capability not built yet; its subcommand is simply absent
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
