"""The `pca scenario` contract of SCENARIOS.md: input checks, events, trace, summary."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.app.scenario import TRACE_COLUMNS, load_scenario

SHARED = Path(__file__).resolve().parents[1] / "pca" / "examples"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pca.app.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("path", sorted(SHARED.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_runs_and_prints_a_summary(path: Path, tmp_path: Path) -> None:
    proc = cli("scenario", str(path), "--events", str(tmp_path / "e.jsonl"),
               "--trace", str(tmp_path / "t.csv"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert set(summary) >= {"pca_requests", "pca_granted", "pca_denied", "delivered_ml",
                            "alarms", "final_state"}
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    for e in events:
        assert {"seq", "t_s", "wall", "type", "actor"} <= set(e)
        assert e["actor"] in ("patient", "clinician", "system")
        assert e["wall"].endswith("Z")
    requests = [e for e in events if e["type"] == "pca_request"]
    assert summary["pca_requests"] == len(requests)
    assert summary["pca_granted"] == sum(e["outcome"] == "granted" for e in requests)
    header = (tmp_path / "t.csv").read_text().splitlines()[0]
    assert header == ",".join(TRACE_COLUMNS)


@pytest.mark.parametrize(("body", "words"), [
    ('[[step]]\nat = "1m"\ndo = "dance"', "unknown action 'dance'"),
    ('[[step]]\nat = "soon"\ndo = "press"', "'soon' is not a time"),
    ('[[step]]\nat = "1m"\ndo = "signal"\nname = "occlusion"', "missing field value"),
    ('[[step]]\nat = "1m"\ndo = "signal"\nname = "smoke"\nvalue = true', "unknown signal"),
    ('[[step]]\nat = "2m"\ndo = "press"\n[[step]]\nat = "1m"\ndo = "press"',
     "is before the step above it"),
    ('[[step]]\nat = "1m"\ndo = "press"\ncolour = "red"', "unknown field colour"),
    ('[[step]]\nat = "1m"\ndo = "keys"\nkeys = "12a#"', "must be keypad keys"),
    ("[pump]\nbolus_rate_ml_h = -5", "bolus_rate_ml_h = -5 must be a number 1 to 600"),
])
def test_invalid_scenario_exits_2_with_one_line_naming_the_problem(
        tmp_path: Path, body: str, words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + "\n" + body + "\n")
    proc = cli("scenario", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert words in proc.stderr
    assert str(path) in proc.stderr


def test_malformed_prescription_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(HEADER + MORPHINE.replace("pca_dose = 1.0", 'pca_dose = "one"'))
    proc = cli("scenario", str(path))
    assert proc.returncode == 2
    assert "pca_dose = 'one' must be a number" in proc.stderr


def test_existing_database_is_never_overwritten(tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    db.write_bytes(b"precious")
    proc = cli("scenario", str(SHARED / "postop_morphine.toml"), "--db", str(db))
    assert proc.returncode == 2
    assert db.read_bytes() == b"precious"


def test_same_file_gives_the_same_events(scenario: Callable[..., Outcome]) -> None:
    text = (SHARED / "restart_during_dose.toml").read_text()
    first, second = scenario(text), scenario(text)
    assert first.events == second.events
    assert first.trace == second.trace


def test_trace_runs_from_zero_to_the_end_at_the_interval(
        scenario: Callable[..., Outcome]) -> None:
    out = scenario(HEADER + 'end = "10m"\n' + MORPHINE + steps(("0s", "program")),
                   trace_interval_s=30)
    times = [float(r["t_s"]) for r in out.trace]
    assert times == [30.0 * k for k in range(21)]


def test_default_end_is_last_step_plus_a_minute(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEADER + MORPHINE + steps(("0s", "program"), ("7m", "start")))
    assert load_scenario(path).end_ns == 8 * 60 * 10**9


def test_actions_while_off_do_nothing_but_signals_and_clock_count(
        scenario: Callable[..., Outcome]) -> None:
    out = scenario(HEADER + "[pump]\nrtc = true\n" + MORPHINE + steps(
        ("0s", "program"), ("10s", "start"), ("1m", "crash"), ("2m", "press"),
        ("2m", "signal", {"name": "occlusion", "value": True}),
        ("3m", "clock_step", {"seconds": 3600}), ("4m", "restart")))
    assert out.summary["pca_requests"] == 0
    restarted = out.of("restarted")[0]
    # Pump time runs on from the last logged event: RTC wall time since then, clock step included.
    last_logged = max(e["t_s"] for e in out.events if e["t_s"] <= 60)
    assert restarted["outage_s"] == pytest.approx(3600 + 240 - last_logged, abs=0.01)
    assert out.of("alarm_raised", alarm="occlusion")  # found on restart
    assert out.at(150)["state"] == "off"


def test_summary_totals_match_the_trace_end(scenario: Callable[..., Outcome]) -> None:
    out = scenario((SHARED / "occlusion.toml").read_text())
    last = out.trace[-1]
    assert float(last["delivered_ml"]) == pytest.approx(out.summary["delivered_ml"]["total"])
    assert float(last["pca_ml"]) == pytest.approx(out.summary["delivered_ml"]["pca"])
