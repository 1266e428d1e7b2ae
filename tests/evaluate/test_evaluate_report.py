"""The HTML report is self-contained and renders in headless Chromium with its headline numbers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import orjson
import pytest

from app.cli import main
from app.evaluate.metrics import evaluate
from app.evaluate.report import write
from app.sim import generator, scenario

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed: `apt-get update && apt-get install -y chromium` (Debian package)")
    return exe


def test_report_is_self_contained(case, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    write(evaluate(*case), report)
    text = report.read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', text)
    assert len(srcs) == 3 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "http://" not in text and "https://" not in text  # nothing fetched from anywhere


@pytest.mark.browser
def test_report_renders_in_headless_chromium(case, tmp_path: Path) -> None:
    exe = _chromium()
    e, lab, d = case
    report = tmp_path / "report.html"
    assert main(["evaluate", "--events", str(e), "--labels", str(lab), "--decisions", str(d),
                 "--report", str(report)]) == 0
    profile = tmp_path / "profile"
    url = report.resolve().as_uri()
    dom = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
                          "--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    # the load handler ran and all three plots decoded to real images
    assert 'data-images-loaded="3/3"' in html, html[:500]
    for metric, value in [("campaign_recall", "0.6000"), ("benign_fpr", "0.6667"), ("benign_blocked", "1"),
                          ("leak_ratio", "0.5455"), ("median_ttd", "10.0000 s"), ("replacement_first", "0.5000")]:
        assert re.search(rf'data-metric="{metric}"><div class="v">{re.escape(value)}</div>', html), metric

    shot = tmp_path / "shot.png"
    run = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}2", "--window-size=1200,1600",
                          f"--screenshot={shot}", url], capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_oracle_decisions_on_smoke_score_perfectly(tmp_path: Path) -> None:
    generator.write(generator.build(scenario.load("smoke"), 3), tmp_path)
    labels = orjson.loads((tmp_path / "labels.json").read_bytes())
    first: dict[str, str] = {}
    with (tmp_path / "events.jsonl").open("rb") as f:
        for line in f:
            e = orjson.loads(line)
            first.setdefault(e["account_id"], e["ts"])
    with (tmp_path / "decisions.jsonl").open("wb") as f:
        for acct, ts in first.items():
            if labels[acct]["cls"] == "campaign":
                f.write(orjson.dumps({"decision_id": acct, "ts": ts, "scope": "account", "value": acct,
                                      "action": "block", "ttl_s": 60, "expires_at": ts, "reasons": ["oracle"],
                                      "alert_id": "a", "mode": "enforce"}) + b"\n")
    result = evaluate(tmp_path / "events.jsonl", tmp_path / "labels.json", tmp_path / "decisions.jsonl")
    t = result.totals
    assert (t.campaign_recall, t.benign_fpr, t.leak_ratio, t.median_ttd_s) == (1.0, 0.0, 0.0, 0.0)
    assert t.replacements > 0 and t.replacement_first_rate == 1.0
    assert t.campaign_accounts + t.benign_accounts == len(labels)
    write(result, tmp_path / "report.html")
    assert (tmp_path / "report.html").stat().st_size > 30_000
