"""What the front panel may ask of the pump (its PanelHost port), answered by the services."""

from __future__ import annotations

from collections.abc import Callable

from pca.controller.auth import Role
from pca.controller.inputs import (
    ClinicianCommand,
    PanelCommand,
    PendingLibrary,
    PendingPrescription,
)
from pca.controller.intake import Intake
from pca.controller.panel import PanelView, PinStatus, RxReview
from pca.controller.sessions import Sessions
from pca.therapy.drugs import DrugLibrary


class Desk:
    """Everything the panel may ask, answered by the services that own it."""

    def __init__(self, sessions: Sessions, intake: Intake,
                 submit: Callable[[ClinicianCommand | PanelCommand], None],
                 view: Callable[[], PanelView]) -> None:
        self.sessions = sessions
        self.intake = intake
        self._submit = submit
        self._view = view

    @property
    def session_role(self) -> Role:
        return self.sessions.role

    @session_role.setter
    def session_role(self, role: Role) -> None:
        self.sessions.role = role

    def authenticate(self, pin: str, role: Role = "clinician") -> bool:
        """Keypad unlock: the PIN of `role` opens a session for that role."""
        return self.sessions.authenticate(pin, role)

    def session_open(self) -> bool:
        return self.sessions.is_open()

    def touch_session(self, editing: bool) -> None:
        self.sessions.touch(editing)

    def lock_session(self, reason: str) -> None:
        self.sessions.lock(reason)

    def submit(self, command: ClinicianCommand | PanelCommand) -> None:
        """Handle a command now (the panel runs inside the control loop)."""
        self._submit(command)

    def panel_view(self) -> PanelView:
        return self._view()

    def pin_status(self) -> PinStatus:
        pins = self.sessions.pins
        problem = pins.problem("clinician") or pins.problem("admin")
        return PinStatus(pins.provisioned(None), self.sessions.wait_s(), problem)

    def change_pin(self, old_pin: str, new_pin: str) -> str | None:
        return self.sessions.change_pin(old_pin, new_pin)

    def reset_pin(self, role: Role, new_pin: str) -> str | None:
        return self.sessions.reset_pin(role, new_pin)

    def review_prescription(self, item: PendingPrescription) -> RxReview:
        return self.intake.review_prescription(item)

    def dismiss_prescription(self, item: PendingPrescription, reason: str) -> None:
        self.intake.dismiss_prescription(item, reason)

    def review_library(self, item: PendingLibrary) -> DrugLibrary | str:
        return self.intake.review_library(item)

    def install_library(self, item: PendingLibrary, pin: str) -> str | None:
        return self.intake.install_library(item, pin)
