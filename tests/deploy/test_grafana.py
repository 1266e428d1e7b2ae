"""deploy/grafana: the provisioning files, the dashboard JSON and its PromQL.

Grafana itself cannot run here; what can be checked without it: every expression parses (promtool, with
Grafana's interval variables replaced by a duration), every metric it names is exposed by the worker
(app/metrics.py's registry) or by a running enforcer (its /metrics), with the labels the query uses, the
panels issue 20 asks for exist, and the files point at each other and at the compose services.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import DEPLOY, load_yaml, run
from .test_deploy_files import ENFORCER_PORT

GRAFANA = DEPLOY / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "distill-guard.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "distill-guard.yml"
# what Grafana substitutes before a query reaches Prometheus
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "6h"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "histogram_quantile", "le", "without", "on", "ignoring",
                "max", "min", "avg", "count", "or", "and", "unless", "bool", "offset", "topk", "irate"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict) -> list[dict]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def _exprs(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expression) for every query."""
    return [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p["targets"]]


def _resolved(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"a dashboard variable promtool cannot resolve: {expr}"
    return expr


# ---------------------------------------------------------------- what the metrics are


def _worker_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, for the worker's registry (app/metrics.py)."""
    from prometheus_client import CollectorRegistry

    from app.metrics import Metrics

    out: dict[str, set[str]] = {}
    for attr in vars(Metrics(CollectorRegistry())).values():
        name, kind = getattr(attr, "_name", None), getattr(attr, "_type", None)
        if name is None:
            continue
        labels = set(attr._labelnames)
        if kind == "counter":
            out[name + "_total"] = labels
        elif kind == "histogram":
            out |= {name + "_bucket": labels | {"le"}, name + "_sum": labels, name + "_count": labels}
        else:
            out[name] = labels
    return out


def _enforcer_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, scraped from a running enforcer's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    from app.enforce.service import EnforcerService

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        async def start():
            service = EnforcerService("unused:9092", "unused")
            return service, (await service.start_server("127.0.0.1", 0))[1]

        service, port = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()

        async def stop():
            service.server.close()
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    out: dict[str, set[str]] = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out.setdefault(s.name, set()).update(s.labels)
        if fam.type == "counter":  # a counter with no sample yet still has its _total series
            out.setdefault(fam.name + "_total", set())
    return out


@pytest.fixture(scope="module")
def exposed() -> dict[str, set[str]]:
    metrics = _worker_metrics()
    enforcer = _enforcer_metrics()
    assert not set(metrics) & {n for n in enforcer if n.startswith("distill_guard_")}, "names must not clash"
    return metrics | enforcer | {"up": set()}


def test_enforcer_port_is_the_enforcers_default() -> None:
    from app.enforce.service import DEFAULT_LISTEN, parse_listen

    assert parse_listen(DEFAULT_LISTEN)[1] == ENFORCER_PORT


# ---------------------------------------------------------------- PromQL


def test_every_expression_parses(promtool: str, dashboard: dict, tmp_path: Path) -> None:
    rules = [{"record": f"dashboard:query_{i}", "expr": _resolved(expr)}
             for i, (_, expr) in enumerate(_exprs(dashboard))]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    proc = run([promtool, "check", "rules", str(path)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(rules)} rules found" in proc.stdout


def test_promtool_rejects_a_broken_expression(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (le (rate(distill_guard_alerts_total[1m]))"}]}]}), encoding="utf-8")
    assert run([promtool, "check", "rules", str(path)]).returncode != 0


def _names(expr: str) -> set[str]:
    no_strings = re.sub(r'"[^"]*"', '""', expr)
    no_ranges = re.sub(r"\[[^\]]*\]", "", no_strings)
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", no_ranges))
    in_by = set()
    for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", no_ranges):
        in_by |= {w.strip() for w in group.split(",")}
    inside_braces = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", no_ranges))
    return {w for w in words - PROMQL_WORDS - in_by - inside_braces if not re.fullmatch(r"\d+\w*", w)}


def test_every_metric_named_is_exposed(dashboard: dict, exposed: dict[str, set[str]]) -> None:
    used = set()
    for title, expr in _exprs(dashboard):
        names = _names(_resolved(expr))
        assert names, f"{title}: no metric in {expr}"
        missing = names - set(exposed)
        assert not missing, f"{title}: {sorted(missing)} exposed by neither the worker nor the enforcer"
        used |= names
    assert any(n.startswith("distill_guard_enforcer_") for n in used)
    assert any(n.startswith("distill_guard_") and "enforcer" not in n for n in used)


def test_every_label_used_exists(dashboard: dict, exposed: dict[str, set[str]]) -> None:
    for title, target in [(p["title"], t) for p in _panels(dashboard) for t in p["targets"]]:
        expr = _resolved(target["expr"])
        names = _names(expr)
        labels = set().union(*(exposed[n] for n in names)) | {"job", "instance"}
        for metric, matchers in re.findall(r"\b([a-zA-Z_:]\w*)\{([^}]*)\}", expr):
            used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
            assert used <= exposed[metric] | {"job", "instance"}, f"{title}: {metric} has no {used}"
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            used = {w.strip() for w in group.split(",")}
            assert used <= labels, f"{title}: grouped by {sorted(used - labels)}, which no metric has"
        for legend in re.findall(r"\{\{(\w+)\}\}", target["legendFormat"]):
            assert legend in labels, f"{title}: legend uses {legend}"


# ---------------------------------------------------------------- the dashboard


def test_the_panels_issue_20_asks_for(dashboard: dict) -> None:
    joined = "\n".join(expr for _, expr in _exprs(dashboard))
    wanted = {
        "events consumed /s": r"rate\(distill_guard_events_consumed_total",
        "decisions /s by action and scope": r"sum by \(action, scope\) \(rate\(distill_guard_decisions_total",
        "alerts by scope/severity": r"sum by \(scope, severity\) \(rate\(distill_guard_alerts_total",
        "DLQ by reason": r"sum by \(reason\) \(rate\(distill_guard_events_dead_lettered_total",
        "decision latency p50 by stage": r"histogram_quantile\(0\.5, sum by \(le, stage\) "
                                         r"\(rate\(distill_guard_decision_latency_seconds_bucket",
        "decision latency p99 by stage": r"histogram_quantile\(0\.99, sum by \(le, stage\) "
                                         r"\(rate\(distill_guard_decision_latency_seconds_bucket",
        "cluster count": r'distill_guard_state_keys\{table="clusters"\}',
        "state size": r"sum by \(table\) \(distill_guard_state_keys\)",
        "content-pool restarts": r"distill_guard_content_pool_restarts_total",
        "enforcer checks by answer": r"sum by \(answer\) \(rate\(distill_guard_enforcer_checks_total",
        "processing lag": r"distill_guard_processing_lag_seconds_bucket",
    }
    missing = [what for what, pattern in wanted.items() if not re.search(pattern, joined)]
    assert not missing, missing


def test_panels_are_well_formed(dashboard: dict) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
    for p in _panels(dashboard):
        assert p["description"].strip(), f"{p['title']}: say which question it answers"
        assert p["datasource"]["uid"] == _datasource()["uid"]
        refs = [t["refId"] for t in p["targets"]]
        assert refs and len(refs) == len(set(refs)), p["title"]
    assert dashboard["uid"] == "distill-guard" and dashboard["schemaVersion"] >= 36


# ---------------------------------------------------------------- provisioning and compose


def _datasource() -> dict:
    [ds] = load_yaml(DATASOURCES)["datasources"]
    return ds


def test_provisioning_points_at_prometheus_and_the_dashboard(compose_model: dict[str, Any]) -> None:
    ds = _datasource()
    assert ds["type"] == "prometheus" and ds["uid"] == "prometheus"
    prom = compose_model["services"]["prometheus"]
    prom_port = {p["target"] for p in prom["ports"]}
    assert ds["url"] in {f"http://prometheus:{port}" for port in prom_port}
    scrape = load_yaml(DEPLOY / "prometheus.yml")["global"]["scrape_interval"]
    assert ds["jsonData"]["timeInterval"] == scrape
    grafana = compose_model["services"]["grafana"]
    binds = {Path(v["source"]): v for v in grafana["volumes"] if v["type"] == "bind"}
    assert binds[GRAFANA / "provisioning"]["target"] == "/etc/grafana/provisioning"
    dashboards_dir = binds[GRAFANA / "dashboards"]["target"]
    assert all(v.get("read_only") for v in binds.values())
    [provider] = load_yaml(PROVIDERS)["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == dashboards_dir
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_dir}/{DASHBOARD.name}"
    assert "prometheus" in grafana["depends_on"]
    assert [(p["target"], p["host_ip"]) for p in grafana["ports"]] == [(3000, "127.0.0.1")]
    assert grafana["image"].startswith("grafana/grafana:") and ":latest" not in grafana["image"]
