"""`python -m app.bench --markdown PATH`: one bench run's figures as Markdown tables (docs/benchmarks.md),
each figure beside the baseline measured in the same run and the ratio, under a header naming the machine,
Python, date and commit.

`render(results)` reads only the plain results structure the bench collects (every section optional):

    meta      cpu, cores, python, date, commit, dirty (bool), changed_files, load_start, load_end
    run       events_file, kafka_events, latency_seconds, cost_events, env (DG_* overrides in force)
    replay    events, parse_eps, replay_eps, ratio, accounts, bytes_per_account, fingerprints,
              bytes_per_fingerprint, pooled (None or jobs, eps)
    costs     records, events, observations, links, parse_only_us, us (per stage), core_us
    kafka     events, plain_eps, worker_eps, ratio, take_eps, take_worker_transport_eps, cpu_s_per_1k,
              peak_rss_mb, seconds, stages (per stage: batches, records, core_s, deliver_s)
    content   the same for the worker with one content process (DG_CONTENT_JOBS=1)
    scale_out the same for two workers
    latency   list of: rate, offered_eps, events, decisions, p50_ms, p99_ms, backlog_end,
              accounts and clusters (decisions, p50_ms, p99_ms); half_capacity (bool) and capacity_eps
              on the load that is half of one worker's measured events/s

`write(results, path)` replaces what an earlier run wrote and keeps whatever follows `KEEP_MARKER`."""

from __future__ import annotations

from pathlib import Path

from app.metrics import LATENCY_BUCKETS
from app.settings import Settings

# issue 18's targets (they replace issue 5's), which the figures are held against
TARGET_CORE_US = 120.0          # the core's cost per event on the cost pass, parse to cluster stage
TARGET_REPLAY_RATIO = 0.03      # replay events/s in one process against orjson parse-only of the same file
TARGET_CPU_S_PER_1K = 0.25      # worker CPU seconds per 1,000 events
TARGET_SCALE_OUT = 1.8          # two workers' events/s against one's on the same topic
TARGET_P99_MS = 250.0           # produce-to-decision p99 of all decisions ...
TARGET_P99_LOAD = 0.5           # ... at this share of one worker's measured capacity (its throughput run)
TARGET_LINKS_PER_EVENT = 0.05   # links into the one cluster partition per gateway event ...
TARGET_CLUSTER_CEILING_EPS = 200_000  # ... and the gateway events/s that partition absorbs at its cost per link
TARGET_ACCOUNT_BYTES = 1024     # state per active account (a standing target)
SIZING_RPS = 100_000            # the gateway the sizing line is for
SIZING_UTILISATION = 0.7

KEEP_MARKER = "<!-- make bench writes everything above this line; it keeps what follows as it is -->"
STAGES = ("parse", "content", "accounts", "fingerprints", "clusters")
STAGE_NAMES = {"parse": "parse + validation", "content": "content (cues, skeleton, SimHash/MinHash)",
               "accounts": "account stage", "fingerprints": "fingerprint stage", "clusters": "cluster stage"}


def ms_text(v: float) -> str:
    """A latency quantile; at the histogram's top bucket it is only known to be at least that."""
    return f">= {v / 1000:.0f} s (top bucket)" if v >= LATENCY_BUCKETS[-1] * 1000 else f"{v:.0f} ms"


def _lat(v: float) -> str:
    """ms_text, in seconds from one second on."""
    return ms_text(v) if v < 1000 or v >= LATENCY_BUCKETS[-1] * 1000 else f"{v / 1000:.1f} s"


def _eps(v: float) -> str:
    return f"{v:,.0f} events/s"


def _row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(head: tuple[str, ...], rows: list[tuple], right: int = 0) -> list[str]:
    """A Markdown table; the last `right` columns are right-aligned (figures)."""
    align = ["---"] * (len(head) - right) + ["---:"] * right
    return [_row(*head), _row(*align), *(_row(*r) for r in rows), ""]


