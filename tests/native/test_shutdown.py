"""The pulse thread ends cleanly with the interpreter: joined, STEP low, driver disabled."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import atexit, json, sys, time

    state = {}

    def report():
        # Registered before pca.hw.motor, so it runs after the motor's own exit hook.
        motor = state["motor"]
        edges = state["edges"] + motor.edges()
        last = {}
        for t, line, value in edges:
            last[line] = value
        status = motor.status()
        print(json.dumps({"running": status["running"], "last": last, "steps": motor.count(0),
                          "sched": status["sched"], "memory_locked": status["memory_locked"]}))
        sys.stdout.flush()

    atexit.register(report)

    from fractions import Fraction
    from pca.controller.ports import StepRate
    from pca.hw.motor import NativeMotor, PulseTiming, SafetyLimits

    motor = NativeMotor(SafetyLimits(max_rate_hz=2000, budget_steps=10**6,
                                     budget_window_s=3600),
                        steps_per_ml=Fraction(15480), timing=PulseTiming(lock_memory=True))
    state["motor"] = motor
    motor.run(StepRate(1000), 10**6, time.monotonic_ns())
    while motor.count(0) < 20:
        time.sleep(0.005)
    state["edges"] = motor.edges()
    {exit}
""")


def run_script(exit_line: str) -> dict[str, object]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT.replace("{exit}", exit_line)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr
    report: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def test_thread_is_joined_and_lines_safe_at_interpreter_exit() -> None:
    report = run_script("pass  # falls off the end while stepping")
    assert report["running"] is False
    last = report["last"]
    assert isinstance(last, dict)
    assert last["0"] == 0 and last["2"] == 0  # STEP low, ENABLE off
    assert isinstance(report["steps"], int) and report["steps"] >= 20
    assert report["sched"] in ("SCHED_FIFO", "SCHED_OTHER+slack1ns")
    if os.geteuid() == 0:  # as root both real-time privileges are there to be had
        assert report["sched"] == "SCHED_FIFO" and report["memory_locked"] is True


def test_thread_is_joined_when_the_program_dies_of_an_exception() -> None:
    report = run_script("raise SystemExit(1)")
    assert report["running"] is False
    last = report["last"]
    assert isinstance(last, dict) and last["2"] == 0
