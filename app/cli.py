"""The `distill-guard` command line: parses the command and runs it."""

from __future__ import annotations

import argparse
import importlib
import sys

DESCRIPTION = """\
Detects model-distillation campaigns in an LLM API's gateway events and publishes alerts for analysts and
rate-limit decisions for the API's rate limiter. Run it as a streaming worker on Kafka, replay recorded
events through the same detector, or simulate labelled traffic and evaluate the decisions against it.
`enforcer` applies the decisions at the gateway (an Envoy ext_authz service); `stand-down` lifts a wave of
live decisions at once."""

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
    "app.enforce.cli",
    "app.backtest.cli",
    "app.operate.cli",
    "app.feedback.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="distill-guard", description=DESCRIPTION,
                                     epilog="`distill-guard COMMAND --help` describes a command.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
