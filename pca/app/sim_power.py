"""The scenario's power world: the `power` action, a simulated pack, and the UPS board's lines.

A scenario without a `power` step has no fuel gauge at all (every existing scenario runs
exactly as before). The first `power` step puts a simulated pack in the pump: 10 Wh,
full, drawing 1 W, on battery, unless the step says otherwise (`mains`, `soc_pct`,
`load_w`, `capacity_wh`). From then on, in virtual time:

- the pack drains at `load_w` while the pump is on battery (coulomb counting);
- the board's lines follow it like a UPS board's comparators: battery_low at LOW_PCT,
  battery_depleted at DEPLETED_PCT, both released on mains (SR-4 alarms as any `signal`);
- at depletion (the depleted line off mains, or the gauge at the cut-off) the pump stops
  cleanly (Pump.power_down, as `pca run` does) and is off until a `power` step brings
  mains back, when it boots from its log like after any restart;
- replay wakes at each whole percent and threshold crossing, so battery_status and the
  alarms are logged when they happen.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from pca.app.power import CUTOFF_PCT
from pca.controller.inputs import Sensor
from pca.controller.ports import NS_PER_S
from pca.hw.fuel_gauge import SimulatedGauge
from pca.therapy.strict import Table

FIELDS = {"mains", "soc_pct", "load_w", "capacity_wh"}
LOW_PCT = 10.0
DEPLETED_PCT = 3.0
DEFAULT_CAPACITY_WH = 10.0
DEFAULT_LOAD_W = 1.0


def check_fields(t: Table) -> None:
    """The `power` step's fields, their types and bounds."""
    if not t.raw:
        raise t.error(f"{t.where}: give at least one of {', '.join(sorted(FIELDS))}")
    if t.has("mains"):
        t.flag("mains")
    t.maybe_number("soc_pct", 0, 100, unit="%")
    t.maybe_number("load_w", 0, 50, unit="W", lo_open=True)
    t.maybe_number("capacity_wh", 0, 1000, unit="Wh", lo_open=True)


def _float(fields: dict[str, Any], name: str) -> float | None:
    return None if name not in fields else float(Fraction(str(fields[name])))


class PowerWorld:
    """The pack and the board beside one scenario run."""

    def __init__(self, fields: dict[str, Any], now_ns: int) -> None:
        self.gauge = SimulatedGauge(_float(fields, "capacity_wh") or DEFAULT_CAPACITY_WH,
                                    100.0, load_w=DEFAULT_LOAD_W, mains=False)
        self.gauge.set(now_ns)
        self.powered_down = False
        self.apply(fields, now_ns)

    def apply(self, fields: dict[str, Any], now_ns: int) -> None:
        capacity = _float(fields, "capacity_wh")
        if capacity is not None:
            soc = self.gauge.soc_pct
            self.gauge.capacity_wh = capacity
            self.gauge.remaining_wh = capacity * soc / 100
        self.gauge.set(now_ns, mains=fields.get("mains"), soc_pct=_float(fields, "soc_pct"),
                       load_w=_float(fields, "load_w"))

    def due_ns(self, now_ns: int) -> int | None:
        """The next crossing the pump should see: a whole percent or a threshold."""
        g = self.gauge
        g.advance(now_ns)
        load = g.load_w()
        if g.mains or load <= 0 or g.remaining_wh <= 0:
            return None
        soc = g.soc_pct
        whole = float(int(soc)) if soc > int(soc) else soc - 1
        targets = [t for t in (whole, LOW_PCT, DEPLETED_PCT, CUTOFF_PCT, 0.0) if t < soc]
        if not targets:
            return None
        target_wh = g.capacity_wh * max(targets) / 100
        hours = (g.remaining_wh - target_wh) / load
        return now_ns + max(1, int(hours * 3600 * NS_PER_S) + 1)

    def after_tick(self, run: Any) -> None:
        """The board's lines, then the clean stop at depletion."""
        pump = run.pump
        if pump is None:
            return
        g = self.gauge
        g.advance(run.clock.now_ns)
        for name, threshold in (("battery_low", LOW_PCT), ("battery_depleted", DEPLETED_PCT)):
            active = not g.mains and g.soc_pct <= threshold
            if run.lines.get(name, False) != active:
                run.lines[name] = active
                pump.put(Sensor(name, active))
                pump.tick()
        status = pump.battery.status
        reason = None
        if run.lines.get("battery_depleted") and not g.mains:
            reason = "battery_depleted line"
        elif status is not None and not status.mains and status.soc_pct <= CUTOFF_PCT:
            reason = f"fuel gauge at {status.soc_pct:.1f} %"
        if reason is not None:
            pump.power_down(reason)
            self.powered_down = True
            run.crash()  # the log is durable: the process simply ends with the power
