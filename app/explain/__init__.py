"""`distill-guard explain ACCOUNT`: what the detector saw of one account and why it acted (or did not),
from one replay of a file through the unmodified core."""
