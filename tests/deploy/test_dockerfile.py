"""Checks of deploy/Dockerfile and its build context, without a Docker engine.

hadolint lints it; BuildKit's own parser (the `dockerfile` package) reads it for the structural checks; the
build context is computed from deploy/Dockerfile.dockerignore with Docker's matching rules, and setuptools'
package discovery is run on it to show that `pip install .` in the image ships every module and data file.
The HEALTHCHECK command itself is run against a live metrics endpoint.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tomllib
from fnmatch import fnmatchcase
from pathlib import PurePosixPath
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .conftest import COMPOSE_FILE, DOCKERFILE, DOCKERIGNORE, K8S, REPO, load_yaml, load_yaml_all, run

STATE_DIR = "/var/lib/distill-guard"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _stages(commands: list[Any]) -> list[list[Any]]:
    """Instructions grouped by build stage (global ARGs before the first FROM are left out)."""
    stages: list[list[Any]] = []
    for c in commands:
        if c.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(c)
    return stages


def _final(commands: list[Any]) -> list[Any]:
    return _stages(commands)[-1]


def _only(stage: list[Any], cmd: str) -> Any:
    found = [c for c in stage if c.cmd == cmd]
    assert len(found) == 1, f"expected one {cmd} in the stage, found {len(found)}"
    return found[0]


def _env(stage: list[Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for c in stage:
        if c.cmd == "ENV":
            env.update(zip(c.value[::2], c.value[1::2], strict=True))
    return env


def _global_args(commands: list[Any]) -> dict[str, str]:
    args = {}
    for c in commands:
        if c.cmd == "FROM":
            break
        if c.cmd == "ARG":
            name, _, default = c.value[0].partition("=")
            args[name] = default
    return args


# ---------------------------------------------------------------- lint and parse


def test_hadolint_clean(hadolint: str) -> None:
    proc = run([hadolint, "--failure-threshold", "info", str(DOCKERFILE)])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_base_images_are_pinned_and_satisfy_requires_python(dockerfile_commands: list[Any]) -> None:
    args = _global_args(dockerfile_commands)
    stage_names = set()
    for c in dockerfile_commands:
        if c.cmd != "FROM":
            continue
        image = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], c.value[0])
        if len(c.value) == 3:
            stage_names.add(c.value[2])
        if image in stage_names:
            continue
        name, _, tag = image.partition("@")[0].partition(":")
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag), f"{image}: pin a full version"
        assert name == "python", image
        py = Version(re.match(r"\d+\.\d+\.\d+", tag).group(0))
        assert py in SpecifierSet(PYPROJECT["project"]["requires-python"]), image
        assert py.release[:2] == (3, 11), "python:3.11-slim is the supported runtime"
        assert "slim" in tag, image


def test_final_stage_runs_as_the_non_root_user_kubernetes_expects(dockerfile_commands: list[Any]) -> None:
    user = _only(_final(dockerfile_commands), "USER").value[0]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric, so runAsNonRoot can verify it"
    assert gid.isdigit() and int(gid) != 0
    pod = next(d for d in load_yaml_all(K8S / "statefulset.yaml") if d["kind"] == "StatefulSet")
    security = pod["spec"]["template"]["spec"]["securityContext"]
    ids = (security["runAsUser"], security["runAsGroup"], security["fsGroup"])
    assert ids == (int(uid), int(gid), int(gid))
    # the state directory is created for that user before the volume is declared
    run_lines = " ".join(c.value[0] for c in _final(dockerfile_commands) if c.cmd == "RUN")
    assert f"--uid {uid}" in run_lines and f"-o distill -g distill -m 0750 {STATE_DIR}" in run_lines


def test_entrypoint_is_the_console_script(dockerfile_commands: list[Any]) -> None:
    final = _final(dockerfile_commands)
    entry, cmd = _only(final, "ENTRYPOINT"), _only(final, "CMD")
    assert entry.json and cmd.json, "exec form, so signals reach the worker rather than a shell"
    assert list(entry.value) == ["distill-guard"]
    assert "distill-guard" in PYPROJECT["project"]["scripts"]
    assert list(cmd.value) == ["worker"]


def test_state_volume_and_env(dockerfile_commands: list[Any]) -> None:
    final = _final(dockerfile_commands)
    env = _env(final)
    assert list(_only(final, "VOLUME").value) == [STATE_DIR]
    assert env["DG_DATA_DIR"] == STATE_DIR
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "the root filesystem is read-only in Kubernetes"
    assert env["PATH"].startswith("/opt/venv/bin:")
    copies = [c for c in final if c.cmd == "COPY"]
    assert [(c.flags, c.value) for c in copies] == [(("--from=build",), ("/opt/venv", "/opt/venv"))], (
        "the runtime stage takes only the virtualenv: no sources, no build tools")


def test_expose_matches_metrics_port_everywhere(dockerfile_commands: list[Any]) -> None:
    final = _final(dockerfile_commands)
    [port] = _only(final, "EXPOSE").value
    assert _env(final)["DG_METRICS_PORT"] == port == "9108"
    worker = load_yaml(COMPOSE_FILE)["services"]["worker"]
    assert worker["environment"]["DG_METRICS_PORT"] == port
    assert worker["ports"] == [f"127.0.0.1:{port}:{port}"]
    sts = next(d for d in load_yaml_all(K8S / "statefulset.yaml") if d["kind"] == "StatefulSet")
    [container] = sts["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in container["ports"]] == [int(port)]


# ---------------------------------------------------------------- healthcheck


def _healthcheck(commands: list[Any]) -> Any:
    return _only(_final(commands), "HEALTHCHECK")


def test_healthcheck_is_declared(dockerfile_commands: list[Any]) -> None:
    check = _healthcheck(dockerfile_commands)
    flags = dict(f.lstrip("-").split("=", 1) for f in check.flags)
    assert {"interval", "timeout", "start-period", "retries"} <= set(flags)
    assert check.json and check.value[0] == "CMD"
    assert "/metrics" in " ".join(check.value) and "DG_METRICS_PORT" in " ".join(check.value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_healthcheck(commands: list[Any], port: int) -> subprocess.CompletedProcess[str]:
    argv = list(_healthcheck(commands).value[1:])
    assert argv[0] == "python"
    argv[0] = sys.executable
    env = {**os.environ, "DG_METRICS_PORT": str(port)}
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=20, check=False)


def test_healthcheck_command_passes_when_metrics_answer(dockerfile_commands: list[Any]) -> None:
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    registry = CollectorRegistry()
    Counter("distill_guard_events_consumed_total", "probe", registry=registry).inc()
    port = _free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        proc = _run_healthcheck(dockerfile_commands, port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert proc.returncode == 0, proc.stderr


def test_healthcheck_command_fails_when_nothing_listens(dockerfile_commands: list[Any]) -> None:
    proc = _run_healthcheck(dockerfile_commands, _free_port())
    assert proc.returncode != 0


# ---------------------------------------------------------------- build context


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """deploy/Dockerfile.dockerignore as (is_exception, regex), with Docker's (moby/patternmatcher) rules:
    paths are relative to the context root, `*` and `?` stop at `/`, `**` spans directories, the last
    matching pattern wins, and a pattern matching a directory applies to everything below it."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip())).lstrip("/")
        regex = ""
        i = 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i:end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        patterns.append((exception, re.compile(f"^{regex}$")))
    return patterns


