"""The syringe motor over the native pulse generator: the Motor port in real time.

Python plans, C times: this module converts volumes to steps and the controller's
commands to native calls; the pulse thread (native/stepgen.c) makes every edge and
enforces its own safety channel (SR-9: rate cap, step budget, deadman), fixed here at
construction and not changeable afterwards.
"""

from __future__ import annotations

import atexit
import math
import weakref
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import pca._stepgen as _stepgen
from pca.controller.ports import NS_PER_S, StepRate
from pca.controller.profile import PumpProfile
from pca.therapy.ledger import ml_to_steps

# Pi 5 (RP1), Pi 4, Pi 3: the chip that carries the 40-pin header's GPIO 0-27, whose line
# offsets are the BCM numbers.
DEFAULT_CHIP_LABELS = ("pinctrl-rp1", "pinctrl-bcm2711", "pinctrl-bcm2835")


@dataclass(frozen=True)
class SafetyLimits:
    """SR-9: what the pulse thread enforces by itself, whatever Python asks."""

    max_rate_hz: int
    budget_steps: int
    budget_window_s: int
    deadman_ms: int = 1000
    late_fault_ms: int = 500

    @classmethod
    def from_volume(cls, *, steps_per_ml: Fraction, max_rate_ml_h: Fraction, budget_ml: Fraction,
                    budget_window_s: int, deadman_ms: int = 1000,
                    late_fault_ms: int = 500) -> SafetyLimits:
        """Limits in the clinician's units, rounded so they never bind below what they say."""
        return cls(
            max_rate_hz=math.ceil(Fraction(max_rate_ml_h) * Fraction(steps_per_ml) / 3600),
            budget_steps=ml_to_steps(Fraction(budget_ml), Fraction(steps_per_ml)),
            budget_window_s=budget_window_s,
            deadman_ms=deadman_ms,
            late_fault_ms=late_fault_ms,
        )


@dataclass(frozen=True)
class PulseTiming:
    """Edge timing: driver minimums (A4988, DRV8825, TMC2209) and how the thread waits.

    With `spin_auto` the thread spins before each edge for the p99.5 of its own measured
    wake-up latency plus a margin, at most `spin_window_ns` and at most
    `spin_duty_permille` of the step period (the CPU the spin costs); else always
    `spin_window_ns`.
    """

    step_high_ns: int = 2_500
    dir_setup_ns: int = 1_500
    spin_window_ns: int = 1_000_000
    spin_auto: bool = True
    spin_duty_permille: int = 35
    nap_ns: int = 0
    rt_priority: int = 50
    lock_memory: bool = True
    cpu: int | None = None  # the one CPU the pulse thread may run on (None: any)


@dataclass(frozen=True)
class GpioLines:
    """STEP/DIR/ENABLE as line offsets on the header's GPIO chip (BCM numbers on a Pi)."""

    step: int
    dir: int
    enable: int
    enable_active_low: bool = True
    forward_dir: int = 1  # DIR level that pushes the plunger
    chip_labels: tuple[str, ...] = DEFAULT_CHIP_LABELS
    dev_dir: str = "/dev"

    @classmethod
    def from_pinmap(cls, motor: _PinMapMotor, **kwargs: Any) -> GpioLines:
        """From pca.hw.pinmap's `motor` section."""
        if not motor.step.active_high:
            raise ValueError(f"{motor.step.key}: an active-low STEP line is not supported")
        return cls(step=motor.step.pin, dir=motor.dir.pin, enable=motor.enable.pin,
                   enable_active_low=not motor.enable.active_high,
                   forward_dir=1 if motor.dir.active_high else 0, **kwargs)


class _Line(Protocol):
    key: str
    pin: int
    active_high: bool


class _PinMapMotor(Protocol):
    step: _Line
    dir: _Line
    enable: _Line


_open_motors: weakref.WeakSet[NativeMotor] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # A pulse thread outliving the interpreter could leave the driver enabled.
    for motor in list(_open_motors):
        motor.close()


