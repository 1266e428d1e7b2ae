"""`distill-guard demo`: worker + simulated traffic on the local broker, decisions shown live."""
