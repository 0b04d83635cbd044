"""How the pump stops or refuses: orderly shutdown, power-down, a failed self-test or log."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Protocol

from pca.controller.alarms import fault_site
from pca.controller.battery import BatteryWatch
from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine
from pca.controller.journal import Journal
from pca.controller.pumptime import MotorInPumpTime, PumpTime
from pca.controller.recovery import DELIVERING_STATES


class StopHost(Protocol):
    """What stopping reads and drives in the pump."""

    state: str
    trigger: Callable[..., bool]
    time: PumpTime
    journal: Journal
    motor: MotorInPumpTime
    delivery: DeliveryEngine
    conditions: Conditions
    battery: BatteryWatch

    def pump_ns(self) -> int: ...


def log_unusable(host: StopHost, why: str) -> None:
    """The log failed its start-up check (SR-7): alarm and refuse to deliver."""
    host.journal.failed(why)
    host.journal.flush()


def fail_self_test(host: StopHost, problems: list[str]) -> None:
    """Power-on self test failed: refuse to deliver, alarm, say what to do."""
    host.journal.emit("self_test_failed", "system", problems=problems)
    host.conditions.condition("self_test_failed", True)
    host.journal.flush()


def journal_progress(host: StopHost) -> None:
    """Journal now what the motor made since the last record (the end of an observation,
    such as a scenario's end): the log then holds every step given so far."""
    now = host.time.now_ns = host.pump_ns()
    host.delivery.record_progress(now)
    host.journal.flush()


def shutdown(host: StopHost) -> None:
    """Orderly stop (SIGTERM): halt the motor, log it, make the log durable."""
    now = host.time.now_ns = host.pump_ns()
    if host.state in DELIVERING_STATES:
        host.delivery.completion = "stopped"
        host.trigger("stop")
    host.motor.halt(now)
    host.journal.emit("shutdown", "system", state=host.state)
    host.journal.flush()


def power_down(host: StopHost, reason: str) -> None:
    """The pack is empty: stop cleanly before the power goes. battery_depleted (high)
    stops delivery mid-move (SR-4) if the board's line has not already; the motor is
    halted, `power_down` logged and the log made durable. Nothing is logged after it:
    the caller closes the log and keeps the alarm sounding while power lasts."""
    now = host.time.now_ns = host.pump_ns()
    host.conditions.condition("battery_depleted", True)
    host.motor.halt(now)
    status = host.battery.status
    host.journal.emit("power_down", "system", reason=reason, state=host.state,
                      soc_pct=None if status is None else int(status.soc_pct))
    host.journal.flush()


def internal_fault(host: StopHost, err: BaseException) -> None:
    """A tick raised (a bug, or an input no check caught): halt the motor, log what was
    raised and where (`internal_fault`), raise the high `internal_fault` alarm (it stops
    delivery like any high alarm) and make the log durable. Each step is tried on its
    own: the pump may have stopped half-way through anything."""
    steps: tuple[Callable[[], object], ...] = (
        lambda: host.motor.halt(host.pump_ns()),
        lambda: host.journal.emit("internal_fault", "system", error=type(err).__name__,
                                  message=str(err)[:500], where=fault_site(err)),
        lambda: host.conditions.condition("internal_fault", True),
        lambda: host.journal.flush(),
    )
    for step in steps:
        with contextlib.suppress(Exception):
            step()
