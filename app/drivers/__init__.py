"""Drivers: thin shells that feed the core — JSONL replay and the Faust worker."""
