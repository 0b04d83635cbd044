"""SR-13 respiratory monitor interlock, end to end through `pca scenario` (SCENARIOS.md v2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.app.scenario import ScenarioError, load_scenario

Run = Callable[..., Outcome]
NORMAL = {"spo2": 97, "etco2_mmhg": 38, "rr": 14, "pulse": 72}


def monitor(**kw: object) -> str:
    table = {"spo2_min": 90, "etco2_max_mmhg": 50, "rr_min": 8, "delay_s": 30, "stale_s": 30,
             "required": True} | kw
    lines = ["[monitor]"]
    for key, value in table.items():
        if value is not None:
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else value}")
    return "\n".join(lines) + "\n"


def base(**kw: object) -> str:
    return HEADER + MORPHINE + monitor(**kw)


START = (("0s", "vitals", NORMAL), ("0s", "program"), ("5s", "start"))


def raised(out: Outcome, alarm: str) -> list[dict[str, object]]:
    return out.of("alarm_raised", alarm=alarm)


def state_at(out: Outcome, t_s: float) -> str:
    """The pump's state just after everything at t_s happened (from the log)."""
    state = "off"
    for e in out.of("state_changed"):
        if e["t_s"] <= t_s:
            state = str(e["to"])
    return state


# ---- limits and delay ---------------------------------------------------------------------
def test_sr13_delay_boundary_one_second_short_does_not_pause(scenario: Run) -> None:
    out = scenario(base() + steps(*START, ("60s", "vitals", {"spo2": 85}),
                                  ("89s", "vitals", {"spo2": 95}), ("3m", "press")))
    assert raised(out, "spo2_low") == []
    assert state_at(out, 179) == "running"
    assert out.of("pca_request")[0]["outcome"] == "granted"


def test_sr13_delay_boundary_delay_s_pauses_exactly_then(scenario: Run) -> None:
    out = scenario(base() + steps(*START, ("60s", "vitals", {"spo2": 85}),
                                  ("2m", "vitals", {"spo2": 95})))
    [alarm] = raised(out, "spo2_low")
    assert alarm["t_s"] == 90.0 and alarm["priority"] == "high"
    stopped = out.of("rate_changed", mode="stopped")
    assert stopped and stopped[-1]["t_s"] == 90.0  # basal stops within the tick
    assert state_at(out, 90) == "alarm"


@pytest.mark.parametrize(("values", "alarm"), [
    ({"spo2": 89}, "spo2_low"), ({"etco2_mmhg": 51}, "etco2_high"), ({"rr": 0}, "rr_low"),
    ({"rr": 7}, "rr_low")])
def test_sr13_each_limit_pauses_after_its_delay(scenario: Run, values: dict[str, int],
                                                alarm: str) -> None:
    out = scenario(base(delay_s=20) + steps(*START, ("1m", "vitals", values)))
    assert [a["t_s"] for a in raised(out, alarm)] == [80.0]
    assert state_at(out, 80) == "alarm"


def test_sr13_values_at_their_limits_do_not_pause(scenario: Run) -> None:
    out = scenario(base(delay_s=0) + steps(
        *START, ("1m", "vitals", {"spo2": 90, "etco2_mmhg": 50, "rr": 8})), trace_interval_s=60)
    assert out.of("alarm_raised") == []


def test_sr13_a_pause_stops_a_running_pca_dose_and_denies_pca_with_reason_monitor(
        scenario: Run) -> None:
    out = scenario(base(delay_s=10) + steps(
        *START, ("1m", "vitals", {"rr": 0}), ("1m5s", "press"), ("1m30s", "press")))
    dose_end = out.of("dose_ended", source="pca")
    assert dose_end[0]["t_s"] == 70.0 and dose_end[0]["completion"] == "interrupted"
    assert out.of("pca_request")[1]["outcome"] == "denied"
    assert out.of("pca_request")[1]["reason"] == "monitor"
    assert out.summary["pca_denied"]["monitor"] == 1


