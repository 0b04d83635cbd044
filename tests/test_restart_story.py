"""Restarts keep the story straight (issue 14): every alarm the log leaves open at a
restart is active again after it or ends with an `alarm_cleared` saying why, and a clock
that reads earlier than the log at boot is said so on `restarted`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pca_testkit import HEADER, MORPHINE, Outcome, steps

Run = Callable[..., Outcome]
START = (("0s", "program"), ("5s", "start"))


def open_in_log(events: list[dict[str, Any]]) -> set[str]:
    """The alarms the log says are active at its end (raised and not cleared since)."""
    active: set[str] = set()
    for e in events:
        if e["type"] == "alarm_raised":
            active.add(e["alarm"])
        elif e["type"] == "alarm_cleared":
            active.discard(e["alarm"])
    return active


def active_at_end(out: Outcome) -> set[str]:
    """The alarms the pump itself has active at the end (the trace's last row)."""
    return {a for a in out.trace[-1]["alarms"].split(";") if a}


def test_sr5_an_alarm_whose_line_went_idle_while_off_ends_at_restart(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "battery_low", "value": True}), ("2m", "crash"),
        ("3m", "signal", {"name": "battery_low", "value": False}), ("4m", "restart")))
    assert out.at(90)["alarms"] == "battery_low"
    cleared = out.of("alarm_cleared", alarm="battery_low")
    assert [e["reason"] for e in cleared] == ["condition_gone_at_restart"]
    assert cleared[0]["seq"] > out.of("restarted")[0]["seq"]
    assert open_in_log(out.events) == active_at_end(out) == {"delivery_interrupted"}


def test_sr5_an_alarm_whose_line_is_still_active_is_raised_again(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        *START, ("1m", "signal", {"name": "battery_low", "value": True}), ("2m", "crash"),
        ("4m", "restart")))
    restarted = out.of("restarted")[0]["seq"]
    after = [e["type"] for e in out.events
             if e.get("alarm") == "battery_low" and e["seq"] > restarted]
    assert after[-1] == "alarm_raised"
    assert open_in_log(out.events) == active_at_end(out) == {"battery_low",
                                                             "delivery_interrupted"}


def test_sr5_the_log_and_the_pump_agree_on_alarms_across_every_kind_of_restart(
        scenario: Run) -> None:
    low_syringe = "[pump]\nsyringe_ml = 1.8\n"  # reservoir_low after the press
    out = scenario(HEADER + low_syringe + MORPHINE + steps(
        *START, ("10s", "press"), ("1m", "signal", {"name": "battery_low", "value": True}),
        ("2m", "signal", {"name": "door_open", "value": True}),
        ("2m10s", "signal", {"name": "door_open", "value": False}), ("3m", "crash"),
        ("3m5s", "signal", {"name": "battery_low", "value": False}), ("4m", "restart"),
        ("5m", "restart")))
    assert "reservoir_low" in open_in_log(out.events)
    assert open_in_log(out.events) == active_at_end(out)


def test_sr5_a_latched_alarm_survives_a_new_patient_and_a_restart(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(
        ("0s", "signal", {"name": "door_open", "value": True}),
        ("5s", "signal", {"name": "door_open", "value": False}),
        ("10s", "new_patient"), ("1m", "restart")))
    assert "door_open" in active_at_end(out)
    assert open_in_log(out.events) == active_at_end(out)


def test_sr5_a_clock_behind_the_log_at_boot_is_said_on_restarted(scenario: Run) -> None:
    out = scenario(HEADER + "[pump]\nrtc = true\n" + MORPHINE + steps(
        *START, ("3m", "crash"), ("4m", "clock_step", {"seconds": -7200}), ("30m", "restart")))
    restarted = out.of("restarted")[0]
    assert restarted["outage_s"] == 0
    assert 7200 - 30 * 60 <= restarted["clock_behind_s"] <= 7200


def test_sr5_a_clock_ahead_of_the_log_adds_nothing_to_restarted(scenario: Run) -> None:
    out = scenario(HEADER + MORPHINE + steps(*START, ("3m", "crash"), ("30m", "restart")))
    assert "clock_behind_s" not in out.of("restarted")[0]
