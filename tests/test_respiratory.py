"""SR-13 watcher and settings: limits, delay, staleness at their boundaries (injected time)."""

from __future__ import annotations

import pytest

from pca.controller.ports import VitalsReading
from pca.controller.respiratory import RespiratoryWatch, VitalsTrend
from pca.therapy.drugs import DEFAULT_MONITOR_LIMITS, LibraryError, parse_monitor_limits
from pca.therapy.monitoring import MonitorFormatError, MonitorSettings, check_monitor, parse_monitor

S = 1_000_000_000
T0 = 500 * S


def settings(**kw: object) -> MonitorSettings:
    base: dict[str, object] = {"spo2_min": 90, "etco2_max_mmhg": 50, "rr_min": 8,
                               "delay_s": 30, "stale_s": 30, "required": True}
    base.update(kw)
    return parse_monitor(base)


def feed_every_second(watch: RespiratoryWatch, start_s: int, end_s: int, **values: int) -> None:
    for t in range(start_s, end_s + 1):
        watch.feed(VitalsReading(t * S, values), t * S)


def full(spo2: int = 97, etco2: int = 38, rr: int = 14) -> dict[str, int]:
    return {"spo2": spo2, "etco2_mmhg": etco2, "rr": rr}


@pytest.mark.parametrize(("key", "alarm", "bad"), [
    ("spo2", "spo2_low", 85), ("etco2_mmhg", "etco2_high", 58), ("rr", "rr_low", 0)])
def test_sr13_delay_boundary_one_second_short_does_not_alarm(key: str, alarm: str,
                                                             bad: int) -> None:
    watch = RespiratoryWatch(settings(), 0)
    feed_every_second(watch, 0, 99, **full())
    values = full() | {key: bad}
    feed_every_second(watch, 100, 129, **values)  # beyond from t=100 s
    assert watch.status(129 * S)[alarm] == "beyond"  # 29 s: not yet
    feed_every_second(watch, 130, 130, **values)
    assert watch.status(130 * S)[alarm] == "due"  # delay_s = 30 s exactly
    assert watch.status(130 * S)["monitor_lost"] == "clear"


def test_sr13_a_limit_value_itself_is_inside() -> None:
    watch = RespiratoryWatch(settings(delay_s=0), 0)
    watch.feed(VitalsReading(S, {"spo2": 90, "etco2_mmhg": 50, "rr": 8}), S)
    assert set(watch.status(S).values()) == {"clear"}


def test_sr13_a_reading_back_inside_restarts_the_delay() -> None:
    watch = RespiratoryWatch(settings(), 0)
    feed_every_second(watch, 0, 20, **full(spo2=85))
    feed_every_second(watch, 21, 21, **full())
    feed_every_second(watch, 22, 50, **full(spo2=85))
    assert watch.status(50 * S)["spo2_low"] == "beyond"  # 28 s since 22, not 50 s
    assert watch.next_deadline_ns(50 * S) == 52 * S


def test_sr13_no_reading_is_not_a_recovery() -> None:
    watch = RespiratoryWatch(settings(stale_s=120, delay_s=30), 0)
    feed_every_second(watch, 0, 10, **full(spo2=80))
    assert watch.status(40 * S)["spo2_low"] == "due"  # last known beyond: due at 30 s


def test_sr13_stale_boundary() -> None:
    watch = RespiratoryWatch(settings(stale_s=30), 0)
    feed_every_second(watch, 0, 100, **full())
    assert watch.status(129 * S)["monitor_lost"] == "clear"
    assert watch.next_deadline_ns(129 * S) == 130 * S
    assert watch.status(130 * S)["monitor_lost"] == "due"
    assert watch.lost(130 * S) == ["spo2", "etco2_mmhg", "rr"]
    feed_every_second(watch, 131, 131, **full())
    assert watch.status(131 * S)["monitor_lost"] == "clear"


def test_sr13_a_watched_value_never_measured_goes_stale_from_the_start() -> None:
    watch = RespiratoryWatch(settings(etco2_max_mmhg=None, rr_min=None), T0)
    feed_every_second(watch, 500, 540, pulse=70, rr=12)  # no SpO2 in any reading
    assert watch.status(T0 + 29 * S)["monitor_lost"] == "beyond"  # not due, not clear either
    assert watch.lost(T0 + 30 * S) == ["spo2"]


def test_sr13_unwatched_values_neither_alarm_nor_go_stale() -> None:
    watch = RespiratoryWatch(settings(etco2_max_mmhg=None, rr_min=None), 0)
    feed_every_second(watch, 0, 100, spo2=97, rr=0, etco2_mmhg=90)
    assert set(watch.status(100 * S).values()) == {"clear"}


def test_sr13_an_old_reading_arriving_late_is_ignored() -> None:
    watch = RespiratoryWatch(settings(), 0)
    feed_every_second(watch, 0, 10, **full(spo2=85))
    watch.feed(VitalsReading(5 * S, full()), 5 * S)
    assert watch.status(40 * S)["spo2_low"] == "due"


def test_vitals_trend_logs_only_changes() -> None:
    trend = VitalsTrend()
    assert trend.changed(VitalsReading(0, {"spo2": 97, "pulse": 70})) == {"spo2": 97,
                                                                           "pulse": 70}
    assert trend.changed(VitalsReading(S, {"spo2": 97, "pulse": 70})) is None
    assert trend.changed(VitalsReading(2 * S, {"pulse": 70})) is None
    assert trend.changed(VitalsReading(3 * S, {"spo2": 96})) == {"spo2": 96}


