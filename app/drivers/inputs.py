"""What the file-driven commands (`replay`, `explain`) share: the input file, the rules and the pipeline
clock from their arguments, or a clear error for the user (exit code 2)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from app.errors import RulesError
from app.ingest.parse import BadField, parse_ts
from app.rules.load import load_rules
from app.rules.model import Rules
from app.settings import Settings


@dataclass(frozen=True, slots=True)
class Inputs:
    rules: Rules
    now_ms: int | None


def load_inputs(args: argparse.Namespace, prog: str) -> Inputs | None:
    """None after printing why to stderr; the caller exits with 2."""
    s = Settings.from_env()
    if not args.events.is_file():
        print(f"{prog}: {args.events}: no such file", file=sys.stderr)
        return None
    try:
        rules = load_rules(args.rules or s.rules_path, args.allowlist or s.allowlist_path)
    except RulesError as exc:
        print(f"{prog}: invalid rules: {exc}", file=sys.stderr)
        return None
    now_ms = None
    if args.now:
        try:
            now_ms = parse_ts(int(args.now) if args.now.isdigit() else args.now, "--now")
        except BadField as bad:
            print(f"{prog}: {bad.message}", file=sys.stderr)
            return None
    return Inputs(rules, now_ms)
