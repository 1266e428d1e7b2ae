"""The fence around Faust internals (app/drivers/faust_compat.py): the version check at import, the
internals it reaches still there in the installed versions, and no other module of app/ touching a
private attribute of faust-streaming, aiokafka or mode."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import tomllib
import types
from pathlib import Path

import pytest

from app.drivers import faust_compat as fc

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app"
COMPAT = APP / "drivers" / "faust_compat.py"
LIBS = ("faust", "aiokafka", "mode")


# ----------------------------------------------------------------------------------- version check


def test_the_supported_range_is_the_one_pyproject_pins() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for d in deps:
        m = re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)", d)
        if m:
            pins[m.group(1)] = (m.group(2), m.group(3))
    for dist, low, high in fc.SUPPORTED:
        assert pins[dist] == (low, high), dist


def test_the_installed_versions_pass() -> None:
    fc.check_versions()


@pytest.mark.parametrize(("dist", "version"), [("faust-streaming", "0.16.0"), ("faust-streaming", "0.10.9"),
                                               ("aiokafka", "0.15.0rc1"), ("aiokafka", None)])
def test_an_unsupported_version_fails_naming_the_supported_range(monkeypatch, dist, version) -> None:
    real = fc.installed_version
    monkeypatch.setattr(fc, "installed_version", lambda d: version if d == dist else real(d))
    with pytest.raises(fc.UnsupportedVersion) as err:
        fc.check_versions()
    msg = str(err.value)
    assert "faust-streaming >=0.11,<0.16" in msg and "aiokafka >=0.14,<0.15" in msg
    assert f"{dist} {version or 'not installed'} (supported: " in msg


def test_the_check_runs_when_the_module_is_imported(monkeypatch) -> None:
    """A fresh import of the module under an unsupported faust-streaming stops there, before any patch."""
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(metadata, "version", lambda d: "0.17.2" if d == "faust-streaming" else real(d))
    spec = importlib.util.spec_from_file_location("faust_compat_fresh", COMPAT)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(RuntimeError, match=r"faust-streaming 0\.17\.2 \(supported: >=0\.11,<0\.16\)"):
        spec.loader.exec_module(module)


@pytest.mark.parametrize(("v", "want"), [("0.15.3", (0, 15, 3)), ("0.16.0rc1", (0, 16, 0)), ("1.0", (1, 0)),
                                          ("0.14.0.post1", (0, 14, 0))])
def test_release_numbers(v, want) -> None:
    assert fc._release(v) == want


# ----------------------------------------------------------------------------------- the internals


def test_the_internals_it_reaches_are_there() -> None:
    """What faust_compat reads or replaces, checked against the installed faust-streaming and aiokafka: an
    upgrade that renames one fails here, not quietly in a running worker."""
    import aiokafka
    import faust.streams
    from faust.channels import Channel
    from faust.stores import rocksdb
    from faust.tables.base import Collection
    from faust.transport import consumer as faust_consumer
    from faust.transport.drivers import aiokafka as faust_aiokafka
    from faust.types.tuples import ConsumerMessage

    assert isinstance(faust.streams._current_event, type(faust.streams._current_event))
    assert faust.streams._current_event.name == "current_event"
    src = inspect.getsource(faust_consumer.Consumer)
    for name in ("_committed_offset", "_read_offset", "_gap"):  # per-partition mappings, read with .get
        assert f"self.{name} = defaultdict(" in src, name
    add_gap = faust_consumer.Consumer._add_gap
    assert list(inspect.signature(add_gap).parameters) == ["self", "tp", "offset_from", "offset_to"]
    assert inspect.iscoroutinefunction(add_gap)
    assert "self._queue = queue" in inspect.getsource(Channel.__init__)
    assert "self._queue = self.app.FlowControlQueue(" in inspect.getsource(Channel.queue.fget)
    assert list(inspect.signature(ConsumerMessage).parameters)[:9] == [
        "topic", "partition", "offset", "timestamp", "timestamp_type", "headers", "key", "value", "checksum"]
    store_src = inspect.getsource(rocksdb.Store)
    for name in ("self._dbs = {}", "self._key_index = LRUCache(", "def _db_for_partition(", "offset_key = "):
        assert name in store_src, name
    assert callable(Collection._on_changelog_sent)
    assert callable(faust_aiokafka.Producer._ensure_producer)
    assert callable(aiokafka.AIOKafkaProducer.create_batch) and callable(aiokafka.AIOKafkaProducer.send_batch)
    assert "self._fetch_max_wait_ms = fetch_max_wait_ms" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    # read_offset: the aiokafka consumer under Faust's consumer thread, and its partitions' positions
    assert "self._consumer = self._create_consumer(" in inspect.getsource(faust_aiokafka.AIOKafkaConsumerThread)
    assert "self._subscription = SubscriptionState(" in inspect.getsource(aiokafka.AIOKafkaConsumer.__init__)
    from aiokafka.consumer.subscription_state import Assignment, SubscriptionState, TopicPartitionState
    assert isinstance(SubscriptionState.subscription, property)
    assert "return self._tp_state.get(tp)" in inspect.getsource(Assignment.state_value)  # None when not assigned
    assert "self._position = None" in inspect.getsource(TopicPartitionState.__init__)
    for name in ("_create_worker_consumer", "_new_consumer_thread"):
        assert hasattr(faust_aiokafka.AIOKafkaConsumerThread if name.startswith("_create") else
                       faust_aiokafka.Consumer, name), name


def test_read_offset_takes_the_later_of_faust_s_record_and_aiokafka_s_position() -> None:
    """Faust can drop every record aiokafka returned for a partition since an assignment (its flow was
    suspended meanwhile): its own record of what it read stays empty, the position shows they were read."""
    import asyncio

    from aiokafka.consumer.subscription_state import SubscriptionState
    from aiokafka.structs import TopicPartition

    async def check() -> None:  # aiokafka's subscription state makes futures: it needs a running loop
        tp, other = TopicPartition("t", 0), TopicPartition("t", 1)
        sub = SubscriptionState()
        sub.assign_from_user({tp})
        ak = types.SimpleNamespace(_subscription=sub)
        consumer = types.SimpleNamespace(_read_offset={}, _thread=types.SimpleNamespace(_consumer=ak))
        assert fc.read_offset(consumer, tp) is None  # no position yet, nothing recorded
        sub.subscription.assignment.state_value(tp).reset_to(2056)
        assert fc.read_offset(consumer, tp) == 2055  # Faust recorded nothing: the position says 2055 was read
        consumer._read_offset[tp] = 2100
        assert fc.read_offset(consumer, tp) == 2100
        consumer._read_offset[other] = 7  # not assigned to the aiokafka consumer: Faust's record alone
        assert fc.read_offset(consumer, other) == 7
        assert fc.read_offset(types.SimpleNamespace(_read_offset={other: 3}), other) == 3  # no thread yet

    asyncio.run(check())


def test_take_over_gaps_switches_faust_s_recording_off_once() -> None:
    calls = []

    class _C:
        async def _add_gap(self, tp, offset_from, offset_to) -> None:
            calls.append((tp, offset_from, offset_to))

    import asyncio

    c = _C()
    original = fc.take_over_gaps(c)
    assert original is not None and fc.take_over_gaps(c) is None  # the second call finds its own no-op
    asyncio.run(c._add_gap("tp", 1, 2))
    assert calls == []
    asyncio.run(original("tp", 3, 4))
    assert calls == [("tp", 3, 4)]


# ----------------------------------------------------------------------------------- the fence


def _library_privates() -> set[str]:
    """Private names (one leading underscore, not dunder) that faust, aiokafka and mode define as
    attributes, methods or module globals: `self._x = ...`, `def _x`, class or module level `_x = ...`."""
    names: set[str] = set()
    import aiokafka

    site = Path(aiokafka.__file__).resolve().parents[1]  # (faust replaces its module object: no __spec__)
    for lib in LIBS:
        assert (site / lib / "__init__.py").is_file(), lib
        for path in (site / lib).rglob("*.py"):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (SyntaxError, UnicodeDecodeError):
                continue
            names |= _defined_privates(tree)
    return names


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _defined_privates(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _private(node.id):
            out.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _private(node.target.id):
            out.add(node.target.id)
        elif isinstance(node, ast.arg) and _private(node.arg):
            out.add(node.arg)
    return out


def _own_privates(tree: ast.AST) -> set[str]:
    """Private names a module of the project defines itself (`self._x = ...`, `def _x`, class or module
    level `_x`, `__slots__` entries): an access to one of these in that module may be to its own object."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _private(node.name):
            out.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _private(node.attr) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            out.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _private(node.id):
            out.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and _private(node.target.id):
            out.add(node.target.id)
        elif isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__slots__"
                                                  for t in node.targets):
            out |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)
                    and isinstance(c.value, str) and _private(c.value)}
    return out


