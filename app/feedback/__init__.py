"""Analyst verdicts on the wire: parsing and validating them (`wire.py`) and `distill-guard feedback` (`cli.py`).
What a verdict does is decided in `app.policy.feedback`."""
