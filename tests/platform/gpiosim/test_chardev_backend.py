"""native/backend_chardev.c against the kernel's GPIO character device on gpio-sim chips."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import pytest
from simkit import (
    CHANGED_REQUESTED,
    FLAG_ACTIVE_LOW,
    FLAG_OUTPUT,
    Layout,
    SimChip,
)

from pca.controller.ports import StepRate
from pca.hw.motor import GpioLines, NativeMotor, PulseTiming, SafetyLimits
from pca.hw.pinmap import load_pinmap

REPO = Path(__file__).resolve().parents[3]
PINMAP = load_pinmap(REPO / "hardware" / "pinout.toml")
LINES = GpioLines.from_pinmap(PINMAP.motor)  # type: ignore[arg-type]
STEP, DIR, ENABLE = LINES.step, LINES.dir, LINES.enable
LIMITS = SafetyLimits(max_rate_hz=1000, budget_steps=1_000_000, budget_window_s=3600)
SLOW = StepRate(4)  # 4 steps/s: the lines hold still long enough to read back


def open_motor(**gpio: object) -> NativeMotor:
    lines = GpioLines(**{**LINES.__dict__, **gpio})  # type: ignore[arg-type]
    return NativeMotor(LIMITS, steps_per_ml=Fraction(1000), gpio=lines,
                       timing=PulseTiming(lock_memory=False))


@pytest.fixture
def motors() -> Iterator[Callable[..., NativeMotor]]:
    made: list[NativeMotor] = []

    def make(**gpio: object) -> NativeMotor:
        m = open_motor(**gpio)
        made.append(m)
        return m

    yield make
    for m in made:
        m.close()


def wait_until(cond: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def board_pulls(chip: SimChip) -> None:
    """The board's resistors: 10k pull-downs on STEP and DIR, a 10k pull-up on nENABLE."""
    chip.pull(STEP, 0)
    chip.pull(DIR, 0)
    chip.pull(ENABLE, 1)


@pytest.mark.parametrize("board", ["pi3", "pi4", "pi5"])
def test_chip_is_found_by_its_label_among_other_chips(board: str, make_chip: Callable[..., SimChip],
                                                      motors: Callable[..., NativeMotor]) -> None:
    decoy = make_chip(Layout("expander", "gpio-expander", 16, ""))  # gpiochip0: not the Pi's
    chip = make_chip(board)
    motors()
    assert chip.info(STEP).used and chip.info(DIR).used and chip.info(ENABLE).used
    assert not any(decoy.info(n).used for n in range(16))


def test_lines_are_requested_with_the_consumer_name(make_chip: Callable[..., SimChip],
                                                    motors: Callable[..., NativeMotor]) -> None:
    chip = make_chip("pi4")
    motors()
    for offset in (STEP, DIR, ENABLE):
        info = chip.info(offset)
        assert (info.consumer, bool(info.flags & FLAG_OUTPUT)) == ("pca-stepgen", True), offset


def test_enable_is_inactive_from_the_first_instant_of_the_request(
        make_chip: Callable[..., SimChip], motors: Callable[..., NativeMotor]) -> None:
    chip = make_chip("pi4")
    board_pulls(chip)
    watch = chip.watch([STEP, DIR, ENABLE])
    try:
        motors()
        events = [(kind, info) for kind, info in watch.events() if info.offset == ENABLE]
    finally:
        watch.close()
    # The kernel's first record of ENABLE is the request itself, already output and active-low
    # (logical 0 = pin high = driver off): it is never reconfigured after being driven.
    assert events, "no line-info event for ENABLE"
    kind, info = events[0]
    assert kind == CHANGED_REQUESTED
    assert info.flags & (FLAG_OUTPUT | FLAG_ACTIVE_LOW) == FLAG_OUTPUT | FLAG_ACTIVE_LOW
    assert len(events) == 1, events
    assert (chip.value(ENABLE), chip.value(STEP), chip.value(DIR)) == (1, 0, 0)


def test_active_high_enable_starts_low(make_chip: Callable[..., SimChip],
                                       motors: Callable[..., NativeMotor]) -> None:
    chip = make_chip("pi4")
    chip.pull(ENABLE, 1)  # even against a pull-up, an active-high EN must be driven low
    motors(enable_active_low=False)
    assert chip.value(ENABLE) == 0
    assert not chip.info(ENABLE).flags & FLAG_ACTIVE_LOW


