"""Detect: per-account behaviour and content, per-fingerprint infrastructure, per-cluster coordination."""
