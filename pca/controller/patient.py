"""The patient's button and the panel's no-PIN keys: PCA requests (SR-1), start, stop, silence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pca.controller.alarms import AlarmSet
from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine, Dose
from pca.controller.journal import Journal
from pca.controller.ports import Annunciator
from pca.controller.recovery import DELIVERING_STATES
from pca.controller.respiratory import RespiratoryInterlock
from pca.therapy.prescription import Prescription

DOSE_STATES = ("pca_dose", "clinician_dose", "loading_dose")


class PatientHost(Protocol):
    """What a press may use of the pump."""

    state: str
    rx: Prescription | None
    annunciator: Annunciator
    journal: Journal
    delivery: DeliveryEngine
    conditions: Conditions
    alarms: AlarmSet
    respiratory: RespiratoryInterlock

    def trigger(self, name: str) -> bool: ...


def pca_request(host: PatientHost) -> None:
    """Granted or denied, decided at the moment of deciding and logged at that moment,
    so the log shows exactly the interval the lockout was checked on (SR-1)."""
    delivery = host.delivery
    now = delivery.time.now_ns
    reason: str | None
    if host.respiratory.pauses():
        reason = "monitor"  # SR-13: breathing failed; PCA waits for a clinician
    elif host.alarms.has_high():
        reason = "alarm"
    elif host.state not in DELIVERING_STATES:
        reason = "not_running"
    else:
        now = delivery.decide_pca_at()
        reason = delivery.ledger.pca_denial(now, dose_running=host.state in DOSE_STATES)
    if reason is None:
        host.journal.emit("pca_request", "patient", outcome="granted", at_pump_ns=now)
        host.annunciator.tone("granted", now)
        limits = delivery.ledger.limits
        assert host.rx is not None and limits is not None
        delivery.dose = Dose("pca", limits.pca_dose_steps, host.rx.pca_dose_ml)
        host.trigger("begin_pca")
    else:
        host.journal.emit("pca_request", "patient", outcome="denied", reason=reason,
                          at_pump_ns=max(now, delivery.decision_ns))
        host.annunciator.tone("denied", now)


def start(host: PatientHost) -> None:
    if host.state != "stopped" or host.alarms.has_high():
        why = "the pump has a high-priority alarm" if host.alarms.has_high() else \
            f"the pump is {host.state.replace('_', ' ')}"
        host.journal.emit("action_rejected", "patient", action="start", reason=why)
        return
    host.conditions.dismiss("delivery_interrupted", "patient")  # resuming is its answer
    host.trigger("start")


def stop(host: PatientHost) -> None:
    if host.state not in DELIVERING_STATES:
        host.journal.emit("action_rejected", "patient", action="stop",
                          reason=f"the pump is {host.state.replace('_', ' ')}")
        return
    host.delivery.completion = "stopped"
    host.trigger("stop")


def silence(host: PatientHost) -> None:
    for alarm in host.alarms.silence(host.delivery.time.now_ns):
        host.journal.emit("alarm_silenced", "patient", alarm=alarm.name,
                          priority=alarm.priority)


PANEL_COMMANDS: dict[str, Callable[[PatientHost], None]] = {
    "start": start, "stop": stop, "silence": silence}
