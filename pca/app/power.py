"""The daemon's power side: which fuel gauge to open, and the clean stop when the pack is empty.

Depletion (the board's battery_depleted line while not on mains, or the gauge reading
CUTOFF_PCT or less on battery): the pump halts the motor, logs `power_down` and makes the
log durable (Pump.power_down); the log is then closed, so nothing half-written can be
left when the power goes; and the high-priority alarm keeps sounding from this loop,
without the controller, as long as there is power. When mains returns the daemon exits
with EXIT_POWER_RETURNED so systemd (Restart=on-failure) starts it again, and the pump
boots from its log (SR-5).

Simulated pack (`pca run --sim`, `pca bench power`): SimulatedGauge with a load from the
power model below: a Raspberry Pi Zero 2 W at rest draws about 0.60 W (120 mA at 5 V,
measured with an Otii Arc on Raspberry Pi OS Bullseye: CNX Software, "A deep dive into
Raspberry Pi Zero 2 W's power consumption", 2021-12-09), plus the stepper while it runs.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pca.hw.fuel_gauge import Ina219Gauge, SimulatedGauge, SMBusI2C

CUTOFF_PCT = 1.0
EXIT_POWER_RETURNED = 75  # EX_TEMPFAIL: systemd restarts the daemon
PI_ZERO_2W_IDLE_W = 0.60
STEPPER_RUN_W = 0.5  # driver and coils while a segment runs (assumed; measure on the pump)
ALARM_PERIOD_S = 0.05  # the alarm patterns' grid


def open_gauge(cfg: Any, sim: bool, pump_running: Any = None) -> tuple[Any, str | None]:
    """(gauge, why it could not be opened). --sim: a simulated 10 Wh pack on battery."""
    if sim:
        def load_w() -> float:
            running = pump_running is not None and pump_running()
            return PI_ZERO_2W_IDLE_W + (STEPPER_RUN_W if running else 0.0)

        return SimulatedGauge(cfg.battery.capacity_wh, 100.0, load_w=load_w), None
    if cfg.battery.kind == "none":
        return None, None
    try:
        bus = SMBusI2C(cfg.battery.port)
        return Ina219Gauge(bus, address=cfg.battery.address, cells=cfg.battery.cells,
                           capacity_wh=cfg.battery.capacity_wh), None
    except Exception as err:  # no I2C bus, nothing at the address, library missing
        return None, (f"fuel gauge (INA219 at I2C {cfg.battery.address:#x} on bus "
                      f"{cfg.battery.port}): {err}")


class PowerSupervisor:
    """Watches for depletion after every tick and carries out the clean stop."""

    def __init__(self, wiring: Any, gauge: Any) -> None:
        self.w = wiring
        self.gauge = gauge
        self.reason: str | None = None

    def depleted(self) -> str | None:
        """Why the pump must stop now, or None."""
        pump = self.w.pump
        status = pump.battery.status
        on_mains = status is not None and status.mains
        if pump.conditions.sensors.get("battery_depleted", False) and not on_mains:
            return "battery_depleted line"
        if status is not None and not status.mains and status.soc_pct <= CUTOFF_PCT:
            return f"fuel gauge at {status.soc_pct:.1f} %"
        return None

    def power_down(self, reason: str) -> None:
        self.reason = reason
        self.w.pump.power_down(reason)
        if self.w.log is not None and hasattr(self.w.log, "close"):
            self.w.log.close()

    def hold(self, stop: threading.Event, clock: Any = time.monotonic_ns) -> int:
        """Sound the alarm until power returns (exit code) or we are stopped (0)."""
        annunciator = self.w.pump.annunciator
        while not stop.is_set():
            annunciator.annunciate("high", False, clock())
            if self._mains():
                return EXIT_POWER_RETURNED
            stop.wait(ALARM_PERIOD_S)
        return 0

    def _mains(self) -> bool:
        if self.gauge is None:
            return False
        try:
            reading = self.gauge.read(time.monotonic_ns())
        except Exception:  # the gauge is failing as the power goes
            return False
        return reading is not None and reading.mains
