"""What the front panel may ask of the pump (PanelHost) and the views it gets back."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from pca.controller.alarms import PRIORITY, RANK
from pca.controller.auth import Role
from pca.controller.inputs import (
    ClinicianCommand,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
)
from pca.therapy.drugs import DrugLibrary
from pca.therapy.prescription import Prescription, RxRequest


@dataclass(frozen=True)
class PanelView:
    """What the home screen shows, read from the pump at one instant."""

    state: str
    rate_ml_h: float
    reservoir_ml: float
    alarms: tuple[str, ...]  # highest priority first
    silenced: bool
    rx: Prescription | None
    library: DrugLibrary
    next_pib_s: float | None = None  # to the next programmed intermittent bolus, running only
    battery: str = ""  # the fuel gauge's line ("57% 4h05", "AC"); empty without a gauge


@dataclass(frozen=True)
class PinStatus:
    provisioned: bool  # a PIN exists for some role
    wait_s: float  # seconds until the next attempt is accepted (0: now)
    problem: str | None  # the stored PINs cannot be checked (pepper missing or changed)


@dataclass(frozen=True)
class RxReview:
    """A pharmacy prescription checked against the library, nothing activated."""

    request: RxRequest | None
    prescription: Prescription | None  # None: refused (see errors)
    errors: tuple[str, ...]
    soft: tuple[str, ...]  # soft-limit breaches: activation needs an override


class PanelHost(Protocol):
    """What the panel may ask of the pump (answered by pca.controller.desk.Desk)."""

    session_role: Role

    def authenticate(self, pin: str, role: Role = "clinician") -> bool: ...

    def session_open(self) -> bool: ...

    def touch_session(self, editing: bool) -> None: ...

    def lock_session(self, reason: str) -> None: ...

    def submit(self, command: ClinicianCommand | PanelCommand) -> None: ...

    def panel_view(self) -> PanelView: ...

    def pin_status(self) -> PinStatus: ...

    def review_prescription(self, item: PendingPrescription) -> RxReview: ...

    def dismiss_prescription(self, item: PendingPrescription, reason: str) -> None: ...

    def change_pin(self, old_pin: str, new_pin: str) -> str | None: ...

    def reset_pin(self, role: Role, new_pin: str) -> str | None: ...

    def review_library(self, item: PendingLibrary) -> DrugLibrary | str: ...

    def install_library(self, item: PendingLibrary, pin: str) -> str | None: ...


def highest_first(names: Sequence[str], present: Collection[str] = ()) -> tuple[str, ...]:
    """Alarm names by priority (high first); within one, those whose condition is still
    present before latched ones already resolved; then by name."""
    return tuple(sorted(names, key=lambda n: (-RANK[PRIORITY.get(n, "low")], n not in present,
                                              n)))
