"""`distill-guard backtest`: the same events replayed under a base and a new rules file, through the same
core as `replay` (app.drivers.replay), and what changes: which accounts' outcomes move, with the signals
behind them under both, counts by action, by org and (with labels) by population and campaign, with
recall and benign FPR as `evaluate` defines them.

    run.py      the two replays (one after the other, or in two processes), with progress
    outcome.py  a replay's records -> each subject's outcome; the alerts behind them
    diff.py     two replays -> the backtest (changes, counts, orgs, labelled groups)
    table.py    the terminal view;  report.py  the HTML report;  cli.py  the command
"""