class NativeMotor:
    """Implements the Motor port (pca.controller.ports.Motor) on CLOCK_MONOTONIC.

    `gpio=None` drives the simulated backend, which records every edge (see `edges`).
    Times in and out are CLOCK_MONOTONIC plus `time_offset_ns` (0: time.monotonic_ns()).
    """

    def __init__(self, limits: SafetyLimits, *, steps_per_ml: Fraction,
                 gpio: GpioLines | None = None, timing: PulseTiming | None = None,
                 time_offset_ns: int = 0, ring_capacity: int = 1 << 20) -> None:
        if steps_per_ml <= 0:
            raise ValueError(f"steps_per_ml = {steps_per_ml} must be > 0")
        timing = timing or PulseTiming()
        self.steps_per_ml = Fraction(steps_per_ml)
        self.limits = limits
        self.time_offset_ns = time_offset_ns
        self._forward_dir = gpio.forward_dir if gpio else 1
        self._dropped = 0
        common: dict[str, Any] = dict(
            max_rate_hz=limits.max_rate_hz,
            budget_steps=limits.budget_steps,
            budget_window_ns=limits.budget_window_s * NS_PER_S,
            deadman_ns=limits.deadman_ms * 1_000_000,
            late_fault_ns=limits.late_fault_ms * 1_000_000,
            step_high_ns=timing.step_high_ns,
            dir_setup_ns=timing.dir_setup_ns,
            spin_window_ns=timing.spin_window_ns,
            spin_auto=timing.spin_auto,
            spin_duty_permille=timing.spin_duty_permille,
            nap_ns=timing.nap_ns,
            rt_priority=timing.rt_priority,
            lock_memory=timing.lock_memory,
            cpu=-1 if timing.cpu is None else timing.cpu,
        )
        if gpio is None:
            self._gen = _stepgen.Generator("sim", ring_capacity=ring_capacity, **common)
        else:
            self._gen = _stepgen.Generator(
                "chardev", chip_labels=",".join(gpio.chip_labels), dev_dir=gpio.dev_dir,
                offsets=(gpio.step, gpio.dir, gpio.enable),
                enable_active_low=gpio.enable_active_low, **common)
        _open_motors.add(self)

    @classmethod
    def from_profile(cls, profile: PumpProfile, *, budget_ml: Fraction, budget_window_s: int,
                     max_rate_ml_h: Fraction | None = None, **kwargs: Any) -> NativeMotor:
        """From a PumpProfile: steps_per_ml, and a rate cap at its bolus rate (the fastest
        the controller ever commands) unless `max_rate_ml_h` says otherwise."""
        limits = SafetyLimits.from_volume(
            steps_per_ml=profile.steps_per_ml,
            max_rate_ml_h=profile.bolus_rate_ml_h if max_rate_ml_h is None else max_rate_ml_h,
            budget_ml=budget_ml, budget_window_s=budget_window_s)
        return cls(limits, steps_per_ml=profile.steps_per_ml, **kwargs)

    # ---- volume <-> steps (the syringe calibration) -----------------------------------
    def ml_to_steps(self, volume_ml: Fraction) -> int:
        return ml_to_steps(Fraction(volume_ml), self.steps_per_ml)

    def steps_to_ml(self, steps: int) -> Fraction:
        return Fraction(steps) / self.steps_per_ml

    def rate_for(self, rate_ml_h: Fraction) -> StepRate:
        return StepRate.from_fraction(Fraction(rate_ml_h) * self.steps_per_ml / 3600)

    # ---- the Motor port ------------------------------------------------------------------
    def run(self, rate: StepRate, limit: int, now_ns: int, *, reverse: bool = False) -> None:
        """`reverse` pulls the plunger back (service only; the controller never asks)."""
        # A refused command (latched fault, or this one broke the rate cap) changes nothing
        # here; the controller learns why from fault() on its next tick.
        level = self._forward_dir ^ 1 if reverse else self._forward_dir
        self._gen.run(rate.num, rate.den, limit, now_ns - self.time_offset_ns, level)

    def count(self, now_ns: int) -> int:
        return int(self._gen.count())

    def time_of_count(self, count: int) -> int | None:
        st = self._gen.status()
        if count > st["limit"] or st["rate_num"] == 0:
            return None
        if count <= st["seg_base"]:
            return int(st["seg_t0_ns"]) + self.time_offset_ns
        try:
            t = _stepgen.step_time(st["seg_t0_ns"], count - st["seg_base"], st["rate_num"],
                                   st["rate_den"])
        except OverflowError:
            return None  # after the 64-bit clock ends (a rate the therapy checks refuse)
        return int(t) + self.time_offset_ns

    def halt(self, now_ns: int) -> int:
        return int(self._gen.abort())

    def heartbeat(self, now_ns: int) -> None:
        self._gen.heartbeat()

    def fault(self) -> str | None:
        st = self._gen.status()
        return str(st["fault_text"]) if st["fault"] else None

    # ---- beyond the port -------------------------------------------------------------------
    def clear_fault(self) -> None:
        """After a clinician clears motor_fault: the driver stays off until the next run."""
        self._gen.clear_fault()

    def fault_code(self) -> str | None:
        st = self._gen.status()
        return str(st["fault_name"]) if st["fault"] else None

    @property
    def enabled(self) -> bool:
        return bool(self._gen.status()["enabled"])

    def status(self) -> dict[str, Any]:
        """Native state: count, segment, fault, scheduling class obtained, worst lateness."""
        return dict(self._gen.status())

    def edges(self) -> list[tuple[int, int, int]]:
        """Edges (t_ns, line, value) recorded since the last call (simulated backend only)."""
        edges, dropped = self._gen.edges()
        if dropped > self._dropped:
            lost, self._dropped = dropped - self._dropped, dropped
            raise RuntimeError(f"{lost} edges were lost to a full ring; read more often")
        return list(edges)

    def close(self) -> None:
        """Stop the pulse thread; STEP low, ENABLE off. Idempotent."""
        self._gen.close()
        _open_motors.discard(self)

    def __enter__(self) -> NativeMotor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LINE_STEP: int = _stepgen.LINE_STEP
LINE_DIR: int = _stepgen.LINE_DIR
LINE_ENABLE: int = _stepgen.LINE_ENABLE
