"""State: bounded keyed stores (a dict in replay, Faust tables in the worker) and event-time windows."""
