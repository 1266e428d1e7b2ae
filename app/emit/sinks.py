"""Where records go. The core returns records; drivers hand them to a sink: a list (tests), JSONL files
(replay) or Kafka topics (worker, in app/drivers/worker.py)."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Protocol

import orjson

from app.emit.records import Alert, DeadLetter, Decision


class Sink(Protocol):
    def alert(self, a: Alert) -> None: ...
    def decision(self, d: Decision) -> None: ...
    def dead_letter(self, r: DeadLetter) -> None: ...


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.decisions: list[Decision] = []
        self.dead_letters: list[DeadLetter] = []

    def alert(self, a: Alert) -> None:
        self.alerts.append(a)

    def decision(self, d: Decision) -> None:
        self.decisions.append(d)

    def dead_letter(self, r: DeadLetter) -> None:
        self.dead_letters.append(r)


class JsonlSink:
    """Writes alerts.jsonl, decisions.jsonl and dlq.jsonl into a directory (replay's output)."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[bytes]] = {
            name: (out_dir / f"{name}.jsonl").open("wb") for name in ("alerts", "decisions", "dlq")
        }
        self.counts = {"alerts": 0, "decisions": 0, "dlq": 0}

    def _write(self, name: str, obj: dict) -> None:
        self._files[name].write(orjson.dumps(obj) + b"\n")
        self.counts[name] += 1

    def alert(self, a: Alert) -> None:
        self._write("alerts", a.wire())

    def decision(self, d: Decision) -> None:
        self._write("decisions", d.wire())

    def dead_letter(self, r: DeadLetter) -> None:
        self._write("dlq", r.wire())

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