# ---- settings and the library's limits (SR-8 for SR-13) ------------------------------------
def test_sr13_settings_shape_errors_are_one_clear_line() -> None:
    with pytest.raises(MonitorFormatError, match=r"unknown field.*spo2_max"):
        parse_monitor({"spo2_max": 90})
    with pytest.raises(MonitorFormatError, match="sets no limit"):
        parse_monitor({"delay_s": 30})
    with pytest.raises(MonitorFormatError, match=r"spo2_min = 90\.5 must be a whole number"):
        parse_monitor({"spo2_min": 90.5})
    with pytest.raises(MonitorFormatError, match=r"required = 'yes' must be true or false"):
        parse_monitor({"spo2_min": 90, "required": "yes"})


def test_sr13_hard_limits_refuse_spo2_min_50() -> None:
    hard, soft = check_monitor(settings(spo2_min=50), DEFAULT_MONITOR_LIMITS)
    assert hard == ["monitor.spo2_min = 50 is below the hard minimum 85 of the drug "
                    "library's monitor limits"] and soft == []
    hard, _ = check_monitor(settings(delay_s=600), DEFAULT_MONITOR_LIMITS)
    assert any("delay_s = 600 is above the hard maximum 120" in h for h in hard)


def test_sr13_soft_limits_need_an_override() -> None:
    hard, soft = check_monitor(settings(spo2_min=86), DEFAULT_MONITOR_LIMITS)
    assert hard == [] and soft == ["monitor.spo2_min = 86 is below the soft minimum 88 of "
                                   "the drug library's monitor limits"]
    assert check_monitor(settings(), DEFAULT_MONITOR_LIMITS) == ([], [])


def test_library_monitor_limits_are_checked() -> None:
    good = {"spo2_min": [85, 88, 94, 98], "etco2_max_mmhg": [30, 45, 55, 65],
            "rr_min": [4, 6, 10, 15], "delay_s": [0, 10, 60, 120], "stale_s": [10, 15, 60, 120]}
    assert parse_monitor_limits(good, "lib")["rr_min"].hard_min == 4
    with pytest.raises(LibraryError, match=r"80\.\.100"):
        parse_monitor_limits(good | {"spo2_min": [50, 88, 94, 98]}, "lib")
    with pytest.raises(LibraryError, match="missing stale_s"):
        parse_monitor_limits({k: v for k, v in good.items() if k != "stale_s"}, "lib")


# ---- the interlock: watcher + alarm set + log, without a pump -----------------------------
def _interlock(required: bool = True):
    from pca.controller.alarms import AlarmSet
    from pca.controller.respiratory import RespiratoryInterlock
    from pca.hw.sim_monitor import SimulatedMonitor

    alarms = AlarmSet()
    logged: list[tuple[str, dict[str, object]]] = []

    def condition(name: str, present: bool) -> None:
        change = alarms.set_condition(name, present)
        if change:
            logged.append((change, {"alarm": name, "priority": alarms.priority_of(name)}))

    monitor = SimulatedMonitor()
    lock = RespiratoryInterlock(monitor, alarms, lambda t, a, **f: logged.append((t, f)),
                                condition)
    lock.activate(settings(required=required), 0)
    return lock, monitor, alarms, logged


def test_sr13_interlock_logs_vitals_on_change_only() -> None:
    lock, monitor, _alarms, logged = _interlock()
    monitor.set(0, full() | {"pulse": 70})
    for t in range(0, 600):
        lock.tick(t * S, 0)
    vitals = [f for kind, f in logged if kind == "vitals"]
    assert vitals == [{"spo2": 97, "etco2_mmhg": 38, "rr": 14, "pulse": 70}]
    monitor.set(600 * S, {"rr": 0})
    lock.tick(600 * S, 0)
    assert [f for kind, f in logged if kind == "vitals"][-1] == {
        "spo2": 97, "etco2_mmhg": 38, "rr": 0, "pulse": 70}


def test_sr13_interlock_monitor_lost_is_medium_and_clears_itself_when_optional() -> None:
    lock, monitor, alarms, logged = _interlock(required=False)
    monitor.set(0, full())
    lock.tick(0, 0)
    monitor.plug(S, False)
    lock.tick(31 * S, 0)
    assert ("raised", {"alarm": "monitor_lost", "priority": "medium"}) in logged
    assert not lock.pauses()
    monitor.plug(40 * S, True)
    lock.tick(40 * S, 0)
    assert "monitor_lost" not in alarms.active


def test_sr13_interlock_monitor_lost_latches_high_when_required() -> None:
    lock, monitor, alarms, logged = _interlock(required=True)
    monitor.set(0, full())
    lock.tick(0, 0)
    monitor.plug(S, False)
    lock.tick(31 * S, 0)
    assert ("raised", {"alarm": "monitor_lost", "priority": "high"}) in logged
    assert lock.pauses()
    monitor.plug(40 * S, True)
    lock.tick(40 * S, 0)
    assert alarms.active["monitor_lost"].condition is False  # latched: a clinician clears
    assert alarms.clear_resolved() == ["monitor_lost"]