def _in_context(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    excluded = False
    for exception, regex in patterns:
        if any(regex.match(p) for p in prefixes):
            excluded = not exception
    return not excluded


def _context_files() -> list[str]:
    """Files a clean checkout would send as the build context: git's tracked files (what CI clones;
    work in progress that is not yet added stays out of it) that the dockerignore lets through."""
    proc = run(["git", "ls-files", "--cached", "-z"])
    assert proc.returncode == 0, proc.stderr
    patterns = _ignore_patterns()
    tracked = [p for p in proc.stdout.split("\0") if p]
    files = {p for p in tracked if (REPO / p).is_file() and not (REPO / p).is_symlink() and _in_context(p, patterns)}
    # a tracked link to a directory (app/schemas -> ../schemas) reaches the builder as a link; it resolves
    # there, and `pip install .` copies what it points to, when the target's files are in the context too
    for link in tracked:
        if (REPO / link).is_symlink() and (REPO / link).is_dir() and _in_context(link, patterns):
            target = PurePosixPath(os.path.normpath(PurePosixPath(link).parent / os.readlink(REPO / link)))
            files |= {str(PurePosixPath(link) / PurePosixPath(f).relative_to(target))
                      for f in list(files) if PurePosixPath(f).is_relative_to(target)}
    return sorted(files)


@pytest.mark.parametrize(("path", "included"), [
    ("pyproject.toml", True),
    ("README.md", True),
    ("app/__init__.py", True),
    ("app/rules/default.yaml", True),
    ("app/__pycache__/cli.cpython-311.pyc", False),
    (".venv/bin/python", False),
    (".git/HEAD", False),
    (".data/worker/v1/tables/x.db", False),
    ("deploy/kafka/.cache/libs/kafka_2.13-4.4.0.jar", False),
    ("deploy/Dockerfile", False),
    ("tests/deploy/test_dockerfile.py", False),
    ("out/alerts.jsonl", False),
    ("events.jsonl", False),
])
def test_dockerignore_keeps_only_what_the_build_needs(path: str, included: bool) -> None:
    assert _in_context(path, _ignore_patterns()) is included


def test_every_copy_source_is_in_the_context(dockerfile_commands: list[Any]) -> None:
    files = _context_files()
    for c in dockerfile_commands:
        if c.cmd not in ("COPY", "ADD") or any(f.startswith("--from") for f in c.flags):
            continue
        for src in c.value[:-1]:
            src = src.rstrip("/")
            assert any(f == src or f.startswith(src + "/") or fnmatchcase(f, src) for f in files), (
                f"line {c.start_line}: {src} is not in the build context")


def test_pyproject_readme_is_in_the_context() -> None:
    assert PYPROJECT["project"]["readme"] in _context_files()


def test_dependency_layer_installs_pyprojects_dependencies(dockerfile_commands: list[Any]) -> None:
    """The RUN that pre-installs dependencies derives them from pyproject.toml; run its snippet here."""
    [step] = [c for c in dockerfile_commands if c.cmd == "RUN" and "tomllib" in c.value[0]]
    argv = shlex.split(step.value[0])
    code = argv[argv.index("-c") + 1]
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=20, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:-1] == PYPROJECT["project"]["dependencies"]


