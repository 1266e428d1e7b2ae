"""`distill-guard enforcer`: registers the subcommand."""

from __future__ import annotations

import argparse

from app.enforce.service import DEFAULT_LISTEN, DEFAULT_MAX_ENTRIES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "enforcer", help="the gateway's enforcement point: Envoy ext_authz checks against the live decisions",
        description="Follows the decisions topic (DG_DECISIONS_TOPIC on KAFKA_BOOTSTRAP_SERVERS) from its "
                    "earliest record into a TTL map by (scope, value) and answers Envoy ext_authz HTTP "
                    "checks on any path under /check: 200 allow, 429 throttle (with Retry-After), 403 "
                    "challenge or block (x-distill-guard-action). /healthz is 200 once the topic is read "
                    "to the end it had at start; /metrics serves Prometheus metrics. See docs/enforcer.md.")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to serve on (default {DEFAULT_LISTEN}; [::1]:PORT for IPv6, :PORT for all)")
    p.add_argument("--max-entries", type=int, default=DEFAULT_MAX_ENTRIES, metavar="N",
                   help="cap on decisions held; past it one expiring first is dropped (default "
                        f"{DEFAULT_MAX_ENTRIES:,}: about 0.4 GiB at the ~420 bytes each docs/enforcer.md "
                        "gives)")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def kafka_options(settings) -> dict:
    """aiokafka's security options from the settings (SASL over TLS when a username is set)."""
    if not settings.sasl_username:
        return {}
    from aiokafka.helpers import create_ssl_context

    return {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "ssl_context": create_ssl_context(),
            "sasl_plain_username": settings.sasl_username, "sasl_plain_password": settings.sasl_password}


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from app.enforce.service import EnforcerService, parse_listen
    from app.settings import Settings

    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        raise SystemExit(f"distill-guard enforcer: {exc}") from None
    if args.max_entries < 1:
        raise SystemExit("distill-guard enforcer: --max-entries must be >= 1")
    s = Settings.from_env()

    async def main() -> int:
        service = EnforcerService(s.bootstrap_servers, s.decisions_topic, args.max_entries,
                                  kafka_options=kafka_options(s))
        return await service.serve(host, port)

    return asyncio.run(main())
