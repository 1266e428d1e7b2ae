"""Ingest: raw gateway records (bytes) to validated `Event`s, or to a `Rejection` with a reason code."""
