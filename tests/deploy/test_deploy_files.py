"""Checks of the deploy files: Compose, Prometheus config and alert rules, Kubernetes manifests.

Each file goes through the real tool that consumes it (`docker compose config`, `promtool`, kustomize and
the Kubernetes OpenAPI schemas) and then through the cross-file facts no single tool sees: the same port,
state path, user id and environment variable names everywhere.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    DEPLOY,
    DOCKERFILE,
    DOCKERIGNORE,
    DOCUMENTED_ENV,
    K8S,
    REPO,
    load_yaml,
    load_yaml_all,
    run,
    settings_env_names,
)

METRICS_PORT = 9108
ENFORCER_PORT = 8181  # app/enforce/service.py's DEFAULT_LISTEN port (test_grafana.py checks the two agree)
STATE_DIR = "/var/lib/distill-guard"
APP_UID = 10001
PROMETHEUS_FILE = DEPLOY / "prometheus.yml"
RULES_FILE = DEPLOY / "alerts.rules.yml"
RULE_TESTS = Path(__file__).parent / "promtool" / "alerts_test.yml"

# The worker's metrics the alert rules are written against (app/metrics.py).
WORKER_METRICS = frozenset({
    "distill_guard_processing_lag_seconds", "distill_guard_events_dead_lettered_total",
    "distill_guard_events_consumed_total", "distill_guard_decisions_total", "distill_guard_alerts_total",
    "distill_guard_state_keys", "distill_guard_rules_reloads_total", "distill_guard_input_repairs_total",
    "distill_guard_decision_latency_seconds", "distill_guard_rules_reload_failing",
})

ALL_YAML = sorted([*DEPLOY.glob("*.yml"), *K8S.glob("*.yaml"), RULE_TESTS])


# ---------------------------------------------------------------- every file


@pytest.mark.parametrize("path", ALL_YAML, ids=lambda p: str(p.relative_to(REPO)))
def test_yaml_parses_without_duplicate_keys(path: Path) -> None:
    assert load_yaml_all(path), f"{path} is empty"


def test_documented_env_is_what_settings_reads() -> None:
    missing = DOCUMENTED_ENV - settings_env_names()
    assert not missing, f"documented but not read by app/settings.py: {sorted(missing)}"


# ---------------------------------------------------------------- docker compose


def _app_services(model: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services running the distill-guard image (built from deploy/Dockerfile)."""
    return {name: svc for name, svc in model["services"].items()
            if svc.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    out = {}
    for item in value.split(","):
        name, _, addr = item.strip().partition("://")
        host, _, port = addr.rpartition(":")
        out[name] = (host, int(port))
    return out


def _dockerfile_instruction(name: str) -> list[str]:
    lines = [ln.strip() for ln in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    return [ln.split(None, 1)[1] for ln in lines if ln.upper().startswith(name + " ")]


def test_compose_services(compose_model: dict[str, Any]) -> None:
    assert set(compose_model["services"]) == {"kafka", "worker", "enforcer", "prometheus", "grafana", "demo-feed"}
    assert set(_app_services(compose_model)) == {"worker", "enforcer", "demo-feed"}
    demo = compose_model["services"]["demo-feed"]
    assert demo["profiles"] == ["demo"], "the feed is opt-in: `up` alone must not produce traffic"
    assert demo["command"][:1] == ["simulate"] and "--kafka" in demo["command"]
    assert compose_model["services"]["worker"]["command"] == ["worker"]
    assert compose_model["services"]["enforcer"]["command"] == ["enforcer", "--listen", f"0.0.0.0:{ENFORCER_PORT}"]


def test_compose_app_services_build_one_image_from_repo_root(compose_model: dict[str, Any]) -> None:
    apps = _app_services(compose_model)
    for name, svc in apps.items():
        assert Path(svc["build"]["context"]) == REPO, f"{name}: build context must be the repository root"
    assert len({svc["image"] for svc in apps.values()}) == 1, "worker and demo-feed must share one image"
    assert DOCKERIGNORE.name == DOCKERFILE.name + ".dockerignore" and DOCKERIGNORE.parent == DOCKERFILE.parent


def test_compose_app_services_use_only_documented_env(compose_model: dict[str, Any]) -> None:
    for name, svc in _app_services(compose_model).items():
        unknown = set(svc.get("environment", {})) - DOCUMENTED_ENV
        assert not unknown, f"{name} sets variables the app does not read: {sorted(unknown)}"
        # an empty DG_RULES would make the worker load Path("") instead of its packaged rules
        for key in ("DG_RULES", "DG_ALLOWLIST"):
            assert svc.get("environment", {}).get(key, "unset") != "", f"{name}: {key} set but empty"


def test_compose_worker_uses_kafka_internal_listener(compose_model: dict[str, Any]) -> None:
    kafka_env = compose_model["services"]["kafka"]["environment"]
    advertised = _listeners(kafka_env["KAFKA_ADVERTISED_LISTENERS"])
    bound = _listeners(kafka_env["KAFKA_LISTENERS"])
    internal = {addr: name for name, addr in advertised.items() if addr[0] == "kafka"}
    for svc_name, svc in _app_services(compose_model).items():
        host, _, port = svc["environment"]["KAFKA_BOOTSTRAP_SERVERS"].rpartition(":")
        assert (host, int(port)) in internal, (
            f"{svc_name}: bootstrap {host}:{port} is not an advertised in-network listener {advertised}")
        assert bound[internal[(host, int(port))]][1] == int(port)
    assert set(advertised) <= set(bound)
    assert kafka_env["KAFKA_CONTROLLER_LISTENER_NAMES"] in bound
    assert kafka_env["KAFKA_INTER_BROKER_LISTENER_NAME"] in advertised
    protocol_map = dict(p.split(":") for p in kafka_env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(protocol_map) == set(bound)


def test_compose_kafka_host_listener_published_on_loopback(compose_model: dict[str, Any]) -> None:
    kafka = compose_model["services"]["kafka"]
    advertised = _listeners(kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    host_listeners = [name for name, (host, _) in advertised.items() if host == "localhost"]
    assert len(host_listeners) == 1, advertised
    port = advertised[host_listeners[0]][1]
    assert port == 9092
    ports = {(p["target"], int(p["published"]), p.get("host_ip")) for p in kafka["ports"]}
    assert ports == {(9092, 9092, "127.0.0.1")}, "only the host listener, only on loopback"


def test_compose_kafka_is_the_tested_release(compose_model: dict[str, Any]) -> None:
    pom = ET.parse(DEPLOY / "kafka" / "pom.xml").getroot()
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.find("m:properties/m:kafka.version", ns)
    assert version is not None and version.text
    image = compose_model["services"]["kafka"]["image"]
    assert image == f"apache/kafka:{version.text}", "compose should run the broker the tests run against"


def test_compose_kafka_healthcheck_gates_dependents(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    check = services["kafka"]["healthcheck"]["test"]
    assert check[0] in ("CMD", "CMD-SHELL") and "kafka-broker-api-versions.sh" in " ".join(check)
    for name in _app_services(compose_model):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy", name
    assert "worker" in services["prometheus"]["depends_on"]


def test_compose_metrics_port_is_the_same_everywhere(compose_model: dict[str, Any]) -> None:
    worker = compose_model["services"]["worker"]
    assert int(worker["environment"]["DG_METRICS_PORT"]) == METRICS_PORT
    assert [(p["target"], int(p["published"]), p["host_ip"]) for p in worker["ports"]] == [
        (METRICS_PORT, METRICS_PORT, "127.0.0.1")]
    assert _dockerfile_instruction("EXPOSE") == [str(METRICS_PORT)]
    scrape = load_yaml(PROMETHEUS_FILE)["scrape_configs"]
    targets = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]] for job in scrape}
    assert targets == {"distill-guard": [f"worker:{METRICS_PORT}"],
                       "distill-guard-enforcer": [f"enforcer:{ENFORCER_PORT}"]}


def test_compose_enforcer_serves_where_it_is_scraped_and_checked(compose_model: dict[str, Any]) -> None:
    """The enforcer's checks, /healthz and /metrics share its --listen port: published on loopback, scraped
    by Prometheus, probed by its healthcheck (the image's own HEALTHCHECK probes the worker's port)."""
    enforcer = compose_model["services"]["enforcer"]
    assert [(p["target"], int(p["published"]), p["host_ip"]) for p in enforcer["ports"]] == [
        (ENFORCER_PORT, ENFORCER_PORT, "127.0.0.1")]
    probe = " ".join(enforcer["healthcheck"]["test"])
    assert f"127.0.0.1:{ENFORCER_PORT}/healthz" in probe
    assert enforcer["environment"]["DG_DECISIONS_TOPIC"] == compose_model["services"]["worker"]["environment"][
        "DG_DECISIONS_TOPIC"], "the enforcer follows the topic the worker publishes decisions to"
    assert enforcer["read_only"] is True and "/tmp" in enforcer["tmpfs"]
    assert "enforcer" in compose_model["services"]["prometheus"]["depends_on"]


def test_compose_state_volumes(compose_model: dict[str, Any]) -> None:
    services = compose_model["services"]
    declared = set(compose_model.get("volumes", {}))
    worker = services["worker"]
    state = [v for v in worker["volumes"] if v["target"] == worker["environment"]["DG_DATA_DIR"]]
    assert len(state) == 1 and state[0]["type"] == "volume" and state[0]["source"] in declared
    assert worker["environment"]["DG_DATA_DIR"] == STATE_DIR
    assert _dockerfile_instruction("VOLUME") == [f'["{STATE_DIR}"]']
    # read-only root: the state volume and a tmpfs are all the worker may write to
    assert worker["read_only"] is True and "/tmp" in worker["tmpfs"]
    kafka = services["kafka"]
    kafka_vols = {v["target"]: v for v in kafka["volumes"]}
    log_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert log_dir in kafka_vols and kafka_vols[log_dir]["source"] in declared
    used = {v["source"] for s in services.values() for v in s.get("volumes", []) if v["type"] == "volume"}
    assert used == declared, "every named volume declared is used and vice versa"


def test_compose_prometheus_loads_our_config_and_rules(compose_model: dict[str, Any]) -> None:
    prom = compose_model["services"]["prometheus"]
    binds = {Path(v["source"]): v["target"] for v in prom["volumes"] if v["type"] == "bind"}
    assert binds == {PROMETHEUS_FILE: "/etc/prometheus/prometheus.yml",
                     RULES_FILE: "/etc/prometheus/alerts.rules.yml"}
    assert all(v.get("read_only") for v in prom["volumes"] if v["type"] == "bind")
    assert f"--config.file={binds[PROMETHEUS_FILE]}" in prom["command"]
    # rule_files resolve against the config file's directory, inside the container as here
    config_dir = Path(binds[PROMETHEUS_FILE]).parent
    for rule_file in load_yaml(PROMETHEUS_FILE)["rule_files"]:
        assert str(config_dir / rule_file) in binds.values()
        assert (PROMETHEUS_FILE.parent / rule_file).exists()


# ---------------------------------------------------------------- prometheus


def test_promtool_check_config(promtool: str) -> None:
    proc = run([promtool, "check", "config", str(PROMETHEUS_FILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_check_rules(promtool: str) -> None:
    proc = run([promtool, "check", "rules", str(RULES_FILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_promtool_rule_unit_tests(promtool: str) -> None:
    proc = run([promtool, "test", "rules", str(RULE_TESTS)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_prometheus_scrapes_the_worker_every_15s() -> None:
    config = load_yaml(PROMETHEUS_FILE)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["distill-guard"]
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert job.get("metrics_path", "/metrics") == "/metrics"


def _rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(RULES_FILE)["groups"] for rule in group["rules"]]


def test_alert_rules_are_complete_and_labelled() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    for r in rules:
        assert r["labels"]["severity"] in {"warning", "critical"}, r["alert"]
        assert r["labels"]["team"] in {"platform", "trust"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
        assert re.fullmatch(r"DistillGuard[A-Za-z]+", r["alert"]), r["alert"]


def test_alert_rules_use_the_workers_metric_names() -> None:
    """promtool cannot know metric names: a typo here would give a rule that silently never fires."""
    exprs = "\n".join(r["expr"] for r in _rules())
    used = {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\bdistill_guard_\w+", exprs)}
    assert used == WORKER_METRICS
    jobs = set(re.findall(r'job="([^"]+)"', exprs))
    assert jobs == {"distill-guard"}, "the rules select the scrape job defined in deploy/prometheus.yml"
    assert {r["alert"] for r in _rules()} >= {
        "DistillGuardWorkerDown", "DistillGuardProcessingLagHigh", "DistillGuardDeadLetterRateHigh",
        "DistillGuardNoEventsConsumed", "DistillGuardDecisionSpike", "DistillGuardAlertSpike",
        "DistillGuardStateGrowing",
    }


def test_alert_rules_match_app_metrics() -> None:
    """The names and label names the rules select on exist in app/metrics.py's registry."""
    from prometheus_client import CollectorRegistry

    from app.metrics import Metrics

    metrics = Metrics(CollectorRegistry())
    labels = {}
    for family in metrics.registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels[name] = set()
    for attr in vars(metrics).values():
        name = getattr(attr, "_name", None)
        if name is not None:
            suffix = "_total" if getattr(attr, "_type", "") == "counter" else ""
            labels[name + suffix] = set(attr._labelnames)
    assert set(labels) >= WORKER_METRICS, sorted(WORKER_METRICS - set(labels))
    exprs = "\n".join(r["expr"] for r in _rules())
    for metric, suffix, matchers in re.findall(r"\b(distill_guard_\w+?)(_bucket)?\{([^}]*)\}", exprs):
        used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers))
        allowed = labels[metric] | {"job", "instance"} | ({"le"} if suffix else set())
        assert used <= allowed, f"{metric}: labels {sorted(used - allowed)} do not exist"


def test_rule_unit_tests_cover_every_alert() -> None:
    tested = {case["alertname"] for t in load_yaml(RULE_TESTS)["tests"] for case in t["alert_rule_test"]
              if case.get("exp_alerts")}
    untested = {r["alert"] for r in _rules()} - tested
    assert not untested, f"alerts no promtool case sees firing: {sorted(untested)}"


# ---------------------------------------------------------------- kubernetes


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def _pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(docs, "StatefulSet")["spec"]["template"]["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_kustomization_lists_every_manifest() -> None:
    listed = set(load_yaml(K8S / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_k8s_renders_expected_resources(k8s_rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in k8s_rendered)
    assert kinds == sorted([
        ("Namespace", "distill-guard"), ("ConfigMap", "distill-guard-config"),
        ("ConfigMap", "distill-guard-rules"), ("Service", "distill-guard"),
        ("Service", "distill-guard-headless"), ("StatefulSet", "distill-guard"),
        ("PodDisruptionBudget", "distill-guard"),
    ])
    for d in k8s_rendered:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "distill-guard", d["metadata"]["name"]
    assert not _by_kind(k8s_rendered, "Secret"), "credentials never live in the repository"


# The oldest Kubernetes minor still in providers' extended support, and the newest the schemas know.
@pytest.mark.parametrize("version", ["1.30.0", "latest"])
def test_k8s_manifests_match_openapi_schema(k8s_rendered: list[dict[str, Any]], version: str) -> None:
    kubernetes_validate = _kubernetes_validate()
    if version == "latest":
        version = kubernetes_validate.latest_version()
    errors = []
    for doc in k8s_rendered:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} {path}: {exc.message}")
    assert not errors, "\n".join(errors)


def _kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        pytest.fail("kubernetes-validate is not installed; see tests/deploy/README.md", pytrace=False)
    return kubernetes_validate


def test_statefulset_shape(k8s_rendered: list[dict[str, Any]]) -> None:
    sts = _one(k8s_rendered, "StatefulSet", "distill-guard")["spec"]
    assert sts["replicas"] == 2
    labels = sts["template"]["metadata"]["labels"]
    assert sts["selector"]["matchLabels"].items() <= labels.items()
    headless = _one(k8s_rendered, "Service", sts["serviceName"])["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["selector"].items() <= labels.items()
    [claim] = sts["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    # the PVC-filling alert finds the claims by the name the StatefulSet controller gives them
    pvc = f"{claim['metadata']['name']}-{_one(k8s_rendered, 'StatefulSet')['metadata']['name']}-0"
    regex = re.search(r'persistentvolumeclaim=~"([^"]+)"', RULES_FILE.read_text(encoding="utf-8"))
    assert regex and re.fullmatch(regex.group(1), pvc), pvc


def test_every_container_has_resources_probes_and_runs_non_root(k8s_rendered: list[dict[str, Any]]) -> None:
    pod = _pod_spec(k8s_rendered)
    pod_sc = pod["securityContext"]
    assert pod_sc["runAsNonRoot"] is True and pod_sc["runAsUser"] == APP_UID
    assert pod_sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in _containers(pod):
        name = c["name"]
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"].get(section, {})), f"{name}: {section}"
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"]["drop"] == ["ALL"], name
        assert sc.get("runAsNonRoot", pod_sc["runAsNonRoot"]) is True, name
        assert sc.get("runAsUser", pod_sc["runAsUser"]) != 0, name
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe in ("livenessProbe", "readinessProbe"):
            get = c[probe]["httpGet"]
            assert get["path"] == "/metrics", f"{name}: {probe}"
            port = ports.get(get["port"], get["port"])
            assert port == METRICS_PORT, f"{name}: {probe} on {port}"


def test_only_state_and_tmp_are_writable(k8s_rendered: list[dict[str, Any]]) -> None:
    sts = _one(k8s_rendered, "StatefulSet")["spec"]
    pod = sts["template"]["spec"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    claims = {t["metadata"]["name"] for t in sts["volumeClaimTemplates"]}
    config = _one(k8s_rendered, "ConfigMap", "distill-guard-config")["data"]
    for c in _containers(pod):
        writable = {}
        for m in c["volumeMounts"]:
            assert m["name"] in volumes or m["name"] in claims, f"{m['name']} has no volume"
            if not m.get("readOnly"):
                writable[m["mountPath"]] = m["name"]
        assert set(writable) == {config["DG_DATA_DIR"], "/tmp"}, writable
        assert writable[config["DG_DATA_DIR"]] in claims, "state lives on the per-pod claim"
        assert "emptyDir" in volumes[writable["/tmp"]]
    assert config["DG_DATA_DIR"] == STATE_DIR


def test_pods_meet_restricted_pod_security(k8s_rendered: list[dict[str, Any]]) -> None:
    ns = _one(k8s_rendered, "Namespace")["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "restricted"
    pod = _pod_spec(k8s_rendered)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(key), key
    allowed = {"configMap", "emptyDir", "persistentVolumeClaim", "secret", "projected", "downwardAPI"}
    for v in pod.get("volumes", []):
        assert set(v) - {"name"} <= allowed, v
    for c in _containers(pod):
        assert not c["securityContext"].get("privileged"), c["name"]
        assert not c["securityContext"]["capabilities"].get("add"), c["name"]


def test_metrics_service_and_pdb_select_the_workers(k8s_rendered: list[dict[str, Any]]) -> None:
    labels = _one(k8s_rendered, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    svc = _one(k8s_rendered, "Service", "distill-guard")
    assert svc["spec"]["selector"].items() <= labels.items()
    notes = svc["metadata"]["annotations"]
    assert notes["prometheus.io/scrape"] == "true"
    assert notes["prometheus.io/path"] == "/metrics"
    assert int(notes["prometheus.io/port"]) == METRICS_PORT
    assert [p["port"] for p in svc["spec"]["ports"]] == [METRICS_PORT]
    pdb = _one(k8s_rendered, "PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["maxUnavailable"] == 1


def test_k8s_config_uses_documented_env(k8s_rendered: list[dict[str, Any]]) -> None:
    config = _one(k8s_rendered, "ConfigMap", "distill-guard-config")["data"]
    unknown = set(config) - DOCUMENTED_ENV
    assert not unknown, f"variables the app does not read: {sorted(unknown)}"
    assert int(config["DG_METRICS_PORT"]) == METRICS_PORT
    [worker] = _pod_spec(k8s_rendered)["containers"]
    sources = worker["envFrom"]
    assert {"configMapRef": {"name": "distill-guard-config"}} in sources
    secret_refs = [s["secretRef"] for s in sources if "secretRef" in s]
    assert all(ref.get("optional") is True for ref in secret_refs), "the SASL Secret is optional"
    for e in worker.get("env", []):
        assert e["name"] in DOCUMENTED_ENV, e["name"]


def test_rules_configmap_is_mounted_where_dg_rules_would_point(k8s_rendered: list[dict[str, Any]]) -> None:
    rules = _one(k8s_rendered, "ConfigMap", "distill-guard-rules")["data"]
    assert "rules.yaml" in rules
    pod = _pod_spec(k8s_rendered)
    volume = next(v["name"] for v in pod["volumes"]
                  if v.get("configMap", {}).get("name") == "distill-guard-rules")
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume]
    assert mount["mountPath"] == "/etc/distill-guard" and mount.get("readOnly") is True
    assert "subPath" not in mount, "a subPath mount never sees ConfigMap updates"
    config = _one(k8s_rendered, "ConfigMap", "distill-guard-config")["data"]
    if "DG_RULES" in config:  # once someone opts in, it must name the mounted, non-placeholder file
        assert config["DG_RULES"] == "/etc/distill-guard/rules.yaml"
        assert yaml.safe_load(rules["rules.yaml"]), "DG_RULES points at the empty placeholder"
