"""The respiratory monitor watcher (SR-13): timed readings in, alarm conditions out.

Pure: no clock, no I/O. Every time is pump time in integer nanoseconds, passed in.

- A watched value is *beyond* its limit when a reading shows it below `spo2_min` or
  `rr_min`, or above `etco2_max_mmhg` (the limit itself is inside). It stays beyond
  until a reading shows it inside again: no reading is not a recovery.
- Its alarm (`spo2_low`, `etco2_high`, `rr_low`) is *due* once it has been beyond for
  `delay_s` (from the first reading beyond it): at onset + delay_s exactly, not before.
- A watched value with no reading for `stale_s` (since its last reading, or since the
  watch began when it never had one) makes `monitor_lost` due: at last + stale_s. Until every
  watched value has been read since the watch began, `monitor_lost` is not yet due but not
  clear either: after a restart, a latched `monitor_lost` cannot be cleared before readings
  are back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pca.controller.alarms import AlarmSet
from pca.controller.ports import NS_PER_S, VITALS, RespiratoryMonitor, VitalsReading
from pca.therapy.monitoring import LIMIT_OF, MonitorSettings

ALARM_OF_VALUE = {"spo2": "spo2_low", "etco2_mmhg": "etco2_high", "rr": "rr_low"}
LIMIT_ALARMS = tuple(ALARM_OF_VALUE.values())
MONITOR_ALARMS = (*LIMIT_ALARMS, "monitor_lost")

# "due": raise (or keep) the alarm now; "beyond": the value is still beyond its limit but
# not for delay_s yet (an alarm already raised keeps its condition); "clear": inside.
Status = Literal["due", "beyond", "clear"]


@dataclass
class _Watched:
    key: str  # the reading's key (spo2, etco2_mmhg, rr)
    limit: int
    below: bool  # True: beyond when below the limit; False: when above it
    last_ns: int  # last reading of this value, or when the watch began
    onset_ns: int | None = None  # first reading of the current run beyond the limit
    seen: bool = False  # read at least once since the watch began

    def beyond(self, value: int) -> bool:
        return value < self.limit if self.below else value > self.limit


class RespiratoryWatch:
    """Watches the values a prescription's [monitor] table limits."""

    def __init__(self, settings: MonitorSettings, start_ns: int) -> None:
        self.settings = settings
        self.delay_ns = settings.delay_s * NS_PER_S
        self.stale_ns = settings.stale_s * NS_PER_S
        self.watched: dict[str, _Watched] = {}
        for name, limit in settings.limits().items():
            key, direction = LIMIT_OF[name]
            self.watched[key] = _Watched(key, limit, direction == "below", start_ns)

    def feed(self, reading: VitalsReading, t_ns: int) -> None:
        """One reading, measured at pump time `t_ns` (readings come oldest first)."""
        for key, value in reading.values.items():
            w = self.watched.get(key)
            if w is None or t_ns < w.last_ns:
                continue  # not watched, or older than what was already seen
            w.last_ns = t_ns
            w.seen = True
            if w.beyond(value):
                if w.onset_ns is None:
                    w.onset_ns = t_ns
            else:
                w.onset_ns = None

    def status(self, now_ns: int) -> dict[str, Status]:
        """Each monitor alarm's condition at `now_ns`."""
        out: dict[str, Status] = {}
        for key, alarm in ALARM_OF_VALUE.items():
            w = self.watched.get(key)
            if w is None or w.onset_ns is None:
                out[alarm] = "clear"
            else:
                out[alarm] = "due" if now_ns - w.onset_ns >= self.delay_ns else "beyond"
        if self.lost(now_ns):
            out["monitor_lost"] = "due"
        elif not all(w.seen for w in self.watched.values()):
            out["monitor_lost"] = "beyond"  # no evidence yet that the monitor is back
        else:
            out["monitor_lost"] = "clear"
        return out

    def lost(self, now_ns: int) -> list[str]:
        """The watched values with no reading for stale_s."""
        return [w.key for w in self.watched.values() if now_ns - w.last_ns >= self.stale_ns]

    def next_deadline_ns(self, now_ns: int) -> int | None:
        """The next time a status changes by the passing of time alone."""
        times: list[int] = []
        for w in self.watched.values():
            times.append(w.last_ns + self.stale_ns)
            if w.onset_ns is not None:
                times.append(w.onset_ns + self.delay_ns)
        future = [t for t in times if t > now_ns]
        return min(future) if future else None


