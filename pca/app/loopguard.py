"""What a control loop does when a tick raises: it never dies silently (issue 17 item 4).

Before, an exception in `Pump.tick` (1e-12 mL/h reaching the step scheduler) ended the
control thread while the state still read "running" and systemd kept hearing nothing
wrong until its watchdog timeout. Now the loop that catches it hands the exception here:
the motor is halted, the event log gets `internal_fault` with the exception's type,
message and where it was raised, the high `internal_fault` alarm is raised, the same
one line goes to stderr (the journal), and the loop then holds: the high alarm keeps
sounding, the motor is halted again every period, and the systemd watchdog is no longer
pinged, so systemd restarts the daemon (which comes up with the alarm active again, as
any alarm the log left open, and `delivery_interrupted`).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import Any, TextIO

from pca.controller.alarms import fault_site

HOLD_PERIOD_S = 0.05


def fault_line(err: BaseException) -> str:
    return (f"pca run: INTERNAL FAULT: {type(err).__name__}: {str(err)[:300]} "
            f"(at {fault_site(err)}); motor halted, delivery stopped, alarm sounding; "
            "the watchdog is no longer pinged")


def hold_after_fault(wiring: Any, err: BaseException, stop: threading.Event,
                     notifier: Any = None, *, err_out: TextIO | None = None) -> None:
    """Record the fault, then keep the pump safe and loud until `stop` (SIGTERM) or until
    systemd's watchdog ends the process. Never raises."""
    pump = wiring.pump
    line = fault_line(err)
    with contextlib.suppress(Exception):
        print(line, file=err_out or sys.stderr, flush=True)
    with contextlib.suppress(Exception):
        pump.internal_fault(err)
    if notifier is not None:
        with contextlib.suppress(Exception):
            notifier.send("STATUS=internal fault: motor halted, alarm sounding")
    while not stop.is_set():
        now = time.monotonic_ns()
        with contextlib.suppress(Exception):
            now = pump.pump_ns()  # the time the pump's ports are driven in
        with contextlib.suppress(Exception):
            pump.motor.halt(now)
        with contextlib.suppress(Exception):
            pump.annunciator.annunciate("high", False, now)  # never silenced: nothing runs
        stop.wait(HOLD_PERIOD_S)
