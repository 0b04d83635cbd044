"""Fuel gauges: the UPS board's INA219 (through adafruit-circuitpython-ina219) and a simulated pack.

Both implement the controller's FuelGauge port (`read(now_ns) -> PowerReading`).

Discharge model (both): a Li-ion NMC cell's open-circuit voltage against state of charge
(OCV_CURVE, a typical 18650 curve at rest, 3.0 V empty to 4.2 V full; `cells` in series
for 2S packs such as the Waveshare UPS HAT (B)), and an internal resistance per cell, so
the loaded terminal voltage is OCV - I * R. The simulated pack counts coulombs (energy,
here: remaining_wh -= P * dt) from the load it is given and reports the voltage the model
gives; the real gauge goes the other way: it measures terminal voltage and current,
corrects the voltage for the I * R drop and reads the state of charge off the curve.
The board's battery_low / battery_depleted lines stay the independent hardware signal.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from typing import Any

from pca.controller.ports import NS_PER_S, PowerReading

# (state of charge %, open-circuit volts per cell)
OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0, 3.00), (5, 3.45), (10, 3.60), (20, 3.70), (30, 3.75), (40, 3.79), (50, 3.83),
    (60, 3.87), (70, 3.92), (80, 3.98), (90, 4.08), (100, 4.20))
CELL_R_OHM = 0.08


def ocv_v(soc_pct: float, cells: int = 1) -> float:
    """Open-circuit voltage of the pack at `soc_pct` (linear between curve points)."""
    soc = min(100.0, max(0.0, soc_pct))
    socs = [p for p, _ in OCV_CURVE]
    i = max(1, bisect.bisect_left(socs, soc))
    (s0, v0), (s1, v1) = OCV_CURVE[i - 1], OCV_CURVE[i]
    return cells * (v0 + (v1 - v0) * (soc - s0) / (s1 - s0))


def soc_from_ocv(volts: float, cells: int = 1) -> float:
    """State of charge % for an open-circuit pack voltage (the curve's inverse)."""
    v = volts / cells
    if v <= OCV_CURVE[0][1]:
        return 0.0
    if v >= OCV_CURVE[-1][1]:
        return 100.0
    for (s0, v0), (s1, v1) in itertools.pairwise(OCV_CURVE):
        if v <= v1:
            return s0 + (s1 - s0) * (v - v0) / (v1 - v0)
    return 100.0  # pragma: no cover


class SimulatedGauge:
    """A pack of `capacity_wh` discharged by `load_w()` (coulomb counting in the caller's
    time, virtual or real). `set(...)` is the simulation's power action: mains in or out,
    or a new state of charge."""

    def __init__(self, capacity_wh: float = 10.0, soc_pct: float = 100.0, *, cells: int = 1,
                 load_w: Callable[[], float] | float = 1.0, mains: bool = False) -> None:
        if capacity_wh <= 0:
            raise ValueError("capacity_wh must be > 0")
        self.capacity_wh = capacity_wh
        self.remaining_wh = capacity_wh * min(100.0, max(0.0, soc_pct)) / 100
        self.cells = cells
        self._load = load_w
        self.mains = mains
        self._last_ns: int | None = None

    def load_w(self) -> float:
        return float(self._load() if callable(self._load) else self._load)

    def set(self, now_ns: int, *, mains: bool | None = None, soc_pct: float | None = None,
            load_w: float | None = None) -> None:
        self.advance(now_ns)
        if mains is not None:
            self.mains = mains
        if soc_pct is not None:
            self.remaining_wh = self.capacity_wh * min(100.0, max(0.0, soc_pct)) / 100
        if load_w is not None:
            self._load = load_w

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.remaining_wh / self.capacity_wh

    @property
    def depleted(self) -> bool:
        return self.remaining_wh <= 0 and not self.mains

    def advance(self, now_ns: int) -> None:
        if self._last_ns is not None and now_ns > self._last_ns and not self.mains:
            hours = (now_ns - self._last_ns) / NS_PER_S / 3600
            self.remaining_wh = max(0.0, self.remaining_wh - self.load_w() * hours)
        self._last_ns = now_ns if self._last_ns is None else max(self._last_ns, now_ns)

    def read(self, now_ns: int) -> PowerReading:
        self.advance(now_ns)
        power = 0.0 if self.mains else self.load_w()
        ocv = ocv_v(self.soc_pct, self.cells)
        current = power / ocv if ocv > 0 else 0.0
        volts = ocv - current * CELL_R_OHM * self.cells
        return PowerReading(now_ns, self.mains, round(volts, 3), power, self.soc_pct,
                            self.remaining_wh)


class Ina219Gauge:
    """The INA219 on a UPS board (Waveshare UPS HAT: address 0x42 on I2C bus 1; a PiSugar-
    class board: see its manual), read through adafruit-circuitpython-ina219.

    `bus` is anything with busio.I2C's methods (`SMBusI2C` on the Pi, a fake in tests).
    The board's shunt sits in the battery lead: current flowing out of the pack reads
    negative on these boards (`discharge_negative`), so a current above `mains_a` into the
    pack means external power. State of charge comes from the terminal voltage corrected
    for the I * R drop and read off OCV_CURVE; remaining energy from that and
    `capacity_wh` (the pack's rating, configured)."""

    def __init__(self, bus: Any, *, address: int = 0x42, cells: int = 1,
                 capacity_wh: float = 10.0, discharge_negative: bool = True,
                 mains_a: float = 0.02) -> None:
        from adafruit_ina219 import INA219

        self.sensor = INA219(bus, address)
        self.cells = cells
        self.capacity_wh = capacity_wh
        self.sign = -1.0 if discharge_negative else 1.0
        self.mains_a = mains_a
        self.errors = 0

    def read(self, now_ns: int) -> PowerReading | None:
        try:
            volts = float(self.sensor.bus_voltage) + float(self.sensor.shunt_voltage)
            discharge_a = self.sign * float(self.sensor.current) / 1000.0  # mA -> A
        except OSError:
            self.errors += 1  # a NACK or a bus glitch: no reading this time
            return None
        mains = discharge_a < -self.mains_a
        draw_a = max(0.0, discharge_a)
        soc = soc_from_ocv(volts + draw_a * CELL_R_OHM * self.cells, self.cells)
        return PowerReading(now_ns, mains, round(volts, 3), 0.0 if mains else volts * draw_a,
                            soc, self.capacity_wh * soc / 100)


class SMBusI2C:
    """busio.I2C's interface over smbus2 (the I2C bus of the LCD already), so the gauge
    needs no Blinka board detection at run time."""

    def __init__(self, port: int = 1) -> None:
        from smbus2 import SMBus

        self._bus = SMBus(port)

    def try_lock(self) -> bool:
        return True

    def unlock(self) -> None:
        pass

    def writeto(self, address: int, buffer: Any, *, start: int = 0,
                end: int | None = None) -> None:
        from smbus2 import i2c_msg

        self._bus.i2c_rdwr(i2c_msg.write(address, bytes(buffer[start:end])))

    def readfrom_into(self, address: int, buffer: Any, *, start: int = 0,
                      end: int | None = None) -> None:
        from smbus2 import i2c_msg

        end = len(buffer) if end is None else end
        msg = i2c_msg.read(address, end - start)
        self._bus.i2c_rdwr(msg)
        buffer[start:end] = bytes(msg)

    def writeto_then_readfrom(self, address: int, out: Any, in_: Any, *, out_start: int = 0,
                              out_end: int | None = None, in_start: int = 0,
                              in_end: int | None = None) -> None:
        from smbus2 import i2c_msg

        in_end = len(in_) if in_end is None else in_end
        write = i2c_msg.write(address, bytes(out[out_start:out_end]))
        read = i2c_msg.read(address, in_end - in_start)
        self._bus.i2c_rdwr(write, read)
        in_[in_start:in_end] = bytes(read)

    def close(self) -> None:
        self._bus.close()
