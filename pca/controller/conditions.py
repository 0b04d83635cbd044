"""Alarm conditions: sensors, the syringe and the log raise and clear alarms, logged as they go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pca.controller.alarms import SENSOR_ALARM, Alarm, AlarmSet
from pca.controller.journal import Journal
from pca.controller.ports import Actor


class Gauge(Protocol):
    """How much is left in the syringe (the delivery engine)."""

    def unrecorded(self, now: int | None = None) -> int: ...

    def reservoir_left(self, unrecorded: int) -> int: ...


class Conditions:
    """Turns what is true now into raised and cleared alarms. A high-priority condition
    calls `on_high` every time it is present (SR-4: stop within this tick)."""

    def __init__(self, alarms: AlarmSet, journal: Journal, gauge: Gauge, low_steps: int,
                 on_high: Callable[[], None]) -> None:
        self.alarms = alarms
        self.journal = journal
        self.gauge = gauge
        self.low_steps = low_steps
        self.on_high = on_high
        self.sensors: dict[str, bool] = {}

    def condition(self, name: str, present: bool) -> None:
        change = self.alarms.set_condition(name, present)
        priority = self.alarms.priority_of(name)
        if change == "raised":
            self.journal.emit("alarm_raised", "system", alarm=name, priority=priority)
        elif change == "cleared":
            self.journal.emit("alarm_cleared", "system", alarm=name, priority=priority)
        if present and priority == "high":
            self.on_high()

    def raise_event(self, name: str) -> None:
        """An alarm for something that happened (not a standing condition): it is raised
        and stays until cleared."""
        self.condition(name, True)
        self.alarms.active[name].condition = False

    def sensor(self, name: str, active: bool) -> None:
        if name not in SENSOR_ALARM or self.sensors.get(name) == active:
            return
        self.sensors[name] = active
        if name == "end_of_travel":
            self.reservoir(self.gauge.unrecorded())
        else:
            self.condition(SENSOR_ALARM[name], active)

    def reservoir(self, unrecorded: int) -> None:
        """Low and empty syringe, counting steps made but not yet recorded."""
        left = self.gauge.reservoir_left(unrecorded)
        self.condition("reservoir_low", left <= self.low_steps)
        self.condition("reservoir_empty", left <= 0 or self.sensors.get("end_of_travel", False))

    def log_failed(self, why: str) -> None:
        """SR-7: raised once, with what to do, when the log cannot be written."""
        if "log_failure" not in self.alarms.active:
            self.alarms.set_condition("log_failure", True)
            self.journal.emit(
                "alarm_raised", "system", alarm="log_failure", priority="high",
                detail=f"{why}. Delivery is stopped. Events are kept in memory and "
                       "written when the log works again; free space or replace the "
                       "storage, then clear the alarm (PIN)")

    def log_restored(self) -> None:
        self.alarms.set_condition("log_failure", False)  # latched: a clinician clears it

    def clear_resolved(self, actor: Actor) -> None:
        """Clinician clear: every alarm whose condition has gone."""
        for name in self.alarms.clear_resolved():
            self.journal.emit("alarm_cleared", actor, alarm=name,
                              priority=self.alarms.priority_of(name))

    def dismiss(self, name: str, actor: Actor) -> None:
        """Clear one latched alarm whose cause the action has just removed."""
        alarm = self.alarms.active.get(name)
        if alarm is not None and not alarm.condition:
            del self.alarms.active[name]
            self.journal.emit("alarm_cleared", actor, alarm=name,
                              priority=self.alarms.priority_of(name))

    def restore(self, names: set[str]) -> None:
        """After a restart: the latching alarms the log left active."""
        for name in sorted(names):
            self.alarms.active.setdefault(name, Alarm(name, False, self.alarms.override_of(name)))

    def present(self) -> list[str]:
        return sorted(a.name for a in self.alarms.active.values() if a.condition)