class VitalsTrend:
    """The last values logged, so a `vitals` event is logged only when a value changes."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def changed(self, reading: VitalsReading) -> dict[str, int] | None:
        """The reading's values when any differs from the last logged, else None."""
        fresh = {k: int(v) for k, v in reading.values.items() if k in VITALS}
        if all(self.values.get(k) == v for k, v in fresh.items()):
            return None
        self.values.update(fresh)
        return {k: fresh[k] for k in VITALS if k in fresh}


def describe_values(values: Mapping[str, int]) -> str:
    """Short text for the display: "SpO2 85 EtCO2 40 RR 0"."""
    names = {"spo2": "SpO2", "etco2_mmhg": "EtCO2", "rr": "RR", "pulse": "HR"}
    return " ".join(f"{names[k]} {values[k]}" for k in VITALS if k in values)


class Emit(Protocol):
    def __call__(self, type_: str, actor: Any, **fields: Any) -> None: ...


class RespiratoryInterlock:
    """SR-13 in the control loop: each tick, the monitor's new readings go to the watcher
    (a reading that changes a value is logged as `vitals`), and the watcher's verdicts
    become alarm conditions through `condition` (which stops delivery for a high one).

    Only the prescription's [monitor] table turns the watch on; without one, readings
    are still logged (the trend is worth having) but nothing is watched.
    """

    def __init__(self, monitor: RespiratoryMonitor | None, alarms: AlarmSet, emit: Emit,
                 condition: Callable[[str, bool], None]) -> None:
        self.monitor = monitor
        self.alarms = alarms
        self.emit = emit
        self.condition = condition
        self.watch: RespiratoryWatch | None = None
        self.trend = VitalsTrend()
        self.last: VitalsReading | None = None  # the latest reading, whatever is watched

    def activate(self, settings: MonitorSettings | None, now_ns: int) -> None:
        """A prescription is in force (programmed, or recovered at boot). The watch starts
        now, from the values last read: one beyond its limit counts from now."""
        self.watch = None if settings is None else RespiratoryWatch(settings, now_ns)
        if self.watch is not None and self.last is not None:
            self.watch.feed(self.last, now_ns)
        self.alarms.monitor_required(settings is None or settings.required)
        if settings is None:
            for name in MONITOR_ALARMS:  # nothing watched: no condition is present
                if name in self.alarms.active:
                    self.condition(name, False)

    def tick(self, now_ns: int, pump_offset_ns: int) -> None:
        """`now_ns` is pump time; readings are monotonic, pump time is that + offset."""
        if self.monitor is not None:
            for reading in self.monitor.poll(now_ns - pump_offset_ns):
                self.last = reading
                changed = self.trend.changed(reading)
                if changed is not None:
                    self.emit("vitals", "system", **changed)
                if self.watch is not None:
                    self.watch.feed(reading, min(now_ns, reading.t_ns + pump_offset_ns))
        if self.watch is None:
            return
        for name, status in self.watch.status(now_ns).items():
            if status == "due":
                self.condition(name, True)
            elif status == "beyond":
                if name in self.alarms.active:  # raised: it stays present until inside
                    self.condition(name, True)
            else:
                self.condition(name, False)

    def pauses(self) -> bool:
        """A monitor alarm that stops delivery is active (PCA is denied: `monitor`)."""
        return any(name in self.alarms.active and self.alarms.priority_of(name) == "high"
                   for name in MONITOR_ALARMS)

    def next_wakeup_ns(self, now_ns: int) -> int | None:
        """Pump time at which a verdict changes by time alone (virtual time jumps to it)."""
        return None if self.watch is None else self.watch.next_deadline_ns(now_ns)
