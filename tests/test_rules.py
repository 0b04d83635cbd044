"""The safety rules of DESIGN.md, checked end to end through `pca scenario`."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.store.eventlog import export_rows

Run = Callable[..., Outcome]
START = (("0s", "program"), ("5s", "start"))
NO_BASAL = MORPHINE.replace("basal_rate_per_h = 0.5", "basal_rate_per_h = 0.0")


def ml(row: dict[str, str], column: str = "delivered_ml") -> float:
    return float(row[column])


# ---- SR-1 lockout ------------------------------------------------------------------------
def test_sr1_lockout_boundary_is_inclusive(scenario: Run) -> None:
    out = scenario(HEADER + NO_BASAL + steps(
        *START, ("1m", "press"), ("10m59s", "press"), ("11m", "press")))
    outcomes = [(e["outcome"], e.get("reason")) for e in out.of("pca_request")]
    assert outcomes == [("granted", None), ("denied", "lockout"), ("granted", None)]


def test_sr1_no_pca_while_a_dose_is_running(scenario: Run) -> None:
    # A 2 mg loading dose takes 2 min at 60 mL/h; a press during it is refused.
    out = scenario(HEADER + NO_BASAL + steps(*START, ("10s", "loading_dose"),
                                                 ("1m", "press")))
    assert out.of("pca_request")[0]["reason"] in ("in_progress", "lockout")
    assert out.of("pca_request")[0]["outcome"] == "denied"


def test_sr1_clinician_bolus_starts_a_lockout(scenario: Run) -> None:
    out = scenario(HEADER + NO_BASAL + steps(
        *START, ("1m", "clinician_bolus", {"amount": 1.0}), ("8m", "press"),
        ("11m", "press")))
    assert [e.get("reason") for e in out.of("pca_request")] == ["lockout", None]


# ---- SR-2 dose limit -----------------------------------------------------------------------
def test_sr2_pca_that_would_exceed_the_limit_is_denied(scenario: Run) -> None:
    rx = NO_BASAL.replace("dose_limit = 6.0", "dose_limit = 2.5").replace(
        "max_pca_per_h = 4", "max_pca_per_h = 6")
    out = scenario(HEADER + rx + steps(*START, ("1m", "press"), ("12m", "press"),
                                       ("23m", "press"), ("1h01m30s", "press")))
    reasons = [e.get("reason") for e in out.of("pca_request")]
    assert reasons == [None, None, "dose_limit", None]
    assert out.summary["delivered_ml"]["pca"] == pytest.approx(3.0)


def test_sr2_basal_reaching_the_limit_drops_to_kvo_and_resumes(scenario: Run) -> None:
    rx = MORPHINE.replace("basal_rate_per_h = 0.5", "basal_rate_per_h = 2.0").replace(
        "dose_limit = 6.0", "dose_limit = 3.0").replace("loading_dose = 2.0", "loading_dose = 1.5")
    out = scenario(HEADER + 'end = "2h"\n' + rx + steps(*START, ("10s", "loading_dose")),
                   trace_interval_s=10)
    kvo = out.of("state_changed", to="kvo")
    assert kvo, "the limit was never reached"
    assert out.of("alarm_raised", alarm="dose_limit_reached")
    assert out.of("rate_changed", mode="kvo")[0]["rate_ml_h"] == pytest.approx(0.1)
    # The counted volume in every 1-hour window of the trace stays within 3 mL (+1 sample).
    rows = [(float(r["t_s"]), ml(r, "basal_ml") + ml(r, "pca_ml") + ml(r, "loading_ml"))
            for r in out.trace]
    for t, cum in rows:
        before = [c for s, c in rows if s <= t - 3600]
        assert cum - (before[-1] if before else 0.0) <= 3.0 + 2.0 * 10 / 3600 + 1e-9
    assert out.of("state_changed", **{"from": "kvo", "to": "running"})
    assert out.of("alarm_cleared", alarm="dose_limit_reached")


def test_sr2_loading_dose_is_cut_at_the_limit(scenario: Run) -> None:
    rx = NO_BASAL.replace("dose_limit = 6.0", "dose_limit = 2.0").replace(
        "loading_dose = 2.0", "loading_dose = 2.0").replace("pca_dose = 1.0", "pca_dose = 1.5")
    out = scenario(HEADER + rx + steps(*START, ("20s", "press"), ("11m", "loading_dose")))
    ended = out.of("dose_ended", source="loading")[0]
    assert ended["completion"] == "truncated"
    assert ended["delivered_ml"] == pytest.approx(0.5, abs=1e-4)
    assert out.of("alarm_raised", alarm="dose_limit_reached")


def test_sr2_clinician_bolus_is_not_counted(scenario: Run) -> None:
    rx = NO_BASAL.replace("dose_limit = 6.0", "dose_limit = 2.0").replace(
        "lockout_min = 10", "lockout_min = 6")
    out = scenario(HEADER + rx + steps(
        *START, ("1m", "clinician_bolus", {"amount": 2.0}), ("7m", "press")))
    assert out.of("dose_ended", source="clinician")[0]["delivered_ml"] == pytest.approx(2.0)
    assert out.of("pca_request")[0]["outcome"] == "granted"


# ---- SR-3 doses per hour -------------------------------------------------------------------
def test_sr3_max_doses_per_hour(scenario: Run) -> None:
    rx = NO_BASAL.replace("lockout_min = 10", "lockout_min = 6").replace(
        "max_pca_per_h = 4", "max_pca_per_h = 2").replace("dose_limit = 6.0", "dose_limit = 10.0")
    out = scenario(HEADER + rx + steps(*START, ("1m", "press"), ("8m", "press"),
                                       ("15m", "press"), ("1h0m30s", "press"),
                                       ("1h01m", "press")))
    reasons = [e.get("reason") for e in out.of("pca_request")]
    assert reasons == [None, None, "max_per_hour", "max_per_hour", None]


# ---- SR-4 stop on fault --------------------------------------------------------------------
@pytest.mark.parametrize("signal", ["occlusion", "air_in_line", "door_open",
                                    "battery_depleted"])
def test_sr4_high_alarm_stops_a_dose_mid_move(scenario: Run, signal: str) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "press"), ("1m30s", "signal", {"name": signal, "value": True}),
        ("2m", "press")))
    ended = out.of("dose_ended", source="pca")[0]
    assert ended["completion"] == "interrupted"
    assert ended["delivered_ml"] == pytest.approx(0.5, abs=1e-3)  # 30 s at 60 mL/h
    assert out.at(91)["state"] == "alarm"
    assert ml(out.at(91)) == ml(out.at(180))  # nothing more after the signal
    assert out.of("pca_request")[1]["reason"] == "alarm"


def test_sr4_alarm_clears_only_when_the_condition_is_gone_and_a_clinician_clears(
        scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "occlusion", "value": True}),
        ("2m", "clear_alarm"), ("3m", "start"),
        ("4m", "signal", {"name": "occlusion", "value": False}),
        ("5m", "start"), ("6m", "clear_alarm"), ("7m", "start")))
    assert out.at(250)["state"] == "alarm"
    assert "occlusion" in out.at(330)["alarms"]
    assert out.of("alarm_cleared", alarm="occlusion")[0]["t_s"] == 360
    assert out.at(425)["state"] == "running"
    assert len(out.of("action_rejected", action="start")) == 2


def test_sr4_medium_alarm_lets_delivery_go_on(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "battery_low", "value": True}), ("2m", "press")))
    assert out.of("pca_request")[0]["outcome"] == "granted"
    assert out.summary["final_state"] in ("running", "pca_dose")


# ---- SR-5 restart ---------------------------------------------------------------------------
def test_sr5_dose_running_at_crash_is_not_resumed_and_counts(scenario: Run) -> None:
    out = scenario(HEADER + NO_BASAL + steps(
        *START, ("1m", "press"), ("1m30s", "crash"), ("2m", "restart"), ("3m", "start"),
        ("5m", "press")))
    ended = out.of("dose_ended", source="pca")
    assert [e["completion"] for e in ended] == ["interrupted"]
    given = ended[0]["delivered_ml"]
    assert 0.5 <= given <= 0.5 + 0.05 + 1e-9  # truth 0.5 mL; upper bound within one grant
    assert out.of("restarted")[0]["interrupted_dose_ml"] == given
    assert out.at(150)["state"] == "stopped"
    assert out.at(150)["alarms"] == "delivery_interrupted"
    assert ml(out.at(150), "pca_ml") == ml(out.at(179), "pca_ml")  # not resumed
    assert out.of("pca_request")[-1]["reason"] == "lockout"  # lockout survived
    assert out.summary["delivered_ml"]["pca"] == pytest.approx(0.5, abs=1e-4)


def test_sr5_without_rtc_the_outage_counts_as_zero(scenario: Run) -> None:
    out = scenario(HEADER + NO_BASAL + steps(
        *START, ("1m", "press"), ("3m", "crash"), ("30m", "restart"), ("31m", "start"),
        ("32m", "press")))
    assert out.of("restarted")[0]["outage_s"] == 0
    # Only ~3 min of pump time passed since the dose: still locked out.
    assert out.of("pca_request")[-1]["reason"] == "lockout"


def test_sr5_with_rtc_the_outage_counts(scenario: Run) -> None:
    out = scenario(HEADER + "[pump]\nrtc = true\n" + NO_BASAL + steps(
        *START, ("1m", "press"), ("3m", "crash"), ("30m", "restart"), ("31m", "start"),
        ("32m", "press")))
    assert out.of("pca_request")[-1]["outcome"] == "granted"


def test_sr5_rtc_clock_that_went_backwards_gives_zero_outage(scenario: Run) -> None:
    out = scenario(HEADER + "[pump]\nrtc = true\n" + NO_BASAL + steps(
        *START, ("1m", "press"), ("3m", "crash"), ("4m", "clock_step", {"seconds": -7200}),
        ("30m", "restart"), ("31m", "start"), ("32m", "press")))
    assert out.of("restarted")[0]["outage_s"] == 0
    assert out.of("pca_request")[-1]["reason"] == "lockout"


def test_sr5_wall_clock_jump_while_running_changes_timestamps_only(scenario: Run) -> None:
    out = scenario(HEADER + NO_BASAL + steps(
        *START, ("1m", "press"), ("2m", "clock_step", {"seconds": 86400}),
        ("5m", "press"), ("11m", "press")))
    assert out.of("clock_changed")[0]["delta_s"] == 86400
    assert [e.get("reason") for e in out.of("pca_request")] == [None, "lockout", None]
    assert out.of("pca_request")[1]["wall"].startswith("2026-03-02")


def test_sr5_dose_limit_window_survives_restart(scenario: Run) -> None:
    rx = NO_BASAL.replace("dose_limit = 6.0", "dose_limit = 2.0").replace(
        "pca_dose = 1.0", "pca_dose = 1.5")
    out = scenario(HEADER + rx + steps(*START, ("1m", "press"), ("5m", "crash"),
                                       ("6m", "restart"), ("7m", "start"), ("15m", "press")))
    assert out.of("pca_request")[-1]["reason"] == "dose_limit"


def test_sr5_pin_failures_survive_restart(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        ("0s", "keys", {"keys": "1111#"}), ("1s", "keys", {"keys": "2222#"}),
        ("2s", "crash"), ("3s", "restart"), ("4s", "keys", {"keys": "3333#"}),
        ("5s", "program")))
    outcomes = [e["outcome"] for e in out.of("auth")]
    assert outcomes == ["failed", "failed", "failed", "locked_out"]
    assert not out.of("prescription_activated")


# ---- SR-6 authorisation --------------------------------------------------------------------
def test_sr6_wrong_pin_changes_nothing(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(("0s", "program", {"pin": "000000"})))
    assert out.of("auth")[0]["outcome"] == "failed"
    assert out.of("action_rejected", action="program")
    assert not out.of("prescription_activated")
    assert out.summary["final_state"] == "unprogrammed"


def test_sr6_no_default_pin(scenario: Run) -> None:
    header = HEADER.replace('clinician_pin = "482916"\n', "")
    out = scenario(header + MORPHINE + steps(("0s", "program", {"pin": "0000"}),
                                             ("1s", "keys", {"keys": "1234#"})))
    assert not out.of("prescription_activated")
    assert all(e["outcome"] == "failed" for e in out.of("auth"))


def test_sr6_backoff_after_three_failures(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *[(f"{i}s", "program", {"pin": "999999"}) for i in range(3)],
        ("5s", "program"), ("20s", "program")))
    outcomes = [e["outcome"] for e in out.of("auth")]
    assert outcomes == ["failed", "failed", "failed", "locked_out", "ok"]


def test_sr6_pin_never_reaches_the_log(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(("0s", "program"),
                                             ("1s", "keys", {"keys": "482916#"}),
                                             ("2s", "program", {"pin": "777777"})))
    raw = out.db.read_bytes()
    for pin in (b"482916", b"777777"):
        assert pin not in raw
    for suffix in ("-wal", "-shm"):
        side = out.db.with_name(out.db.name + suffix)
        if side.exists():
            assert b"482916" not in side.read_bytes()
    assert "482916" not in str(out.events) and "777777" not in str(out.events)


# ---- SR-7 log ------------------------------------------------------------------------------
def test_sr7_events_table_refuses_update_and_delete(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(*START))
    conn = sqlite3.connect(out.db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET type = 'x' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM events WHERE seq = 1")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sr7_every_request_dose_rate_alarm_auth_and_state_change_is_logged(
        scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "press"), ("2m", "press"),
        ("5m", "signal", {"name": "battery_low", "value": True}), ("6m", "stop")))
    kinds = {e["type"] for e in out.events}
    assert {"pca_request", "dose_started", "dose_ended", "rate_changed", "alarm_raised",
            "auth", "state_changed", "prescription_activated"} <= kinds
    assert [e["type"] for e in export_rows(out.db)] == [e["type"] for e in out.events]


def test_sr7_chain_links_every_row(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(*START, ("1m", "press")))
    rows = sqlite3.connect(out.db).execute(
        "SELECT seq, prev_hash, hash FROM events ORDER BY seq").fetchall()
    assert rows[0][1] == "0" * 64
    for (_, _, h), (_, prev, _) in itertools.pairwise(rows):
        assert prev == h


# ---- SR-10 reservoir -----------------------------------------------------------------------
def test_sr10_reservoir_low_then_empty_stops_at_zero(scenario: Run) -> None:
    rx = NO_BASAL.replace("lockout_min = 10", "lockout_min = 6")
    out = scenario(HEADER + "[pump]\nsyringe_ml = 2.5\nlow_reservoir_ml = 1.0\n" + rx + steps(
        *START, ("1m", "press"), ("8m", "press"), ("15m", "press"), ("22m", "press")))
    assert out.of("alarm_raised", alarm="reservoir_low")[0]["priority"] == "medium"
    assert out.of("alarm_raised", alarm="reservoir_empty")[0]["priority"] == "high"
    assert out.summary["delivered_ml"]["total"] == pytest.approx(2.5)
    assert out.of("dose_ended")[-1]["completion"] == "interrupted"
    assert out.of("pca_request")[-1]["reason"] == "alarm"


def test_sr10_end_of_travel_switch_means_empty(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "end_of_travel", "value": True})))
    assert out.of("alarm_raised", alarm="reservoir_empty")
    assert out.summary["final_state"] == "alarm"


def test_sr10_new_syringe_clears_the_reservoir_alarm(scenario: Run) -> None:
    out = scenario(HEADER + "[pump]\nsyringe_ml = 0.5\n" + NO_BASAL + steps(
        *START, ("1m", "press"), ("3m", "new_syringe", {"syringe_ml": 30.0}),
        ("4m", "start")))
    assert out.of("alarm_cleared", alarm="reservoir_empty")
    assert out.summary["final_state"] == "running"


# ---- SR-11 (controller side): highest priority, silence never clears ----------------------
def test_sr11_silence_pauses_sound_but_not_the_alarm(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "occlusion", "value": True}), ("2m", "silence")))
    assert out.of("alarm_silenced", alarm="occlusion")[0]["priority"] == "high"
    assert "occlusion" in out.trace[-1]["alarms"]
    assert not out.of("alarm_cleared", alarm="occlusion")