def violations(source: str, lib_privates: set[str]) -> list[str]:
    """Where `source` touches a private part of faust, aiokafka or mode:
    - importing a private name from them, or reaching one through a module imported from them
      (`faust.streams._current_event`);
    - an attribute access, or getattr/hasattr/setattr/delattr with a literal name, of a private name those
      libraries define and the module itself does not (`consumer._committed_offset`);
    - assigning to an attribute of a class or module imported from them (`ProducerBuffer.max_messages = 1`)."""
    tree = ast.parse(source)
    lib_bound: set[str] = set()  # local names bound to faust/aiokafka/mode modules or their objects
    out: list[str] = []
    suspects = lib_privates - _own_privates(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in LIBS:
                    lib_bound.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in LIBS:
            for a in node.names:
                if _private(a.name):
                    out.append(f"line {node.lineno}: imports {node.module}.{a.name}")
                lib_bound.add(a.asname or a.name)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            root = node
            chain = []
            while isinstance(root, ast.Attribute):
                chain.append(root.attr)
                root = root.value
            if isinstance(root, ast.Name) and root.id in lib_bound:
                if any(_private(a) for a in chain):
                    out.append(f"line {node.lineno}: {root.id}.{'.'.join(reversed(chain))}")
                    continue
                if isinstance(node.ctx, ast.Store):
                    out.append(f"line {node.lineno}: patches {root.id}.{'.'.join(reversed(chain))}")
                    continue
            if node.attr in suspects:
                out.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) and name.value in suspects:
                out.append(f"line {node.lineno}: {node.func.id}(..., {name.value!r})")
    return sorted(set(out))