def test_sr13_clear_refused_while_still_out_of_range_then_clear_and_start(
        scenario: Run) -> None:
    out = scenario(base() + steps(
        *START, ("1m", "vitals", {"spo2": 84}), ("2m", "clear_alarm"), ("2m10s", "start"),
        ("3m", "vitals", {"spo2": 96}), ("3m1s", "clear_alarm"), ("3m2s", "start")))
    refused = out.of("action_rejected", action="clear_alarm")
    assert refused and "still present: spo2_low" in refused[0]["reason"]
    assert out.of("action_rejected", action="start")  # still in alarm at 2m10s
    assert state_at(out, 179) == "alarm"
    assert out.of("alarm_cleared", alarm="spo2_low")[0]["t_s"] == 181.0
    assert state_at(out, 182) == "running"


def test_sr13_back_inside_alone_never_resumes(scenario: Run) -> None:
    out = scenario(base() + steps(*START, ("1m", "vitals", {"spo2": 84}),
                                  ("3m", "vitals", {"spo2": 97})), trace_interval_s=60)
    assert state_at(out, 3600) == "alarm"
    assert out.of("alarm_cleared", alarm="spo2_low") == []


# ---- stale readings and `required` -------------------------------------------------------------
def test_sr13_stale_boundary(scenario: Run) -> None:
    # Readings once a second from t=0; unplugged at 100.5 s: the last one is at 100 s.
    out = scenario(base(stale_s=30) + steps(*START, ("100.5s", "signal",
                                                     {"name": "monitor", "value": False})))
    assert [a["t_s"] for a in raised(out, "monitor_lost")] == [130.0]
    assert state_at(out, 129.9) == "running" and state_at(out, 130) == "alarm"


def test_sr13_required_monitor_lost_is_high_and_pauses(scenario: Run) -> None:
    out = scenario(base(required=True) + steps(
        *START, ("1m", "signal", {"name": "monitor", "value": False}), ("2m", "press"),
        ("3m", "signal", {"name": "monitor", "value": True}), ("3m5s", "clear_alarm"),
        ("3m6s", "start"), ("3m7s", "press")))
    [lost] = raised(out, "monitor_lost")
    assert lost["priority"] == "high" and lost["t_s"] == 90.0
    assert state_at(out, 91) == "alarm"
    assert [r.get("reason") for r in out.of("pca_request")] == ["monitor", None]
    assert state_at(out, 186) == "running"


def test_sr13_optional_monitor_lost_is_medium_and_delivery_goes_on(scenario: Run) -> None:
    out = scenario(base(required=False) + steps(
        *START, ("1m", "signal", {"name": "monitor", "value": False}), ("2m", "press"),
        ("3m", "signal", {"name": "monitor", "value": True})))
    [lost] = raised(out, "monitor_lost")
    assert lost["priority"] == "medium"
    assert state_at(out, 119) in ("running", "pca_dose")
    assert out.of("pca_request")[0]["outcome"] == "granted"
    cleared = out.of("alarm_cleared", alarm="monitor_lost")
    assert cleared and cleared[0]["t_s"] == 180.0  # clears itself when readings return


def test_sr13_a_watched_value_never_given_is_stale(scenario: Run) -> None:
    out = scenario(base(etco2_max_mmhg=None, rr_min=None) + steps(
        ("0s", "vitals", {"rr": 12, "pulse": 70}), ("0s", "program"), ("5s", "start")))
    assert [a["t_s"] for a in raised(out, "monitor_lost")] == [30.0]


def test_sr13_stopped_pump_alarms_too_and_cannot_start(scenario: Run) -> None:
    out = scenario(base() + steps(("0s", "vitals", {"spo2": 80}), ("0s", "program"),
                                  ("40s", "start")))
    assert raised(out, "spo2_low")[0]["t_s"] == 30.0
    assert out.of("action_rejected", action="start")


def test_sr13_a_latched_pause_survives_a_restart(scenario: Run) -> None:
    # 10 s after the restart: the delay has not run again, the value is still beyond.
    out = scenario(base() + steps(*START, ("1m", "vitals", {"spo2": 84}), ("2m", "crash"),
                                  ("2m30s", "restart"), ("2m40s", "clear_alarm")))
    assert state_at(out, 150) == "alarm"
    assert "still present: spo2_low" in out.of("action_rejected",
                                               action="clear_alarm")[0]["reason"]


