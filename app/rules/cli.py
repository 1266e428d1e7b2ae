"""`distill-guard check-rules [FILE]`: validate a rules file (and allowlist) without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-rules", help="validate a rules file and an optional allowlist")
    p.add_argument("rules", nargs="?", type=Path, help="rules file (default: $DG_RULES or the packaged one)")
    p.add_argument("--allowlist", type=Path)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import RulesError
    from app.rules.load import load_rules
    from app.settings import Settings

    s = Settings.from_env()
    path = args.rules or s.rules_path
    try:
        r = load_rules(path, args.allowlist or s.allowlist_path)
    except RulesError as exc:
        print(f"invalid: {exc}", file=sys.stderr)
        return 1
    enabled = sum(1 for x in r.signals.values() if x.enabled)
    shadow = sum(1 for x in r.signals.values() if x.enabled and x.shadow)
    print(f"ok: {path}: mode={r.mode}, {enabled} signals ({shadow} shadow), "
          f"{len(r.policy.actions)} action steps, {len(r.allowlist)} allowlist entries")
    return 0
