"""Evaluation harness: scores a detector's decisions against the simulator's ground truth."""
