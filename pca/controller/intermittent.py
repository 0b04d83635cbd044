"""SR-12 in the pump: the PIB schedule, kept from the log's own events (live and on replay)."""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any, Protocol

from pca.controller.alarms import AlarmSet
from pca.controller.delivery import DeliveryEngine, Dose
from pca.controller.journal import Journal
from pca.controller.ports import NS_PER_S
from pca.controller.recovery import DELIVERING_STATES, DOSE_STATES
from pca.therapy.intermittent import Give, PibPlan, PibSchedule, Skip
from pca.therapy.ledger import ml_to_steps
from pca.therapy.prescription import Prescription

NS_PER_MIN = 60 * 1_000_000_000


class PibService:
    """Watches the events the pump logs and keeps the schedule they imply.

    Because the schedule is a fold over logged events, replaying the log after a crash
    rebuilds exactly the schedule the pump had: the last PIB's start, the next due time,
    the start of delivery it counts from (SR-12 across crash/restart)."""

    def __init__(self, steps_per_ml: Fraction) -> None:
        self.steps_per_ml = steps_per_ml
        self.schedule = PibSchedule()
        self.dose_ml = Fraction(0)

    def plan_of(self, fields: Mapping[str, Any]) -> PibPlan | None:
        """The plan of a logged prescription (`prescription_activated` fields)."""
        dose_ml = fields.get("pib_dose_ml") or 0
        interval = fields.get("pib_interval_min")
        if not dose_ml or not interval:
            return None
        first = fields.get("pib_first_min")
        steps = ml_to_steps(Fraction(str(dose_ml)), self.steps_per_ml)
        if steps <= 0:
            return None
        return PibPlan(dose_steps=steps, interval_ns=int(interval) * NS_PER_MIN,
                       first_ns=int(interval if first is None else first) * NS_PER_MIN,
                       reset_on_pca=bool(fields.get("pib_reset_on_pca", False)))

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        s = self.schedule
        if type_ == "prescription_activated":
            s.reprogram(self.plan_of(fields))
            self.dose_ml = Fraction(str(fields.get("pib_dose_ml") or 0))
        elif type_ == "state_changed" and fields.get("from") == "stopped" \
                and fields.get("to") == "running":
            s.delivery_started(pump_ns)
        elif type_ == "dose_started":
            if fields.get("source") == "intermittent":
                s.pib_started(pump_ns)
            elif fields.get("source") == "pca":
                s.pca_started(pump_ns)
        elif type_ == "pib_skipped":
            s.pib_skipped(pump_ns)
        elif type_ == "restarted":
            s.powered_up(pump_ns)
        elif type_ == "new_patient":
            s.new_patient()
            s.reprogram(None)
            self.dose_ml = Fraction(0)

    def next_due_ns(self) -> int | None:
        return self.schedule.due_ns if self.schedule.plan is not None else None


class PibHost(Protocol):
    """What the PIB decision may use of the pump."""

    state: str
    rx: Prescription | None
    journal: Journal
    delivery: DeliveryEngine
    alarms: AlarmSet
    pib: PibService

    def trigger(self, name: str) -> bool: ...


def service(host: PibHost, now_ns: int) -> None:
    """Give, hold or skip the PIB that is due (called once a tick, after the conditions)."""
    schedule = host.pib.schedule
    plan = schedule.plan
    if plan is None or schedule.due_ns is None or now_ns < schedule.due_ns:
        return  # nothing due: no need to ask the ledger on every tick
    decision = schedule.decide(
        now_ns, running=host.state in DELIVERING_STATES,
        in_alarm=host.state == "alarm" or host.alarms.has_high(),
        dose_running=host.state in DOSE_STATES,
        allowance_steps=host.delivery.ledger.allowance_steps(now_ns))
    if isinstance(decision, Skip):
        host.journal.emit("pib_skipped", "system", reason=decision.reason,
                          due_s=round((now_ns - decision.due_ns) / NS_PER_S, 3))
    elif isinstance(decision, Give):
        delay_s = round(decision.delay_ns / NS_PER_S, 3) if decision.delay_ns > 0 else None
        host.delivery.dose = Dose("intermittent", plan.dose_steps, host.pib.dose_ml, delay_s)
        host.trigger("begin_pib")