def _shipped(files: list[str]) -> tuple[set[str], set[str]]:
    """(packages, files) that `pip install .` puts into the image, by setuptools' own package discovery
    run on the build context with pyproject.toml's [tool.setuptools] settings."""
    from setuptools import find_namespace_packages, find_packages

    tool = PYPROJECT["tool"]["setuptools"]
    find = tool["packages"]["find"]
    # in pyproject.toml, packages.find looks for namespace packages too unless `namespaces = false`
    finder = find_namespace_packages if find.get("namespaces", True) else find_packages
    context_dirs = {str(PurePosixPath(f).parent) for f in files}
    # the finder walks the disk; keep what it finds only where the directory is in the context
    packages = {p for p in finder(where=str(REPO), include=find.get("include", ["*"]),
                                  exclude=find.get("exclude", ()))
                if p.replace(".", "/") in context_dirs}
    data_globs = tool.get("package-data", {})
    shipped = set()
    for f in files:
        path = PurePosixPath(f)
        package = ".".join(path.parent.parts)
        if package not in packages:
            continue
        globs = [*data_globs.get("*", []), *data_globs.get(package, [])]
        if path.suffix == ".py" or any(fnmatchcase(path.name, g) for g in globs):
            shipped.add(f)
    return packages, shipped


def test_image_ships_every_module_and_data_file() -> None:
    files = [f for f in _context_files() if f.startswith("app/")]
    packages, shipped = _shipped(files)
    assert "app" in packages
    left_out = sorted(set(files) - shipped)
    assert not left_out, (
        "in the build context but not installed by `pip install .` (a data file pyproject's package-data "
        f"does not match, or a package the find settings leave out): {left_out}")


def test_resources_the_code_loads_are_packaged() -> None:
    """Every package named in an importlib.resources.files(...) call exists in the installed tree."""
    files = [f for f in _context_files() if f.startswith("app/")]
    packages, _ = _shipped(files)
    wanted = set()
    for f in files:
        if f.endswith(".py"):
            source = (REPO / f).read_text(encoding="utf-8")
            wanted |= set(re.findall(r"""resources\.files\(\s*["']([\w.]+)["']""", source))
    missing = sorted(wanted - packages)
    assert not missing, f"loaded with importlib.resources but not shipped in the image: {missing}"
