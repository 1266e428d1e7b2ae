"""The worker's Kafka transport: Faust's aiokafka transport with three changes (the classes are in
app/drivers/faust_compat.py, with every other use of Faust internals).

- **Fetch wait.** Faust (0.11-0.15) builds its consumer with `fetch_max_wait_ms=1500`: a fetch the broker
  holds waits up to 1.5 s for data on the partitions it names. aiokafka leaves out of the next fetch every
  partition whose earlier records have not been handed on yet, so a record the worker itself writes to
  such a partition (an observation bundle, a link bundle: the worker's internal topics) waits for the
  fetch in flight to come back, up to 1.5 s per hop. The transport takes the wait from
  `DG_FETCH_MAX_WAIT_MS` (docs/design.md, "Fetch wait", has the figures).
- **Record delivery.** The consumer hands each fetched record to Faust's delivery callback without four
  tasks around it when the callback does not have to wait (`started`).
- **Before Faust waits for acknowledgements** (on a rebalance and on stop) the consumer awaits the
  transport's `before_wait_empty` hook, when set: the worker writes the state it holds then, and
  acknowledges the inputs behind it, which Faust would otherwise wait for forever.

Installed through the app's public `transport` setter."""

from __future__ import annotations

from typing import Any

from app.drivers.faust_compat import Transport, started

__all__ = ["Transport", "install", "started"]


def install(app: Any, fetch_max_wait_ms: int) -> None:
    """Make `app` consume through this transport (call before anything asks for `app.transport`)."""
    app.transport = Transport(app.conf.broker_consumer, app, fetch_max_wait_ms=fetch_max_wait_ms)
