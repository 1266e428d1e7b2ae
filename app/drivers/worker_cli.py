"""`distill-guard worker`: the Faust worker (settings from the environment, see README)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("worker", help="run the streaming detector (Faust worker on Kafka)")
    p.add_argument("--loglevel", default="warn", choices=["crit", "error", "warn", "info", "debug"])
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.errors import RulesError
    from app.rules.load import load_rules
    from app.settings import Settings

    s = Settings.from_env()
    try:
        rules = load_rules(s.rules_path, s.allowlist_path)
    except RulesError as exc:
        print(f"distill-guard worker: invalid rules: {exc}", file=sys.stderr)
        return 2
    from app.drivers.content_pool import resolve_jobs

    try:
        resolve_jobs(s.content_jobs)
    except ValueError as exc:
        print(f"distill-guard worker: DG_CONTENT_JOBS: {exc}", file=sys.stderr)
        return 2
    from app.settings import compression_type

    try:
        compression_type(s.compression)
    except ValueError as exc:
        print(f"distill-guard worker: DG_COMPRESSION: {exc}", file=sys.stderr)
        return 2
    from app.drivers.worker import Worker, start_warm_up

    warm = start_warm_up()  # in a thread, while the topics are checked and the worker joins its group
    from app.topics import ensure_topics

    try:
        ensure_topics(s)
    except Exception as exc:  # the broker is down or refuses: say so plainly instead of a traceback
        print(f"distill-guard worker: cannot reach Kafka at {s.bootstrap_servers}: {exc}", file=sys.stderr)
        return 1
    s.data_dir.mkdir(parents=True, exist_ok=True)

    w = Worker(s, rules, warm=warm)
    import gc

    from app.drivers.replay import GC_THRESHOLD

    # the worker holds hundreds of thousands of long-lived state objects in its caches: with the default
    # thresholds the cyclic collector walks them over and over (the same setting replay uses)
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        _quiet_worker_class()(w.app, loglevel=args.loglevel).execute_from_commandline()
    finally:
        w.close()
    return 0


def _quiet_worker_class() -> type:
    import faust

    class QuietWorker(faust.Worker):
        """faust.Worker without the start-up progress spinner: at log levels of WARN and above Faust sets
        the root logger to DEBUG for the spinner's handler, so every library's `log.debug` call (aiokafka
        logs one per record sent, changelog writes included) builds a LogRecord (~5 % of the worker's CPU
        in py-spy), and the records of sent messages carry their values to that handler."""

        def on_setup_root_logger(self, logger: Any, level: int) -> None:
            self.spinner = None
            super().on_setup_root_logger(logger, level)

    return QuietWorker
