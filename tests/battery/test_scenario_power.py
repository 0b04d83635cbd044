"""The scenario contract's `power` action: a pack that drains, the board's lines, a clean
stop at depletion and a boot from the log when mains returns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.app.scenario import ScenarioError, load_scenario

END = 'end = "1h"\n'


def test_power_drains_raises_low_then_depleted_and_stops_cleanly(
        scenario: Callable[..., Outcome]) -> None:
    out = scenario(HEADER + END + MORPHINE + steps(
        ("0s", "program"), ("1s", "start"),
        ("1m", "power", {"soc_pct": 12, "load_w": 2.0}),  # 10 Wh: 1 % every 3 minutes
        ("45m", "power", {"mains": True})))
    status = out.of("battery_status")
    assert status[0]["soc_pct"] == 12 and status[0]["mains"] is False
    low = out.of("alarm_raised", alarm="battery_low")[0]
    depleted = out.of("alarm_raised", alarm="battery_depleted")[0]
    # 12 % -> 10 % at 2 W from 10 Wh: 0.2 Wh = 6 min; 12 % -> 3 %: 27 min.
    assert low["t_s"] == pytest.approx(60 + 6 * 60, abs=1)
    assert depleted["t_s"] == pytest.approx(60 + 27 * 60, abs=1)
    down = out.of("power_down")
    assert len(down) == 1 and down[0]["reason"] == "battery_depleted line"
    assert down[0]["t_s"] == pytest.approx(depleted["t_s"], abs=0.001)
    after = [e for e in out.events if e["seq"] > down[0]["seq"]]
    assert after[0]["type"] == "restarted"  # nothing between the power-down and the boot
    assert after[0]["t_s"] == pytest.approx(45 * 60, abs=0.001)
    assert out.at(30 * 60)["state"] == "off"
    assert out.summary["final_state"] != "off"
    assert out.of("battery_status")[-1]["mains"] is True
    # The motor stopped with the alarm: no delivery recorded after it.
    assert not [e for e in out.events if e["type"] == "delivery"
                and depleted["t_s"] < e["t_s"] < 45 * 60]


def test_battery_short_warning_in_a_scenario(scenario: Callable[..., Outcome]) -> None:
    # 0.5 mL/h from the default syringe lasts far longer than 10 Wh at 1 W (10 h).
    out = scenario(HEADER + END + MORPHINE + steps(
        ("0s", "program"), ("1s", "start"), ("2s", "power", {"mains": False}),
        ("30m", "power", {"mains": True})))
    raised = out.of("alarm_raised", alarm="battery_short")
    assert raised and raised[0]["priority"] == "low" and raised[0]["t_s"] == pytest.approx(2)
    assert out.of("alarm_cleared", alarm="battery_short")[0]["t_s"] == pytest.approx(1800)


@pytest.mark.parametrize("fields, named", [
    ({}, "give at least one of"),
    ({"soc_pct": 101}, "soc_pct"),
    ({"load_w": 0}, "load_w"),
    ({"mains": "yes"}, "mains"),
    ({"volts": 4}, "unknown field"),
])
def test_bad_power_steps_are_one_clear_error(tmp_path, fields: dict, named: str) -> None:  # type: ignore[no-untyped-def,type-arg]
    path = tmp_path / "s.toml"
    path.write_text(HEADER + END + MORPHINE + steps(("1m", "power", fields)))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert named in str(err.value) and "\n" not in str(err.value)
