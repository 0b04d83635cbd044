"""What the outside sees of the pump: its snapshot (trace, daemon, simulator), the panel's view."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Protocol

from pca.controller.alarms import AlarmSet
from pca.controller.battery import BatteryWatch
from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine
from pca.controller.intake import Intake
from pca.controller.intermittent import PibService
from pca.controller.panel import PanelView, highest_first
from pca.controller.panel import text as T
from pca.controller.ports import NS_PER_S
from pca.controller.recovery import DELIVERING_STATES
from pca.therapy.ledger import Source
from pca.therapy.prescription import Prescription


@dataclass(frozen=True)
class Snapshot:
    """What the pump looks like at an instant (for trace, display, simulator)."""

    state: str
    rate_ml_h: float
    delivered_steps: Mapping[Source, int]
    reservoir_steps: int
    alarms: list[str]
    silenced: bool
    lockout_left_s: float


class ViewHost(Protocol):
    state: str
    rx: Prescription | None
    delivery: DeliveryEngine
    conditions: Conditions
    alarms: AlarmSet
    intake: Intake
    pib: PibService
    battery: BatteryWatch


def snapshot(host: ViewHost) -> Snapshot:
    delivery = host.delivery
    now = delivery.time.pump_ns()
    delivered, rate = delivery.delivered(now)
    left = delivery.reservoir_left(delivery.unrecorded(now))
    lockout_end = delivery.ledger.lockout_ends_ns()
    lockout_left = max(0, (lockout_end or now) - now) / NS_PER_S
    return Snapshot(host.state, rate, delivered, left, host.alarms.names(),
                    host.alarms.silenced(now), lockout_left)


def panel_view(host: ViewHost) -> PanelView:
    snap = snapshot(host)
    reservoir_ml = float(Fraction(snap.reservoir_steps) / host.delivery.profile.steps_per_ml)
    present = set(host.conditions.present())
    due = host.pib.next_due_ns()
    now = host.delivery.time.pump_ns()
    next_pib_s = None
    if due is not None and snap.state in DELIVERING_STATES:
        next_pib_s = max(0, due - now) / NS_PER_S
    return PanelView(snap.state, snap.rate_ml_h, max(0.0, reservoir_ml),
                     highest_first(snap.alarms, present), snap.silenced, host.rx,
                     host.intake.library, next_pib_s, battery_line(host.battery))


def battery_line(battery: BatteryWatch) -> str:
    """State of charge and time remaining for the home screen ("" without a gauge)."""
    status = battery.status
    if status is None:
        return ""
    if status.mains:
        return T.HOME_MAINS
    soc = int(status.soc_pct)
    if status.time_remaining_s is None:
        return T.HOME_BATTERY_SOC.format(soc=soc)
    minutes = int(status.time_remaining_s // 60)
    return T.HOME_BATTERY.format(soc=soc, h=min(minutes // 60, 99), m=minutes % 60)