def _commit(meta: dict) -> str:
    c = meta.get("commit") or "unknown"
    if meta.get("dirty"):
        n = meta.get("changed_files")
        c += f" (dirty: uncommitted changes{f' in {n} files' if n else ''})"
    return c


def header(results: dict) -> list[str]:
    meta, run = results.get("meta", {}), results.get("run", {})
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m app.bench --markdown docs/benchmarks.md`): everything above the "
        "section \"Earlier runs\" is this run's, and the next run replaces it. Every figure stands beside a "
        "baseline measured in the same run on the same data, because absolute events/s on a shared machine mean "
        "little and ratios travel (\"How to read\" below says what each baseline is).",
        "",
        _row("run", ""),
        _row("---", "---"),
        _row("machine", f"{meta.get('cpu', 'unknown CPU')}, {meta.get('cores', '?')} cores"),
        _row("Python", meta.get("python", "?")),
        _row("date", meta.get("date", "?")),
        _row("commit", _commit(meta)),
    ]
    if "load_start" in meta:
        end = f", {meta['load_end']:.2f} at the end" if "load_end" in meta else ""
        lines.append(_row("machine load", f"1-minute load average {meta['load_start']:.2f} at the start{end} "
                          f"({meta.get('cores', '?')} cores): other work on the machine slows the figures and "
                          "their baselines alike, not always equally"))
    if run.get("events_file"):
        lines.append(_row("input", f"`{run['events_file']}`"
                          + (" (the default simulated day, seed 7)" if run.get("default_day") else "")))
    if run.get("kafka_events"):
        lines.append(_row("through Kafka", f"{run['kafka_events']:,} events per throughput run; each latency "
                          f"load offered for {run.get('latency_seconds', 0):g} s (at most 100,000 events)"))
    env = run.get("env") or {}
    d = Settings()  # the worker's defaults, named from the settings themselves
    settings = (f"the defaults (`DG_CONTENT_JOBS={d.content_jobs}`, `DG_STATE_FLUSH_MS={d.state_flush_ms}`, "
                f"`DG_BATCH_WITHIN_MS={d.batch_within_ms}`, `DG_COMPRESSION={d.compression}`, RocksDB tables)")
    if env:
        settings += ", except " + ", ".join(f"`{k}={v}`" for k, v in sorted(env.items())) + " (set for the run)"
    lines.append(_row("worker settings", settings + "; the broker on the same machine"))
    return [*lines, ""]


def headline(results: dict) -> list[str]:
    """Every figure of the run with its baseline and ratio, one row each."""
    rows: list[tuple] = []
    r, c, k = results.get("replay"), results.get("costs"), results.get("kafka")
    if r:
        base = f"orjson parse-only {_eps(r['parse_eps'])}"
        rows.append((f"replay, full engine, one process ({r['events']:,} events)", _eps(r["replay_eps"]), base,
                     f"{r['ratio']:.3f}"))
        p = r.get("pooled")
        if p:
            rows.append((f"replay with {p['jobs']} content process{'es' if p['jobs'] > 1 else ''} (the CLI default "
                         "here)", _eps(p["eps"]), "same", f"{p['eps'] / r['parse_eps']:.3f}"))
    if c and c.get("events"):
        rows.append((f"the core's cost per event (first {c['records']:,} records, one process)",
                     f"{c['core_us']:.1f} µs", f"orjson parse-only {c['parse_only_us']:.2f} µs per record",
                     f"x{c['core_us'] / c['parse_only_us']:.0f} ({c['parse_only_us'] / c['core_us']:.3f})"))
    if k:
        plain = f"plain aiokafka consumer + parse {_eps(k['plain_eps'])}"
        rows.append((f"worker through Kafka, 6 partitions, RocksDB tables ({k['events']:,} events)",
                     _eps(k["worker_eps"]), plain, f"{k['ratio']:.3f}"))
        if k.get("take_eps"):
            rows.append(("Faust agent that only takes, parses and acknowledges, Faust's stock transport",
                         _eps(k["take_eps"]), "same consumer", f"{k['take_eps'] / k['plain_eps']:.3f}"))
        tw = k.get("take_worker_transport_eps")
        if tw:
            rows.append(("the same agent through the worker's transport", _eps(tw), "same consumer",
                         f"{tw / k['plain_eps']:.3f}"))
            rows.append(("worker against that take-only agent", _eps(k["worker_eps"]), f"take-only {_eps(tw)}",
                         f"{k['worker_eps'] / tw:.3f}"))
        kc = results.get("content")
        if kc:
            rows.append(("worker with one content process (`DG_CONTENT_JOBS=1`)", _eps(kc["worker_eps"]),
                         f"plain consumer on its own topic {_eps(kc['plain_eps'])}; default worker "
                         f"{_eps(k['worker_eps'])}",
                         f"{kc['ratio']:.3f}; x{kc['worker_eps'] / k['worker_eps']:.2f}"))
        k2 = results.get("scale_out")
        if k2:
            rows.append(("two workers, same topic", _eps(k2["worker_eps"]), f"one worker {_eps(k['worker_eps'])}",
                         f"x{k2['worker_eps'] / k['worker_eps']:.2f}"))
        rows.append(("worker CPU", f"{k['cpu_s_per_1k']:.2f} s per 1,000 events "
                     f"({1000 / k['cpu_s_per_1k']:,.0f} events per CPU-second)", "", ""))
        rows.append(("worker peak RSS", f"{k['peak_rss_mb']:.0f} MiB", "", ""))
    for lat in results.get("latency", ()):
        half = " (half of one worker's capacity)" if lat.get("half_capacity") else ""
        rows.append((f"produce -> decision at {lat['rate']:,} events/s offered{half} "
                     f"({lat['decisions']:,.0f} decisions)",
                     f"p50 {_lat(lat['p50_ms'])}, p99 {_lat(lat['p99_ms'])}", "", ""))
    if r:
        rows.append(("state per active account", f"{r['bytes_per_account']:.0f} B ({r['accounts']:,} accounts)",
                     "", ""))
        rows.append(("state per fingerprint value",
                     f"{r['bytes_per_fingerprint']:.0f} B ({r['fingerprints']:,} values)", "", ""))
    if not rows:
        return []
    return ["## Figures", "", *_table(("figure", "value", "baseline (same run)", "ratio"), rows)]


def cost_table(c: dict | None) -> list[str]:
    if not c:
        return []
    if not c.get("events"):
        return ["## The core's cost per event, by stage", "",
                f"No valid event in the first {c.get('records', 0):,} records: nothing to cost.", ""]
    core = c["core_us"]
    rows = [(STAGE_NAMES[s], f"{c['us'][s]:.1f}", f"{c['us'][s] / core:.0%}") for s in STAGES]
    rows.append(("all five", f"{core:.1f}", "100%"))
    budget = c["parse_only_us"] / TARGET_REPLAY_RATIO
    obs, links = c["observations"] / c["events"], c["links"] / c["events"]
    return ["## The core's cost per event, by stage", "",
            f"The first {c['records']:,} records of the file, one process, regexes compiled first (the steady "
            f"state), each stage timed over 512-record chunks (`app/bench/costs.py`). Per event: "
            f"{obs:.2f} observations, {links:.2f} links"
            + (f" ({c['new_edges'] / c['events']:.2f} of them a new (account, value) edge)" if "new_edges" in c else "")
            + ".", "",
            *_table(("stage", "µs per event", "share"), rows, right=2),
            f"Baseline: orjson parse-only {c['parse_only_us']:.2f} µs per record. A replay ratio of "
            f"{TARGET_REPLAY_RATIO:g} would leave {budget:.1f} µs per event for all five stages, "
            + (f"x{core / budget:.1f} less than they take." if core > budget else "more than they take.")
            + f" The target for the core is {TARGET_CORE_US:g} µs per event.", ""]


def worker_table(k: dict | None) -> list[str]:
    if not k or not k.get("stages"):
        return []
    rows = []
    for name, st in sorted(k["stages"].items()):
        b = max(1.0, st.get("batches", 0.0))
        rows.append((name, f"{st.get('batches', 0):,.0f}", f"{st.get('records', 0) / b:,.0f}",
                     f"{st.get('core_s', 0):.1f}", f"{st.get('deliver_s', 0):.1f}"))
    return ["## Where the worker's time goes", "",
            f"One worker draining {k['events']:,} events in {k['seconds']:.1f} s, by stage (from its metrics; "
            "waiting for the broker's acknowledgements overlaps the next batch's work).", "",
            *_table(("stage", "batches", "records per batch", "core s", "waiting for acks s"), rows, right=4)]


# what each of a run's topics carries, by the end of its name (the run's worker app id is the prefix)
TOPIC_ROLES = {
    ".requests": "gateway events (the input)", "-observations": "observations (account -> fingerprint stage)",
    "-links": "links (fingerprint -> cluster stage)", ".alerts": "alerts", ".decisions": "decisions",
    ".dlq": "dead letters"}


def topic_role(name: str, prefix: str) -> str:
    rest = name[len(prefix):] if name.startswith(prefix) else name
    if rest in TOPIC_ROLES:
        return TOPIC_ROLES[rest]
    if rest.endswith("-changelog"):
        return f"changelog of the {rest[1:-len('-changelog')]} table"
    return rest.lstrip("-.") or name  # Faust's own (its partition assignor's topic)


def broker_per_event(k: dict | None) -> tuple[list[tuple[str, float, float]], float, float] | None:
    """(role, records, bytes per gateway event) per topic of the one-worker run, most bytes first, and the
    totals; None without broker figures."""
    b = (k or {}).get("broker")
    if not b or not k.get("events"):
        return None
    n = k["events"]
    rows = sorted(((topic_role(t, k.get("topic_prefix", "")), f["records"] / n, f["bytes"] / n) for t, f in b.items()),
                  key=lambda r: -r[2])
    return rows, sum(r[1] for r in rows), sum(r[2] for r in rows)


def broker_table(k: dict | None) -> list[str]:
    load = broker_per_event(k)
    if load is None:
        return []
    rows, records, size = load
    mb = SIZING_RPS / 1e6
    body = [(role, f"{r:.3f}", f"{b:,.0f}", f"{b * mb:,.1f}") for role, r, b in rows]
    body.append(("all", f"{records:.3f}", f"{size:,.0f}", f"{size * mb:,.1f}"))
    return ["## Broker load", "",
            f"What one worker's run of {k['events']:,} events left on the broker, per topic: records (end offsets) "
            "and bytes (the partitions' size in the broker's log directories: record batches as stored, one "
            "replica, changelogs before compaction"
            + (f"; the worker's batches compressed with {k['compression']} (`DG_COMPRESSION`), the gateway's as "
               "the bench produced them, uncompressed" if k.get("compression") else "")
            + "), per gateway event, and what that is at "
            f"{SIZING_RPS:,} requests/s. Stage messages travel many to a record; the tables' changelogs are "
            "written once per changed key per flush (`DG_STATE_FLUSH_MS`), so a busier worker writes fewer "
            "changelog records per event.", "",
            *_table(("topic", "records per gateway event", "bytes per gateway event",
                     f"MB/s at {SIZING_RPS:,} requests/s"), body, right=3)]


def latency_table(lats: list[dict]) -> list[str]:
    if not lats:
        return []
    rows = []
    for lat in lats:
        a, cl = lat["accounts"], lat["clusters"]
        rate = f"{lat['rate']:,}" + (" (half of one worker's capacity)" if lat.get("half_capacity") else "")
        rows.append((rate, f"{lat['offered_eps']:,.0f}", f"{lat['events']:,}",
                     f"{lat['decisions']:,.0f}", _lat(lat["p50_ms"]), _lat(lat["p99_ms"]),
                     f"{a['decisions']:,.0f}: {_lat(a['p50_ms'])} / {_lat(a['p99_ms'])}",
                     f"{cl['decisions']:,.0f}: {_lat(cl['p50_ms'])} / {_lat(cl['p99_ms'])}",
                     f"{lat['backlog_end']:,.0f}"))
    return ["## Produce -> decision latency", "",
            "One worker, a fixed load offered by Kafka's Java `ConsoleProducer` (so the load generator does not "
            "take the worker's CPU): the broker timestamp of the gateway record behind a decision to the decision "
            "acknowledged by the broker (`distill_guard_decision_latency_seconds`), overall and by the stage that "
            "decided (decisions: p50 / p99). An account decision is one stage after the gateway, a cluster decision "
            "three. The load marked half of one worker's capacity is half the events/s the worker reached in this "
            "run's throughput pass (issue 18's p99 target is held at it). Past the worker's capacity the backlog, "
            "and the latency, grow for as long as the load lasts.", "",
            *_table(("offered, events/s", "reached", "events", "decisions", "p50", "p99", "account stage",
                     "cluster stage", "behind when the load stopped"), rows, right=0)]


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def half_capacity_latency(results: dict) -> dict | None:
    """The latency run offered at half of one worker's measured capacity (`half_capacity`), if there was one."""
    return next((lat for lat in results.get("latency", ()) if lat.get("half_capacity")), None)


def targets(results: dict) -> list[str]:
    """Issue 18's targets, each with this run's figure and whether it is met; a target whose figure the run
    did not measure is left out."""
    rows = []
    r, c, k, k2 = results.get("replay"), results.get("costs"), results.get("kafka"), results.get("scale_out")
    if c and c.get("events"):
        rows.append((f"core cost <= {TARGET_CORE_US:g} µs per event (cost pass)", f"{c['core_us']:.1f} µs",
                     _verdict(c["core_us"] <= TARGET_CORE_US)))
    if r:
        rows.append((f"replay in one process >= {TARGET_REPLAY_RATIO:g} of orjson parse-only", f"{r['ratio']:.3f}",
                     _verdict(r["ratio"] >= TARGET_REPLAY_RATIO)))
    if k:
        rows.append((f"worker CPU <= {TARGET_CPU_S_PER_1K:g} s per 1,000 events", f"{k['cpu_s_per_1k']:.2f} s",
                     _verdict(k["cpu_s_per_1k"] <= TARGET_CPU_S_PER_1K)))
        if k2:
            x = k2["worker_eps"] / k["worker_eps"]
            rows.append((f"two workers >= x{TARGET_SCALE_OUT:g} one", f"x{x:.2f}", _verdict(x >= TARGET_SCALE_OUT)))
    lat = half_capacity_latency(results)
    if lat:
        cap = lat.get("capacity_eps")
        of = f" of {_eps(cap)}" if cap else ""
        rows.append((f"p99 <= {TARGET_P99_MS:.0f} ms at half of one worker's measured capacity",
                     f"{_lat(lat['p99_ms'])} at {lat['rate']:,} events/s offered{of}",
                     _verdict(lat["p99_ms"] <= TARGET_P99_MS)))
    if c and c.get("events") and c.get("links") and c.get("us_per_link"):
        links = c["links"] / c["events"]
        ceiling = 1e6 / (c["us_per_link"] * links)
        rows.append((f"cluster stage input <= {TARGET_LINKS_PER_EVENT:g} links per gateway event",
                     f"{links:.3f}", _verdict(links <= TARGET_LINKS_PER_EVENT)))
        rows.append((f"cluster stage ceiling >= {TARGET_CLUSTER_CEILING_EPS:,} gateway events/s",
                     f"{ceiling:,.0f} ({c['us_per_link']:.1f} µs per link)",
                     _verdict(ceiling >= TARGET_CLUSTER_CEILING_EPS)))
    if r:
        rows.append((f"state <= {TARGET_ACCOUNT_BYTES:,} B per active account", f"{r['bytes_per_account']:.0f} B",
                     _verdict(r["bytes_per_account"] <= TARGET_ACCOUNT_BYTES)))
    if not rows:
        return []
    return ["## Targets (issue 18)", "", *_table(("target", "this run", ""), rows)]


def sizing(k: dict | None, c: dict | None) -> list[str]:
    if not k:
        return []
    per_core = 1000 / k["cpu_s_per_1k"]
    cores = SIZING_RPS / per_core
    text = (f"From this run's {per_core:,.0f} events per CPU-second: a gateway at {SIZING_RPS:,} requests/s needs "
            f"~{cores:.0f} busy cores of workers; at {SIZING_UTILISATION:.0%} utilisation "
            f"~{cores / SIZING_UTILISATION:.0f} worker processes of one core each, and at least as many partitions "
            "of the input topic.")
    if c and c.get("events") and c["us"].get("clusters"):
        per_link = ""
        if c.get("links") and c.get("us_per_link"):
            per_link = f" ({c['links'] / c['events']:.3f} links per input event at {c['us_per_link']:.1f} µs per link)"
        text += (f" The cluster stage is one partition whatever the number of workers: at {c['us']['clusters']:.1f} "
                 f"µs of core time per input event{per_link} its one consumer follows at most "
                 f"~{1e6 / c['us']['clusters']:,.0f} input events/s on this machine.")
    load = broker_per_event(k)
    if load is not None:
        _, records, size = load
        text += (f" The broker takes ~{size * SIZING_RPS / 1e6:,.0f} MB/s of writes ({records * SIZING_RPS:,.0f} "
                 "records/s) at that rate, one replica, the gateway's own records included (Broker load above): "
                 "times the replication factor on disk and on the network between brokers.")
    return ["## Sizing", "", text, ""]


HOW_TO_READ = [
    "## How to read",
    "",
    "- *Replay* pours the file through the full engine (`distill-guard replay`'s loop), in one process and with "
    "the content processes the CLI uses by default (`--content-jobs auto`); the baseline is `orjson.loads` of "
    "every record of the same file, read once before so that neither pays for the disk. The two replays must "
    "produce the same number of records, or the bench fails.",
    "- *The core's cost per event* times each stage over the first records of the same file, next to orjson "
    "parse-only of the same records: how far the engine is from a target ratio, and which stage holds the time.",
    "- *Worker* drains events already in a 6-partition topic through all three stages (the real broker, RocksDB "
    "tables, the worker's defaults); the baseline is a plain aiokafka consumer reading and parsing the same "
    "topic. The take-only agent (`app/bench/faust_take.py`) is a Faust app that takes batches as the worker's "
    "stages do, parses and acknowledges, and does nothing else: the ceiling of any worker on Faust's streams, "
    "through Faust's stock transport and through the worker's (`app/drivers/transport.py`). The plain "
    "consumer is the noisiest figure between runs; compare workers by their CPU per event.",
    "- *CPU and RSS* are the worker's and its content processes' (from /proc), counted from its first "
    "processed event.",
    "- *State* is the size of the orjson snapshots the tables store, averaged over the keys replay left.",
    "",
]


def render(results: dict) -> str:
    parts = [header(results), headline(results), targets(results), cost_table(results.get("costs")),
             worker_table(results.get("kafka")), broker_table(results.get("kafka")),
             latency_table(results.get("latency", [])),
             sizing(results.get("kafka"), results.get("costs")), HOW_TO_READ]
    return "\n".join(line for part in parts for line in part)


def write(results: dict, path: Path) -> None:
    """Write the run to `path`, keeping the marker line and everything after it from the file there."""
    kept = ""
    if path.exists():
        old = path.read_text(encoding="utf-8")
        at = old.find(KEEP_MARKER)
        if at >= 0:
            kept = old[at + len(KEEP_MARKER):].lstrip("\n")
    text = render(results) + KEEP_MARKER + "\n" + (("\n" + kept) if kept else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
