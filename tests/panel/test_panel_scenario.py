"""The scenario contract's `keys` action drives the keypad flows exactly as a clinician would."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pca_testkit import HEADER, MORPHINE, Outcome, steps

Run = Callable[..., Outcome]
LONG = HEADER + 'end = "5m"\n'  # long enough for the doses to finish


def test_keys_unlock_start_bolus_and_lock_through_the_keypad(scenario: Run) -> None:
    out = scenario(LONG + MORPHINE + steps(
        ("0s", "program"),
        ("10s", "keys", {"keys": "482916#"}),  # unlock: the menu
        ("12s", "keys", {"keys": "1#"}),  # 1 start, # confirm (a message for 4 s)
        ("22s", "keys", {"keys": "2150#"}),  # 2 clinician bolus, 1.50 mg, # ok
        ("24s", "keys", {"keys": "#"}),  # "GIVE BOLUS? 1.5 mg = 1.5 mL": give
        ("30s", "keys", {"keys": "*"}),  # back on the menu: * locks
        ("40s", "clinician_bolus", {"amount": 1.0, "pin": "000000"}),
    ), trace_interval_s=10)
    assert [e["outcome"] for e in out.of("auth")][:2] == ["ok", "ok"]
    assert out.of("state_changed", to="running")
    bolus = out.of("dose_started", source="clinician")
    assert len(bolus) == 1 and bolus[0]["amount_ml"] == 1.5 and bolus[0]["actor"] == "clinician"
    assert out.of("session_locked", reason="clinician")
    assert out.summary["delivered_ml"]["clinician"] == 1.5
    assert not any("482916" in json.dumps(e) for e in out.events)


def test_keys_program_a_pending_prescription_is_not_possible_without_a_file(
        scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(("0s", "keys", {"keys": "482916#0"})))
    assert not out.of("prescription_activated")
    assert out.summary["final_state"] == "unprogrammed"


def test_keys_relock_after_30s_idle_in_a_scenario(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        ("0s", "program"), ("10s", "keys", {"keys": "482916#"}),
        ("50s", "keys", {"keys": "1#"})))  # 40 s later: the keypad has relocked
    assert out.of("session_locked", reason="idle")
    assert out.summary["final_state"] == "stopped"


def test_keys_wrong_pins_back_off_in_a_scenario(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        ("0s", "keys", {"keys": "111111#222222#333333#482916#"})))
    assert [e["outcome"] for e in out.of("auth")] == ["failed"] * 3 + ["locked_out"]


def test_pca_scenario_command_with_keys_steps(tmp_path: Path) -> None:
    path = tmp_path / "keypad.toml"
    path.write_text(LONG + MORPHINE + steps(
        ("0s", "program"), ("10s", "keys", {"keys": "482916#1#"}),
        ("20s", "keys", {"keys": "3#"}),  # 3 loading dose, # give
        ("30s", "keys", {"keys": "*"})))
    events = tmp_path / "events.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pca.app.cli", "scenario", str(path),
                           "--events", str(events)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["delivered_ml"]["loading"] == 2.0
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    assert any(r["type"] == "dose_started" and r["source"] == "loading" for r in rows)
    assert any(r["type"] == "session_locked" and r["reason"] == "clinician" for r in rows)
