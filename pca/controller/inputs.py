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


@dataclass(frozen=True)
class PendingPrescription:
    """A pharmacy prescription file arrived (`pca rx load`, or a USB stick). Nothing
    changes until a clinician reviews it on the display and confirms it with a PIN."""

    request: Mapping[str, Any]  # the file's [prescription] table, not yet checked
    source: str  # the file it came from, shown and logged
    rx_id: str = ""  # the pharmacy's reference, if the file gives one
    problem: str | None = None  # why the file could not be read at all


@dataclass(frozen=True)
class PendingLibrary:
    """A drug-library file arrived; an admin installs it from the keypad after its
    version and checksum have been checked."""

    text: str
    source: str


Input = (BolusButton | Sensor | Key | PanelCommand | ClinicianCommand | PendingPrescription
         | PendingLibrary)
