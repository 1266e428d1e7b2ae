"""Emit: the records the core produces (alerts, decisions, dead letters) and the sinks they go to."""
