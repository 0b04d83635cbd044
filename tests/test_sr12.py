"""SR-12 programmed intermittent bolus, end to end through `pca scenario` (and SR-8 for routes).

Each test breaks if its clause is broken in the controller; times are exact (virtual time).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pca_testkit import EPIDURAL, HEADER, PUMP_EPIDURAL, Outcome, steps

Run = Callable[..., Outcome]

START = (("0s", "program", {"confirm_soft": True}), ("5s", "start"))


def run(scenario: Run, *items: tuple, rx: str = EPIDURAL, end: str = "2h") -> Outcome:
    return scenario(HEADER + f'end = "{end}"\n' + PUMP_EPIDURAL + rx + steps(*START, *items))


def pib_starts(out: Outcome) -> list[float]:
    return [e["t_s"] for e in out.of("dose_started", source="intermittent")]


def test_sr12_schedule_first_after_first_min_then_every_interval(scenario: Run) -> None:
    out = run(scenario)
    assert pib_starts(out) == [905.0, 2705.0, 4505.0, 6305.0]
    assert out.summary["pib_given"] == 4
    assert out.summary["delivered_ml"]["intermittent"] == pytest.approx(20.0, abs=1e-4)
    ends = out.of("dose_ended", source="intermittent")
    assert [e["completion"] for e in ends] == ["complete"] * 4


def test_sr12_pib_counts_toward_the_dose_limit(scenario: Run) -> None:
    # 12 mL per hour: after 2 PIBs (10 mL) in the window, a 5 mL PCA would exceed it.
    rx = EPIDURAL.replace("dose_limit = 25.0", "dose_limit = 12.0")
    out = run(scenario, ("56m", "press"), rx=rx, end="60m")
    assert pib_starts(out) == [905.0, 2705.0]
    assert out.of("pca_request")[0]["reason"] == "dose_limit"


def test_sr12_pib_starts_a_pca_lockout(scenario: Run) -> None:
    out = run(scenario, ("24m", "press"), ("25m10s", "press"), end="30m")
    # PIB at 15m05s; lockout 10 min ends at 25m05s (inclusive)
    assert [e.get("reason") for e in out.of("pca_request")] == ["lockout", None]


def test_sr12_pib_due_during_a_dose_waits_and_logs_the_delay(scenario: Run) -> None:
    out = run(scenario, ("14m", "press"), end="25m")  # PCA 14m00s..14m30s? no: 150 s
    pca = out.of("dose_started", source="pca")[0]
    pib = out.of("dose_started", source="intermittent")[0]
    assert pca["t_s"] == 840.0
    assert pib["t_s"] == 990.0  # the PCA ends at 14m + 150 s
    assert pib["delay_s"] == pytest.approx(85.0)  # due at 905 s
    assert "delay_s" not in out.of("dose_started", source="pca")[0]


def test_sr12_never_two_starts_closer_than_the_interval_after_a_delay(scenario: Run) -> None:
    out = run(scenario, ("14m", "press"), end="50m")
    first, second = pib_starts(out)
    assert second - first == 1800.0  # from the delayed start, not from the due time


def test_sr12_pib_is_cut_at_the_dose_limit(scenario: Run) -> None:
    # 10 mL per hour: PCA 5 mL at 1 min, then the 8 mL PIB at 15m05s has 5 mL of room.
    rx = EPIDURAL.replace("dose_limit = 25.0", "dose_limit = 10.0").replace(
        "pib_dose = 5.0", "pib_dose = 8.0")
    out = run(scenario, ("1m", "press"), rx=rx, end="20m")
    end = out.of("dose_ended", source="intermittent")[0]
    assert end["completion"] == "truncated"
    assert end["delivered_ml"] == pytest.approx(5.0, abs=1e-4)
    assert "dose_limit_reached" in out.summary["alarms"]


def test_sr12_pib_skipped_when_the_window_has_no_room(scenario: Run) -> None:
    rx = EPIDURAL.replace("dose_limit = 25.0", "dose_limit = 10.0").replace(
        "max_pca_per_h = 3", "max_pca_per_h = 4")
    out = run(scenario, ("1m", "press"), ("11m", "press"), rx=rx, end="20m")
    skips = out.of("pib_skipped")
    assert [s["reason"] for s in skips] == ["dose_limit"]
    assert skips[0]["t_s"] == 905.0
    assert out.summary["pib_skipped"] == 1 and out.summary["pib_given"] == 0


def test_sr12_pib_due_while_stopped_is_skipped_and_not_made_up(scenario: Run) -> None:
    out = run(scenario, ("10m", "stop"), ("20m", "start"), end="40m")
    skips = out.of("pib_skipped")
    assert [(s["t_s"], s["reason"]) for s in skips] == [(905.0, "not_running")]
    # after start at 20 min, the first is 15 min later, never sooner
    assert pib_starts(out) == [2100.0]


def test_sr12_pib_due_in_alarm_is_skipped(scenario: Run) -> None:
    out = run(scenario, ("10m", "signal", {"name": "occlusion", "value": True}), end="20m")
    assert [s["reason"] for s in out.of("pib_skipped")] == ["alarm"]
    assert pib_starts(out) == []


def test_sr12_stop_start_never_brings_the_next_pib_closer(scenario: Run) -> None:
    # PIB at 15m05s; stop and start at 16m: start + 15 min would be 31m, but the interval
    # from the last start ends at 45m05s.
    out = run(scenario, ("16m", "stop"), ("16m", "start"), end="50m")
    assert pib_starts(out) == [905.0, 2705.0]


def test_sr12_crash_and_restart_keep_the_interval(scenario: Run) -> None:
    # With a battery-backed RTC the outage counts, so pump time is virtual time here.
    rtc = PUMP_EPIDURAL + "rtc = true\n"
    out = scenario(HEADER + 'end = "50m"\n' + rtc + EPIDURAL + steps(
        *START, ("16m", "crash"), ("17m", "restart"), ("18m", "start")))
    assert pib_starts(out) == [905.0, 2705.0]
    assert out.of("restarted")


def test_sr12_restart_without_rtc_keeps_the_interval_in_pump_time(scenario: Run) -> None:
    # Without an RTC the 1 min outage counts as zero: the next PIB comes an interval of pump
    # time after the last, which is later in virtual time, never sooner.
    out = run(scenario, ("16m", "crash"), ("17m", "restart"), ("18m", "start"), end="50m")
    first, second = pib_starts(out)
    assert second - first >= 1800.0 + 60.0


def test_sr12_reprogramming_the_same_patient_keeps_the_interval(scenario: Run) -> None:
    out = run(scenario, ("16m", "stop"), ("16m", "program", {"confirm_soft": True}),
              ("16m", "start"), end="50m")
    assert pib_starts(out) == [905.0, 2705.0]


def test_sr12_a_new_syringe_keeps_the_interval(scenario: Run) -> None:
    out = run(scenario, ("16m", "stop"), ("16m", "new_syringe", {"syringe_ml": 100.0}),
              ("17m", "start"), end="50m")
    assert pib_starts(out) == [905.0, 2705.0]


def test_sr12_reset_on_pca_pushes_the_next_pib(scenario: Run) -> None:
    rx = EPIDURAL + "pib_reset_on_pca = true\n"
    out = run(scenario, ("26m", "press"), rx=rx, end="60m")
    assert pib_starts(out) == [905.0, 3360.0]  # PCA at 26m pushes the next to 56m
    plain = run(scenario, ("26m", "press"), end="60m")
    assert pib_starts(plain) == [905.0, 2705.0]


def test_sr12_trace_and_summary_carry_the_intermittent_volume(scenario: Run) -> None:
    out = run(scenario, end="20m")
    assert list(out.trace[0])[-1] == "intermittent_ml"
    last = out.trace[-1]
    assert float(last["intermittent_ml"]) == pytest.approx(5.0, abs=1e-4)
    assert float(last["delivered_ml"]) == pytest.approx(5.0, abs=1e-4)
    assert out.summary["delivered_ml"]["total"] == pytest.approx(5.0, abs=1e-4)


# ---- SR-8 for routes and PIBs: refused with the field, value and limit named --------------
def rejected(out: Outcome) -> str:
    events = out.of("prescription_rejected")
    assert events and not out.of("prescription_activated")
    return " ".join(events[0]["errors"])


def test_sr8_wrong_route_is_refused(scenario: Run) -> None:
    out = run(scenario, rx=EPIDURAL.replace('route = "epidural"', 'route = "iv"'), end="1m")
    assert "route = 'iv'" in rejected(out) and "epidural" in rejected(out)


def test_sr8_unknown_route_is_a_scenario_error(scenario: Run) -> None:
    from pca.app.scenario import ScenarioError
    with pytest.raises(ScenarioError, match="route"):
        run(scenario, rx=EPIDURAL.replace('"epidural"', '"intrathecal"'), end="1m")


def test_sr8_pib_where_the_entry_allows_none_is_refused(scenario: Run) -> None:
    rx = """
