"""Boot (SR-5): start fresh, or put the pump back where its event log says it was."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from pca.controller.conditions import Conditions
from pca.controller.delivery import DeliveryEngine
from pca.controller.journal import Journal, from_to
from pca.controller.ports import NS_PER_S
from pca.controller.profile import PumpProfile
from pca.controller.pumptime import PumpTime
from pca.controller.recovery import DELIVERING_STATES, Recovered
from pca.controller.sessions import Sessions
from pca.therapy.prescription import Prescription, RxRequest, derive, parse_request


class BootHost(Protocol):
    """What booting sets up in the pump."""

    rx: Prescription | None
    profile: PumpProfile
    time: PumpTime
    journal: Journal
    delivery: DeliveryEngine
    conditions: Conditions
    sessions: Sessions

    def activate(self, rx: Prescription | None) -> None: ...

    def set_state(self, state: str) -> None: ...


def resume(host: BootHost, rec: Recovered) -> None:
    """Continue pump time from the log (plus the outage, if the RTC can tell it), then
    rebuild the ledger, the syringe, the prescription and the latched alarms."""
    clock, journal = host.time.clock, host.journal
    mono = clock.monotonic_ns()
    wall = clock.wall_ns()
    outage_ns = 0
    if rec.events and host.profile.rtc and wall >= rec.last_wall_ns:
        outage_ns = wall - rec.last_wall_ns
    host.time.start(rec.last_pump_ns + outage_ns - mono, wall - mono)
    now = host.time.now_ns
    host.sessions.pins.failures = rec.failures
    if rec.problems:
        journal.failed("the event log has unreadable rows: " + "; ".join(rec.problems[:3]))
    if rec.events == 0:
        journal.emit("pump_initialised", "system",
                     steps_per_ml=float(host.profile.steps_per_ml), rtc=host.profile.rtc)
        journal.emit("state_changed", "system", **from_to("off", "unprogrammed"))
        host.delivery.load_syringe(host.profile.syringe_ml, "system")
        host.conditions.reservoir(0)
        return
    if rec.prescription is not None:
        host.activate(_rx_from_log(rec.prescription))
    interrupted_ml = host.delivery.restore(rec, now)
    was_delivering = rec.last_state in DELIVERING_STATES and not rec.clean_shutdown
    behind: dict[str, Any] = {}
    if wall < rec.last_wall_ns:
        # The wall clock reads earlier than the log's last event (an RTC that lost its
        # time, a clock set back while the pump was off): say so, the log's times will.
        behind["clock_behind_s"] = (rec.last_wall_ns - wall) / NS_PER_S
    journal.emit("restarted", "system", interrupted_dose_ml=interrupted_ml,
                 outage_s=outage_ns / NS_PER_S, previous_state=rec.last_state, **behind)
    host.conditions.restore(rec.alarms)
    if was_delivering:
        host.conditions.raise_event("delivery_interrupted")
    initial = "stopped" if host.rx is not None else "unprogrammed"
    if host.rx is not None and host.conditions.alarms.has_high():
        initial = "alarm"
    host.set_state(initial)
    journal.emit("state_changed", "system", **from_to("off", initial))
    host.delivery.rate_changed("stopped", 0.0)
    host.conditions.reservoir(0)
    end_open_alarms(host, rec)


def end_open_alarms(host: BootHost, rec: Recovered) -> None:
    """Every alarm the log left open either is active again now or ends here. Latching
    alarms come back as they were; a condition the pump checks at boot (the syringe) is
    raised again if it is still there; every other condition is assumed gone, as every
    sensor line is assumed idle at start, and is raised again when its line says so."""
    active = host.conditions.alarms.active
    for name, priority in sorted(rec.open_alarms.items()):
        if name not in active:
            host.journal.emit("alarm_cleared", "system", alarm=name, priority=priority,
                              reason="condition_gone_at_restart")


def _rx_from_log(fields: Mapping[str, Any]) -> Prescription:
    req = parse_request({k: v for k, v in fields.items()
                         if k in RxRequest.__dataclass_fields__})
    overrides = tuple(str(o) for o in fields.get("overrides", ()))
    return derive(req, str(fields["drug_unit"]), overrides)
