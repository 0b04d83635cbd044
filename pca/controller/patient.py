"""The patient's button and the panel's no-PIN keys: PCA requests (SR-1), start, stop, silence.

Every press gets an answer: the information tone and green lamp for "dose given"
or "not now" (the annunciator), and the same in words on the display (the panel),
with the time until a dose is available where the lockout or the count per hour
decides it. The answer adds no event: the `pca_request` event is the record.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from pca.controller.alarms import AlarmSet
from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine, Dose
from pca.controller.journal import Journal
from pca.controller.ports import Annunciator
from pca.controller.recovery import DELIVERING_STATES, DOSE_STATES
from pca.controller.respiratory import RespiratoryInterlock
from pca.therapy.prescription import Prescription


class PressAnswer(Protocol):
    """Where the answer to a press is shown (the front panel)."""

    def answer_press(self, granted: bool, reason: str | None, wait_ns: int | None,
                     now_ns: int) -> None: ...


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

    @property
    def panel(self) -> PressAnswer: ...

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
        host.panel.answer_press(True, None, None, now)
        limits = delivery.ledger.limits
        assert host.rx is not None and limits is not None
        delivery.dose = Dose("pca", limits.pca_dose_steps, host.rx.pca_dose_ml)
        host.trigger("begin_pca")
    else:
        host.journal.emit("pca_request", "patient", outcome="denied", reason=reason,
                          at_pump_ns=max(now, delivery.decision_ns))
        host.annunciator.tone("denied", now)
        wait_ns = delivery.next_pca_wait_ns(host.rx, now) \
            if reason in ("lockout", "max_per_hour") else None
        host.panel.answer_press(False, reason, wait_ns, now)


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
