"""SR-4 for the control loop itself (issue 17 item 4): an exception in a tick halts the motor,
raises and keeps sounding the high internal_fault alarm, logs what was raised and where, and
stops the systemd watchdog pings; the loop thread never dies silently."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pca.app.config import Config
from pca.app.daemon import ControlLoop, wire
from pca.app.loopguard import hold_after_fault
from pca.app.sleeploop import SleepingLoop
from pca.store.eventlog import export_rows


class Notes:
    """A systemd notifier that remembers what it was told (watchdog every 100 ms)."""

    def __init__(self) -> None:
        self.watchdog_ns = 200_000_000
        self.sent: list[tuple[float, str]] = []

    def send(self, *lines: str) -> None:
        self.sent.extend((time.monotonic(), line) for line in lines)


class Horn:
    def __init__(self) -> None:
        self.calls: list[Any] = []

    def annunciate(self, priority: Any, silenced: bool, now_ns: int) -> None:
        self.calls.append(priority)

    def tone(self, kind: Any, now_ns: int) -> None:
        pass


def broken_tick(pump: Any, after: int) -> None:
    real = pump.tick
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] > after:
            raise OverflowError("step 1 at 43/10000000000000 steps/s does not fit")
        real()

    pump.tick = tick


@pytest.mark.parametrize("kind", ["fixed", "sleeping"])
def test_sr4_an_exception_in_a_tick_halts_alarms_logs_and_stops_the_watchdog(
        tmp_path: Path, kind: str) -> None:
    wiring = wire(Config(), sim=True, db=tmp_path / "events.db")
    try:
        horn = Horn()
        wiring.pump.annunciator = horn
        halts: list[int] = []
        real_halt = wiring.pump.motor.halt
        wiring.pump.motor.halt = lambda now: (halts.append(now), real_halt(now))[1]
        notes = Notes()
        loop = ControlLoop(wiring, 20, notes) if kind == "fixed" else \
            SleepingLoop(wiring, 20, notes)  # type: ignore[arg-type]
        broken_tick(wiring.pump, after=15)
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while loop.fault is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert isinstance(loop.fault, OverflowError)
        faulted_at = time.monotonic()
        time.sleep(0.8)
        assert thread.is_alive()  # holding, not dead
        assert "internal_fault" in wiring.pump.alarms.active
        assert wiring.pump.alarms.priority_of("internal_fault") == "high"
        assert halts and horn.calls[-5:] == ["high"] * 5  # still sounding
        pings = [t for t, line in notes.sent if line == "WATCHDOG=1"]
        assert pings and all(t < faulted_at for t in pings)  # pinged before, never after
        loop.stop.set()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        wiring.stack.close()
    [event] = [e for e in export_rows(tmp_path / "events.db") if e["type"] == "internal_fault"]
    assert event["error"] == "OverflowError" and "does not fit" in event["message"]
    assert event["where"].startswith("test_loop_fault.py:") and "in tick" in event["where"]
    raised = [e for e in export_rows(tmp_path / "events.db") if e["type"] == "alarm_raised"]
    assert any(e["alarm"] == "internal_fault" and e["priority"] == "high" for e in raised)


def test_sr4_the_fault_is_one_line_on_stderr_naming_type_message_and_place(
        tmp_path: Path) -> None:
    wiring = wire(Config(), sim=True, db=tmp_path / "events.db")
    try:
        try:
            raise ValueError("a bad value")
        except ValueError as err:
            caught = err
        stop = threading.Event()
        stop.set()  # record only, no hold
        out = io.StringIO()
        hold_after_fault(wiring, caught, stop, err_out=out)
    finally:
        wiring.stack.close()
    line = out.getvalue().strip()
    assert "\n" not in line
    assert "INTERNAL FAULT: ValueError: a bad value" in line and "test_loop_fault.py:" in line


def test_sr4_a_rate_too_slow_for_the_64_bit_schedule_never_overflows_the_motor() -> None:
    from fractions import Fraction

    from pca.controller.ports import StepRate
    from pca.hw.sim_motor import VirtualMotor

    # 1e-12 mL/h at 15480 steps/mL: the first step would come after year 9,000.
    rate = StepRate.from_fraction(Fraction(1, 10**12) * 15480 / 3600)
    motor = VirtualMotor()
    motor.run(rate, 10, 10 * 10**9)
    assert motor.time_of_count(1) is None
    assert motor.count(10**18) == 0
