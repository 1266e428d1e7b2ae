"""`distill-guard enforcer`: the reference enforcement point for the gateway.

A thin service beside the detector, sharing nothing with it but the wire contract: it follows the
`ratelimit.decisions` topic from its earliest retained record into an in-memory TTL map keyed by
(scope, value) (`table.py`), and answers Envoy ext_authz "HTTP service" checks from it (`http.py`). It
never imports the detection core (app/detect, app/stages, app/policy, app/ingest, ...): a test checks that.
"""
