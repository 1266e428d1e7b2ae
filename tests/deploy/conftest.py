"""Shared fixtures of the deploy tests: repository paths, parsed deploy files and the external validators.

A validator that is missing fails the test that needs it (never skips): `make test` installs every one of
them first (`make tools`), and a silent skip would let a broken manifest through. Where each comes from is
in tests/deploy/README.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"
# where `make tools` installs the Go-built validators; looked up before PATH, so the pinned versions win
TOOLS_BIN = REPO / ".tools" / "bin"

# The settings the worker reads from its environment, as documented for operators. The tests also check
# that app/settings.py really reads each of them.
def _readme_settings() -> frozenset[str]:
    """The variables README.md's settings table documents (first column of its rows)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return frozenset(names)


DOCUMENTED_ENV = _readme_settings()


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys, which PyYAML (and Kubernetes) silently collapse."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)  # resolve `<<:` merges first; a merged key may be overridden legitimately
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.load_all(f, Loader=_StrictLoader) if doc is not None]


def load_yaml(path: Path) -> Any:
    docs = load_yaml_all(path)
    assert len(docs) == 1, f"{path}: expected one YAML document, found {len(docs)}"
    return docs[0]


def settings_env_names() -> set[str]:
    """Environment variable names app/settings.py reads (`e.get("NAME", ...)`)."""
    source = (REPO / "app" / "settings.py").read_text(encoding="utf-8")
    return set(re.findall(r"""\be\.get\(\s*["']([A-Z0-9_]+)["']""", source))


def run(cmd: list[str], *, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _which(name: str, *dirs: Path) -> str | None:
    """`name` in the first of `dirs` that has it as an executable, else on PATH."""
    for d in dirs:
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require_tool(name: str, *dirs: Path) -> str:
    path = _which(name, *dirs)
    if path is None:
        pytest.fail(f"`{name}` is not installed: `make tools` installs it (see tests/deploy/README.md)",
                    pytrace=False)
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    return require_tool("promtool", TOOLS_BIN)


@pytest.fixture(scope="session")
def hadolint() -> str:
    # pip installs it next to the interpreter, which need not be on PATH when pytest runs as .venv/bin/pytest
    return require_tool("hadolint", Path(sys.executable).parent)


@pytest.fixture(scope="session")
def kubectl() -> str:
    return require_tool("kubectl")


@pytest.fixture(scope="session")
def compose_cmd() -> list[str]:
    """Docker Compose v2+ (the Go implementation): the binary `make tools` builds, else one on PATH, else the
    docker CLI plugin."""
    candidates: list[list[str]] = []
    standalone = _which("docker-compose", TOOLS_BIN)
    if standalone:
        candidates.append([standalone])
    docker = shutil.which("docker")
    if docker:
        candidates.append([docker, "compose"])
    for cmd in candidates:
        proc = run([*cmd, "version", "--short"], timeout=30)
        # the retired Python docker-compose 1.x prints "1.29.2" and does not know the Compose Specification
        if proc.returncode == 0 and not proc.stdout.strip().startswith("1."):
            return cmd
    pytest.fail("Docker Compose v2+ is not installed (neither `docker-compose` nor `docker compose`): "
                "`make tools` installs it (see tests/deploy/README.md)", pytrace=False)


@pytest.fixture(scope="session")
def compose_model(compose_cmd: list[str]) -> dict[str, Any]:
    """deploy/docker-compose.yml as Compose itself resolves it (all profiles), or a failure with its error."""
    proc = run([*compose_cmd, "-f", str(COMPOSE_FILE), "--profile", "*", "config", "--format", "json"])
    if proc.returncode != 0:
        pytest.fail(f"docker compose config rejected {COMPOSE_FILE}:\n{proc.stderr}", pytrace=False)
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def k8s_rendered(kubectl: str) -> list[dict[str, Any]]:
    """deploy/k8s rendered by kustomize (the one built into kubectl), as a list of resources."""
    proc = run([kubectl, "kustomize", str(K8S)])
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {K8S} failed:\n{proc.stderr}", pytrace=False)
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


@pytest.fixture(scope="session")
def dockerfile_commands() -> list[Any]:
    """deploy/Dockerfile parsed by BuildKit's own parser (the `dockerfile` package wraps it)."""
    import dockerfile

    return list(dockerfile.parse_file(str(DOCKERFILE)))
