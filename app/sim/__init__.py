"""Traffic simulator: labelled synthetic gateway request events from scenario files (see `scenarios/`)."""
