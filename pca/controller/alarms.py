"""Alarm catalogue and the set of active alarms (SR-4, SR-10, SR-11).

An alarm is raised when its condition appears. Latching alarms stay active
after the condition goes until a clinician clears them (SR-6); the others
clear themselves when the condition goes. Silence pauses the sound for two
minutes and never clears a condition.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

from pca.controller.ports import NS_PER_S, Priority

PRIORITY: dict[str, Priority] = {
    "occlusion": "high",
    "air_in_line": "high",
    "reservoir_empty": "high",
    "battery_depleted": "high",
    "door_open": "high",
    "motor_fault": "high",
    "log_failure": "high",
    "self_test_failed": "high",
    # A tick of the control loop raised (issue 17): motor halted, loop held in alarm.
    "internal_fault": "high",
    # SR-13: the respiratory monitor. monitor_lost is medium where monitoring is not
    # required (AlarmSet.monitor_required).
    "spo2_low": "high",
    "etco2_high": "high",
    "rr_low": "high",
    "monitor_lost": "high",
    "reservoir_low": "medium",
    "battery_low": "medium",
    "dose_limit_reached": "medium",
    "delivery_interrupted": "medium",
    "button_stuck": "low",
    # The fuel gauge says the pack will not last to the end of the syringe (issue 16).
    "battery_short": "low",
}
# Stay active after their condition goes, until a clinician clears them.
LATCHING = frozenset({"occlusion", "air_in_line", "reservoir_empty", "battery_depleted",
                      "door_open", "motor_fault", "log_failure", "delivery_interrupted",
                      "self_test_failed", "internal_fault", "spo2_low", "etco2_high", "rr_low",
                      "monitor_lost"})
RANK: dict[Priority, int] = {"high": 3, "medium": 2, "low": 1}


def fault_site(err: BaseException) -> str:
    """Where an exception was raised: `file.py:line in function` of its innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return "(no traceback)"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"
SILENCE_NS = 120 * NS_PER_S

# Hardware lines that raise an alarm of the same name (end_of_travel means an empty syringe).
SENSOR_ALARM = {
    "occlusion": "occlusion",
    "air_in_line": "air_in_line",
    "battery_low": "battery_low",
    "battery_depleted": "battery_depleted",
    "door_open": "door_open",
    "end_of_travel": "reservoir_empty",
    "button_stuck": "button_stuck",
}


@dataclass
class Alarm:
    name: str
    condition: bool
    priority_override: Priority | None = None  # SR-13: monitor_lost where not required

    @property
    def priority(self) -> Priority:
        return self.priority_override or PRIORITY[self.name]


class AlarmSet:
    """Active alarms. Methods return what changed so the caller can log it."""

    def __init__(self) -> None:
        self.active: dict[str, Alarm] = {}
        self.silenced_until_ns: int | None = None
        self._optional: set[str] = set()  # medium and self-clearing here (SR-13)

    def monitor_required(self, required: bool) -> None:
        """SR-13: a lost monitor pauses the pump (high, latching) only where monitoring
        is required; otherwise it is medium and clears itself when readings return."""
        if required:
            self._optional.discard("monitor_lost")
        else:
            self._optional.add("monitor_lost")
        alarm = self.active.get("monitor_lost")
        if alarm is not None:
            alarm.priority_override = self.override_of("monitor_lost")

    def override_of(self, name: str) -> Priority | None:
        """The priority SR-13 gives `name` here instead of PRIORITY's, if any."""
        return "medium" if name in self._optional else None

    def priority_of(self, name: str) -> Priority:
        """The priority `name` has here (PRIORITY, unless SR-13 made it medium)."""
        return self.override_of(name) or PRIORITY[name]

    def latching(self, name: str) -> bool:
        return name in LATCHING and name not in self._optional

    def set_condition(self, name: str, present: bool) -> str | None:
        """Update a condition; returns "raised", "cleared" or None."""
        alarm = self.active.get(name)
        if present:
            if alarm is None:
                self.active[name] = Alarm(name, True, self.override_of(name))
                self.silenced_until_ns = None  # a new alarm always sounds
                return "raised"
            alarm.condition = True
            return None
        if alarm is None:
            return None
        alarm.condition = False
        if not self.latching(name):
            del self.active[name]
            return "cleared"
        return None

    def clear_resolved(self) -> list[str]:
        """Clinician clear: remove every alarm whose condition has gone."""
        gone = [a.name for a in self.active.values() if not a.condition]
        for name in gone:
            del self.active[name]
        return gone

    def has_high(self) -> bool:
        return any(a.priority == "high" for a in self.active.values())

    def highest(self) -> Priority | None:
        if not self.active:
            return None
        return max((a.priority for a in self.active.values()), key=RANK.__getitem__)

    def silence(self, now_ns: int) -> list[Alarm]:
        if not self.active:
            return []
        self.silenced_until_ns = now_ns + SILENCE_NS
        return sorted(self.active.values(), key=lambda a: -RANK[a.priority])

    def silenced(self, now_ns: int) -> bool:
        """The sound is paused now: silenced less than 2 min ago and an alarm is still
        active (a silence ends with the last alarm; nothing is left to silence)."""
        return bool(self.active) and self.silenced_until_ns is not None and \
            now_ns < self.silenced_until_ns

    def names(self) -> list[str]:
        return sorted(self.active)