[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
pca_dose = 1.0
lockout_min = 10
dose_limit = 6.0
dose_limit_window_h = 4
pib_dose = 1.0
pib_interval_min = 60
"""
    assert "allows no programmed intermittent bolus" in rejected(run(scenario, rx=rx, end="1m"))


def test_sr8_pib_above_the_dose_limit_is_refused(scenario: Run) -> None:
    rx = EPIDURAL.replace("dose_limit = 25.0", "dose_limit = 16.0").replace(
        "pib_dose = 5.0", "pib_dose = 18.0")
    assert "pib_dose = 18 ml is above dose_limit = 16 ml" in rejected(run(scenario, rx=rx,
                                                                            end="1m"))


def test_sr8_pib_interval_shorter_than_its_delivery_is_refused(scenario: Run) -> None:
    slow = PUMP_EPIDURAL.replace("bolus_rate_ml_h = 120.0", "bolus_rate_ml_h = 12.0")
    out = scenario(HEADER + 'end = "1m"\n' + slow + EPIDURAL.replace(
        "pib_interval_min = 30", "pib_interval_min = 20") + steps(*START))
    assert "pib_interval_min = 20 is not longer than the 25 min" in rejected(out)


def test_sr8_pib_interval_outside_the_library_is_refused(scenario: Run) -> None:
    out = run(scenario, rx=EPIDURAL.replace("pib_interval_min = 30", "pib_interval_min = 120"),
              end="1m")
    assert "pib_interval_min = 120 is above the hard maximum 90" in rejected(out)


def test_sr8_pib_without_interval_is_a_scenario_error(scenario: Run) -> None:
    from pca.app.scenario import ScenarioError
    with pytest.raises(ScenarioError, match="pib_interval_min"):
        run(scenario, rx=EPIDURAL.replace("pib_interval_min = 30\n", ""), end="1m")


def test_a_new_syringe_may_be_as_large_as_the_pump_takes(scenario: Run) -> None:
    # [pump] syringe_ml and new_syringe share one physical bound (a 250 mL cassette): a
    # long epidural changes cassettes of the size it started with.
    big = PUMP_EPIDURAL.replace("syringe_ml = 100.0", "syringe_ml = 250.0")
    out = scenario(HEADER + 'end = "20m"\n' + big + EPIDURAL + steps(
        *START, ("1m", "stop"), ("1m", "new_syringe", {"syringe_ml": 250.0})))
    assert [e["syringe_ml"] for e in out.of("syringe_changed")] == [250.0, 250.0]
    assert not out.of("action_rejected", action="new_syringe")


def test_sr12_pharmacy_file_with_a_pieb_is_checked_and_shown(tmp_path, capsys) -> None:
    from pathlib import Path

    from pca.app.cli import main
    sample = Path(__file__).resolve().parents[1] / "pca/examples/pharmacy/labour_pieb.pca-rx.toml"
    assert main(["rx", "check", str(sample)]) == 0
    shown = capsys.readouterr().out
    assert "route epidural" in shown and "PIB (SR-12): every 60 min" in shown
    assert "pib_dose                    6.25        10" in shown
    for old, new, words in (('route = "epidural"', 'route = "iv"', "no iv entry"),
                            ("pib_dose = 10.0", "pib_dose = 30.0", "above dose_limit"),
                            ("pib_interval_min = 60", "pib_interval_min = 4", "15 to 480")):
        bad = tmp_path / "bad.pca-rx.toml"
        bad.write_text(sample.read_text().replace(old, new))
        assert main(["rx", "check", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
