"""Rewrite the golden expectations of tests/golden/<case>/ from the current engine.

    .venv/bin/python tests/golden/regen.py            # every case
    .venv/bin/python tests/golden/regen.py card_ring  # some cases

Only for intentional behaviour changes: the rewritten files are the new truth, so read `git diff
tests/golden` record by record and say in the commit why each change is right. `run_case` is also what
tests/golden/test_golden.py runs, so the files and the test can never disagree on how a case is replayed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOW_MS = 1_769_990_400_000  # 2026-02-02T00:00:00Z: the pipeline clock for plausibility checks
FILES = ("expected_alerts.jsonl", "expected_decisions.jsonl", "expected_dlq_codes.txt")


def cases() -> list[Path]:
    return sorted(p for p in HERE.iterdir() if (p / "events.jsonl").is_file())


def run_case(case: Path) -> tuple[list[dict], list[dict], list[str]]:
    """Replay a case: alerts and decisions in wire form sorted by id, and `<line> <code>` per dead letter."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from app.drivers.replay import replay
    from app.emit.sinks import ListSink
    from app.rules.load import load_rules

    rules_path = case / "rules.yaml"
    rules = load_rules(rules_path if rules_path.is_file() else ROOT / "app" / "rules" / "default.yaml")
    sink = ListSink()
    replay(case / "events.jsonl", rules, sink, now_ms=NOW_MS)
    alerts = sorted((a.wire() for a in sink.alerts), key=lambda r: r["alert_id"])
    decisions = sorted((d.wire() for d in sink.decisions), key=lambda r: r["decision_id"])
    dlq = [f"{r.source['line']} {r.code}" for r in sink.dead_letters]
    return alerts, decisions, dlq


def render(records: list[dict]) -> str:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in records)


def write(case: Path) -> None:
    alerts, decisions, dlq = run_case(case)
    (case / FILES[0]).write_text(render(alerts), encoding="utf-8")
    (case / FILES[1]).write_text(render(decisions), encoding="utf-8")
    (case / FILES[2]).write_text("".join(line + "\n" for line in dlq), encoding="utf-8")
    print(f"{case.name}: {len(alerts)} alerts, {len(decisions)} decisions, {len(dlq)} dead letters")


def main(argv: list[str]) -> int:
    chosen = cases() if not argv else [HERE / name for name in argv]
    missing = [c.name for c in chosen if not (c / "events.jsonl").is_file()]
    if missing:
        print(f"no such case: {', '.join(missing)}", file=sys.stderr)
        return 2
    for case in chosen:
        write(case)
    print("review every change with `git diff tests/golden` before committing", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
