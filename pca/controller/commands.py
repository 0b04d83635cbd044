"""Clinician commands (SR-6): one named handler per command, run once a PIN or session allows it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine
from pca.controller.inputs import ClinicianCommand
from pca.controller.intake import Intake
from pca.controller.journal import Journal
from pca.controller.profile import PumpProfile
from pca.controller.recovery import DELIVERING_STATES
from pca.controller.sessions import Sessions
from pca.therapy import bounds
from pca.therapy.prescription import (
    Prescription,
    PrescriptionFormatError,
    RxRequest,
    parse_request,
    validate,
)
from pca.therapy.units import exact


class CommandHost(Protocol):
    """What a command may use of the pump."""

    state: str
    rx: Prescription | None
    profile: PumpProfile
    journal: Journal
    delivery: DeliveryEngine
    conditions: Conditions
    intake: Intake
    sessions: Sessions

    def trigger(self, name: str) -> bool: ...

    def activate(self, rx: Prescription | None) -> None: ...


Handler = Callable[[CommandHost, Mapping[str, Any]], "str | None"]  # -> why it was refused


def run(host: CommandHost, cmd: ClinicianCommand) -> None:
    """Check the PIN or the session, then run the command; log why if it is refused."""
    if cmd.pin is not None:
        if not host.sessions.authenticate(cmd.pin):
            host.journal.emit("action_rejected", "clinician", action=cmd.name,
                              reason="not authorised")
            return
    elif not host.sessions.clinician_open():
        host.journal.emit("action_rejected", "clinician", action=cmd.name,
                          reason="the keypad is locked: enter the PIN first")
        return
    host.sessions.extend()
    error = COMMANDS[cmd.name](host, cmd.args)
    if error:
        host.journal.emit("action_rejected", "clinician", action=cmd.name, reason=error)


def program(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    if host.state not in ("unprogrammed", "stopped"):
        return "stop the pump before programming"
    raw = args.get("prescription")
    try:
        req = raw if isinstance(raw, RxRequest) else parse_request(raw or {})
    except PrescriptionFormatError as err:
        host.journal.emit("prescription_rejected", "clinician", errors=[str(err)])
        return None
    verdict = validate(req, host.intake.library,
                       bolus_rate_ml_h=host.profile.bolus_rate_ml_h,
                       confirm_soft=bool(args.get("confirm_soft", False)))
    if verdict.prescription is None:
        host.journal.emit("prescription_rejected", "clinician", **req.entered(),
                          errors=list(verdict.errors))
        return None
    host.activate(verdict.prescription)
    host.journal.emit("prescription_activated", "clinician",
                      **verdict.prescription.describe())
    host.trigger("program")
    return None


def clinician_bolus(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    rx = host.rx
    if rx is None or host.state not in ("running", "kvo"):
        return "a clinician bolus needs the pump running"
    try:
        amount = exact(args.get("amount"), where="amount")
    except ValueError as err:
        return str(err)
    unit = rx.request.dose_unit
    cap = rx.request.clinician_bolus_max
    if amount <= 0 or amount > cap:
        return f"amount {float(amount):g} {unit} is outside 0 < amount <= " \
               f"clinician_bolus_max {float(cap):g} {unit}"
    host.delivery.record_progress(host.delivery.time.now_ns)
    host.delivery.dose_of("clinician", rx.to_ml(amount))
    host.trigger("begin_clinician")
    return None


def loading_dose(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    rx = host.rx
    if rx is None or host.state not in ("running", "kvo"):
        return "a loading dose needs the pump running"
    if rx.loading_dose_ml <= 0:
        return "the prescription has no loading dose"
    host.delivery.record_progress(host.delivery.time.now_ns)
    host.delivery.dose_of("loading", rx.loading_dose_ml)
    host.trigger("begin_loading")
    return None


def clear_alarm(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    host.conditions.reservoir(host.delivery.unrecorded())
    host.conditions.clear_resolved("clinician")
    if host.state == "alarm" and not host.conditions.alarms.has_high():
        host.trigger("clear")
    remaining = host.conditions.present()
    if remaining:
        return "still present: " + ", ".join(remaining)
    return None


def new_syringe(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    if host.state in DELIVERING_STATES:
        return "stop the pump before changing the syringe"
    try:
        volume = exact(args.get("syringe_ml"), where="syringe_ml")
    except ValueError as err:
        return str(err)
    # One physical bound for every path that loads a syringe (pca.therapy.bounds).
    if not 0 < volume <= bounds.SYRINGE_ML_MAX:
        return f"syringe_ml = {float(volume):g} must be > 0 and <= {bounds.SYRINGE_ML_MAX} mL"
    host.delivery.load_syringe(volume, "clinician")
    host.conditions.reservoir(0)
    host.conditions.dismiss("reservoir_empty", "clinician")
    if host.state == "alarm" and not host.conditions.alarms.has_high():
        host.trigger("clear")
    return None


def new_patient(host: CommandHost, args: Mapping[str, Any]) -> str | None:
    if host.state not in ("unprogrammed", "stopped"):
        return "stop the pump (and clear its alarms) before a new patient"
    host.journal.emit("new_patient", "clinician")
    host.activate(None)
    host.delivery.new_patient()
    if host.state == "stopped":
        host.trigger("new_patient")
    return None


COMMANDS: dict[str, Handler] = {
    "program": program,
    "clinician_bolus": clinician_bolus,
    "loading_dose": loading_dose,
    "clear_alarm": clear_alarm,
    "new_syringe": new_syringe,
    "new_patient": new_patient,
}