# ---- vitals events ----------------------------------------------------------------------------
def test_sr13_vitals_are_logged_on_change_not_every_second(scenario: Run) -> None:
    out = scenario(base() + steps(*START, ("10m", "vitals", {"pulse": 80}),
                                  ("20m", "vitals", {"pulse": 80}),
                                  ("30m", "vitals", {"spo2": 95})), trace_interval_s=60)
    vitals = out.of("vitals")
    assert [(v["t_s"], {k: v[k] for k in ("spo2", "etco2_mmhg", "rr", "pulse")})
            for v in vitals] == [
        (0.0, NORMAL), (600.0, NORMAL | {"pulse": 80}),
        (1800.0, NORMAL | {"pulse": 80, "spo2": 95})]


def test_sr13_monitor_settings_are_logged_with_the_prescription(scenario: Run) -> None:
    out = scenario(base(spo2_min=92) + steps(("0s", "program")))
    activated = out.of("prescription_activated")[0]
    assert activated["monitor"]["spo2_min"] == 92 and activated["monitor"]["required"] is True


# ---- programming (SR-8 for the monitor settings) -----------------------------------------------
def test_sr13_hard_limit_refuses_spo2_min_50(scenario: Run) -> None:
    out = scenario(base(spo2_min=50) + steps(("0s", "program"), ("5s", "start")))
    [rejected] = out.of("prescription_rejected")
    assert any("monitor.spo2_min = 50 is below the hard minimum 85" in e
               for e in rejected["errors"])
    assert state_at(out, 10) == "unprogrammed"


def test_sr13_soft_limit_needs_an_explicit_override(scenario: Run) -> None:
    out = scenario(base(spo2_min=86) + steps(("0s", "program"),
                                             ("1s", "program", {"confirm_soft": True})))
    assert "needs an explicit override" in out.of("prescription_rejected")[0]["errors"][0]
    activated = out.of("prescription_activated")[0]
    assert any("spo2_min = 86" in o for o in activated["overrides"])


@pytest.mark.parametrize(("text", "message"), [
    ('[[step]]\nat = "0s"\ndo = "vitals"\n', "give at least one of spo2"),
    ('[[step]]\nat = "0s"\ndo = "vitals"\nspo2 = 101\n', "spo2 = 101 must be a whole number"),
    ('[[step]]\nat = "0s"\ndo = "vitals"\nrr = 1.5\n', "rr = 1.5 must be a whole number"),
    ('[[step]]\nat = "0s"\ndo = "vitals"\nbp = 120\n', "unknown field bp"),
    ('[[step]]\nat = "0s"\ndo = "signal"\nname = "monitor"\nvalue = 1\n', "true or false"),
    ("[monitor]\nspo2_max = 90\n", "unknown field(s) spo2_max"),
    ("[monitor]\ndelay_s = 30\n", "sets no limit"),
])
def test_sr13_bad_monitor_input_is_one_clear_scenario_error(tmp_path: Path, text: str,
                                                            message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEADER + MORPHINE + text)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_sr13_monitor_without_prescription_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(HEADER + "[monitor]\nspo2_min = 90\n")
    with pytest.raises(ScenarioError, match=r"\[monitor\] comes with a \[prescription\]"):
        load_scenario(path)



def test_sr13_a_latched_monitor_lost_cannot_be_cleared_after_a_restart_until_readings_return(
        scenario: Run) -> None:
    out = scenario(base(required=True) + steps(
        *START, ("1m", "signal", {"name": "monitor", "value": False}), ("2m", "crash"),
        ("2m30s", "restart"), ("2m35s", "clear_alarm"),
        ("3m", "signal", {"name": "monitor", "value": True}), ("3m5s", "clear_alarm"),
        ("3m6s", "start")))
    refused = out.of("action_rejected", action="clear_alarm")
    assert refused and "still present: monitor_lost" in refused[0]["reason"]
    assert state_at(out, 179) == "alarm"
    assert state_at(out, 186) == "running"