@pytest.fixture(scope="module")
def lib() -> set[str]:
    return _library_privates()


def test_no_module_but_faust_compat_touches_a_private_part_of_faust_aiokafka_or_mode(lib) -> None:
    found = {}
    for path in sorted(APP.rglob("*.py")):
        if path != COMPAT:
            v = violations(path.read_text(encoding="utf-8"), lib)
            if v:
                found[str(path.relative_to(ROOT))] = v
    assert not found, found


def test_the_check_finds_what_faust_compat_itself_does(lib) -> None:
    """The check is precise enough to fail: run over faust_compat, it reports the internals fenced there."""
    v = "\n".join(violations(COMPAT.read_text(encoding="utf-8"), lib))
    for name in ("faust.streams._current_event", "getattr(..., '_committed_offset')", "getattr(..., '_read_offset')",
                 "getattr(..., '_add_gap')", "._add_gap", "._db_for_partition", "getattr(..., '_key_index')",
                 "._on_changelog_sent", "getattr(..., '_ensure_producer')", "._fetch_max_wait_ms", "._commit_every",
                 "getattr(..., '_queue')", "._dbs"):
        assert name in v, name


@pytest.mark.parametrize("snippet", [
    "from faust.transport.producer import ProducerBuffer\nProducerBuffer.max_messages = 20_000\n",
    "import faust.streams\nfaust.streams._current_event.set(None)\n",
    "from faust.streams import _current_event\n",
    "def f(app):\n    return app.consumer._committed_offset\n",
    "def f(c):\n    return getattr(c, '_read_offset', {})\n",
    "async def f(consumer):\n    return await consumer._client.fetch_all_metadata()\n",
    "def f(stream):\n    return stream.channel._queue.qsize()\n",
])
def test_the_check_catches_each_kind_of_access(lib, snippet) -> None:
    assert violations(snippet, lib), snippet


def test_the_check_leaves_the_project_s_own_private_names_alone(lib) -> None:
    assert not violations("class A:\n    def __init__(self):\n        self._cache = {}\n"
                          "    def f(self):\n        return self._cache, self.__class__\n", lib)
