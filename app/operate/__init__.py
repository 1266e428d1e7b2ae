"""Operator tools beside the detector: `stand-down` (lift a wave of live decisions at once)."""
