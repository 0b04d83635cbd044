"""What arrives on the control loop's queue: everything the world tells the pump."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

SENSORS = ("occlusion", "air_in_line", "battery_low", "battery_depleted", "end_of_travel",
           "door_open")


@dataclass(frozen=True)
class BolusButton:
    """The patient's button changed: pressed or released (already debounced)."""

    pressed: bool


@dataclass(frozen=True)
class Sensor:
    """A hardware line changed; `name` is one of SENSORS (or `button_stuck`)."""

    name: str
    active: bool


@dataclass(frozen=True)
class Key:
    """One keypad key: '0'-'9', '*' (back/cancel) or '#' (enter)."""

    key: str


@dataclass(frozen=True)
class PanelCommand:
    """Front-panel action that needs no PIN."""

    name: Literal["start", "stop", "silence"]


@dataclass(frozen=True)
class ClinicianCommand:
    """A clinician action (SR-6). With `pin` the PIN is checked first; without it
    an open keypad session is required."""

    name: Literal["program", "clinician_bolus", "loading_dose", "clear_alarm",
                  "new_syringe", "new_patient"]
    pin: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)


Input = BolusButton | Sensor | Key | PanelCommand | ClinicianCommand