def test_step_dir_enable_read_back_while_running_and_after_halt(
        make_chip: Callable[..., SimChip], motors: Callable[..., NativeMotor]) -> None:
    chip = make_chip("pi4")
    board_pulls(chip)
    m = motors()
    m.run(SLOW, 1000, time.monotonic_ns())
    assert wait_until(lambda: m.count(0) >= 2)
    m.heartbeat(0)
    # Running forward: driver enabled (nEN low), DIR at the forward level, STEP low between pulses.
    assert (chip.value(ENABLE), chip.value(DIR), chip.value(STEP)) == (0, LINES.forward_dir, 0)
    m.halt(time.monotonic_ns())
    assert wait_until(lambda: chip.value(ENABLE) == 1)
    assert chip.value(STEP) == 0
    m.run(SLOW, m.count(0) + 1000, time.monotonic_ns(), reverse=True)
    assert wait_until(lambda: chip.value(DIR) == LINES.forward_dir ^ 1)
    assert chip.value(ENABLE) == 0
    m.halt(time.monotonic_ns())


def test_lines_are_released_on_close(make_chip: Callable[..., SimChip]) -> None:
    chip = make_chip("pi4")
    board_pulls(chip)
    m = open_motor()
    m.run(SLOW, 1000, time.monotonic_ns())
    assert wait_until(lambda: chip.value(ENABLE) == 0)
    m.close()
    assert not any(chip.info(n).used for n in (STEP, DIR, ENABLE))
    assert chip.value(ENABLE) == 1  # the pull-up holds the driver off once released
    again = open_motor()  # and the lines can be claimed again
    again.close()


CHILD = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from test_chardev_backend import open_motor, SLOW
    m = open_motor()
    m.run(SLOW, 10**6, time.monotonic_ns())
    print("running", flush=True)
    while True:
        m.heartbeat(0)
        time.sleep(0.1)
""")


def test_lines_are_released_when_the_process_is_killed(make_chip: Callable[..., SimChip]) -> None:
    chip = make_chip("pi4")
    board_pulls(chip)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(Path(__file__).parent)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "running"
        assert wait_until(lambda: chip.value(ENABLE) == 0)
        assert chip.info(ENABLE).consumer == "pca-stepgen"
    finally:
        child.kill()  # SIGKILL: no atexit, no close(); only the kernel cleans up
        child.wait(timeout=30)
    assert wait_until(lambda: not any(chip.info(n).used for n in (STEP, DIR, ENABLE)))
    assert chip.value(ENABLE) == 1


def test_a_line_owned_by_another_consumer_is_refused_naming_the_owner(
        make_chip: Callable[..., SimChip]) -> None:
    chip = make_chip("pi4", hogs={ENABLE: "other-owner"})
    with pytest.raises(OSError) as err:
        open_motor()
    text = str(err.value)
    assert f"line {ENABLE} (ENABLE)" in text and "other-owner" in text, text
    assert "busy" in text.lower(), text
    assert not chip.info(STEP).used and not chip.info(DIR).used  # nothing half-claimed


def test_a_missing_chip_is_refused_naming_the_chips_present(
        make_chip: Callable[..., SimChip]) -> None:
    make_chip(Layout("expander", "gpio-expander", 16, ""))
    with pytest.raises(OSError) as err:
        open_motor()
    text = str(err.value)
    assert "no GPIO chip labelled pinctrl-rp1,pinctrl-bcm2711,pinctrl-bcm2835" in text, text
    assert '"gpio-expander"' in text, text


DENIED_CHILD = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    from test_chardev_backend import open_motor
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)  # nobody, in no gpio group
    try:
        open_motor()
    except OSError as err:
        print(err)
        sys.exit(3)
    print("opened")
""")


def test_denied_permission_is_refused_saying_so(make_chip: Callable[..., SimChip]) -> None:
    chip = make_chip("pi4")
    os.chmod(chip.dev, 0o600)  # root only, as without hardware/99-pca-gpio.rules
    run = subprocess.run([sys.executable, "-c", DENIED_CHILD, str(Path(__file__).parent)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 3, (run.stdout, run.stderr)
    assert "permission denied" in run.stdout and chip.chip_name in run.stdout, run.stdout
    assert "gpio group" in run.stdout, run.stdout
    assert not chip.info(STEP).used
