"""The event-driven control loop against the fixed tick, in virtual time, and its wake-ups."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from fractions import Fraction
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pca.app.notify import Notifier
from pca.app.scenario import QuietAnnunciator, VirtualClock
from pca.app.sleeploop import SleepingLoop, Waker
from pca.controller.inputs import BolusButton, ClinicianCommand, Input, Key, PanelCommand, Sensor
from pca.controller.ports import NS_PER_S, Event, StoredEvent
from pca.controller.profile import PumpProfile
from pca.controller.pump import Pump
from pca.hw.sim_motor import VirtualMotor
from pca.therapy.drugs import parse_library

PIN = "482916"
MS = 1_000_000
TICK_NS = 50 * MS
HORIZON_NS = 150 * NS_PER_S
LIBRARY = parse_library([{
    "name": "testmorphine", "unit": "mg", "concentrations_per_ml": [1.0],
    "dose_limit_required": True,
    "limits": {"basal_rate_per_h": [0.0, 0.0, 5.0, 5.0], "pca_dose": [0.01, 0.01, 2.0, 2.0],
               "lockout_min": [0.05, 0.05, 60, 60], "dose_limit_window_h": [1, 1, 12, 12],
               "max_pca_per_h": [1, 1, 60, 60], "dose_limit": [0.1, 0.1, 100.0, 100.0],
               "loading_dose": [0.0, 0.0, 1.0, 1.0],
               "clinician_bolus_max": [0.0, 0.0, 1.0, 1.0]}}], "test")
RX = {"drug": "testmorphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
      "basal_rate_per_h": 0.1, "pca_dose": 0.05, "lockout_min": 0.5, "max_pca_per_h": 60,
      "dose_limit": 0.15, "dose_limit_window_h": 1}
# What each kind of input puts on the queue (all at one instant).
INPUTS: dict[str, list[Input]] = {
    "press": [BolusButton(True), BolusButton(False)],
    "unlock": [Key(k) for k in PIN + "#"],
    "occlusion_on": [Sensor("occlusion", True)],
    "occlusion_off": [Sensor("occlusion", False)],
    "clear_restart": [ClinicianCommand("clear_alarm", PIN), PanelCommand("start")],
    "silence": [PanelCommand("silence")],
}
# Events compared between the two loops, and the fields that must agree.
COMPARED = {"pca_request": ("outcome", "reason"), "alarm_raised": ("alarm",),
            "alarm_cleared": ("alarm",), "session_locked": ("reason",),
            "state_changed": ("from", "to"), "dose_started": ("source",),
            "dose_ended": ("source", "completion"), "auth": ("outcome",),
            "alarm_silenced": ()}


class ListLog:
    """An in-memory event log (the durable one is tested elsewhere)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.pins: dict[str, str] = {}

    def append(self, event: Event) -> None:
        self.events.append(event)

    def flush(self) -> None:
        pass

    def replay(self) -> Iterable[StoredEvent]:
        return iter(())

    def get_pin_hash(self, role: str) -> str | None:
        return self.pins.get(role)

    def set_pin_hash(self, role: str, encoded: str) -> None:
        self.pins[role] = encoded


def _pump() -> tuple[Pump, VirtualClock, ListLog]:
    clock = VirtualClock(1_770_000_000 * NS_PER_S)
    log = ListLog()
    pump = Pump.boot(motor=VirtualMotor(), annunciator=QuietAnnunciator(), log=log, clock=clock,
                     library=LIBRARY, profile=PumpProfile(syringe_ml=Fraction(100)),
                     credentials=log)
    pump.provision_pin(PIN)
    pump.put(ClinicianCommand("program", PIN, {"prescription": RX}))
    pump.put(PanelCommand("start"))
    pump.tick()
    return pump, clock, log


def run_fixed_tick(schedule: list[tuple[int, str]]) -> ListLog:
    """Today's loop: a tick every 50 ms; an input waits for the next tick."""
    pump, clock, log = _pump()
    pending = list(schedule)
    t = 0
    while t <= HORIZON_NS:
        clock.now_ns = t
        while pending and pending[0][0] <= t:
            for item in INPUTS[pending.pop(0)[1]]:
                pump.put(item)
        pump.tick()
        t += TICK_NS
    return log


class VirtualWaker(Waker):
    """Sleeps in virtual time: jumps to the deadline or to the next scheduled input."""

    def __init__(self, clock: VirtualClock, schedule: list[tuple[int, str]]) -> None:
        super().__init__()
        self.clock = clock
        self.pending = list(schedule)
        self.pump: Pump | None = None
        self.loop: SleepingLoop | None = None
        self.sleeps: list[int] = []

    def wait(self, timeout_ns: int) -> bool:
        assert self.pump is not None and self.loop is not None
        if self._set:
            self._set = False
            return True
        self.sleeps.append(timeout_ns)
        target = self.clock.now_ns + max(timeout_ns, 0)
        if self.pending and self.pending[0][0] <= min(target, HORIZON_NS):
            t, kind = self.pending.pop(0)
            self.clock.now_ns = max(self.clock.now_ns, t)
            for item in INPUTS[kind]:
                self.pump.put(item)  # the pump's on_input signals us
            self._set = False
            return True
        self.clock.now_ns = target
        if target > HORIZON_NS:
            self.loop.stop.set()
        return False


def run_event_driven(schedule: list[tuple[int, str]]) -> tuple[ListLog, VirtualWaker, Pump]:
    pump, clock, log = _pump()
    waker = VirtualWaker(clock, schedule)
    wiring = type("W", (), {"pump": pump, "monitor": None})()
    loop = SleepingLoop(wiring, 50, Notifier(address=""), clock=clock.monotonic_ns,
                        waker=waker)
    waker.pump, waker.loop = pump, loop
    loop.run()
    return log, waker, pump


def _compared(log: ListLog) -> list[tuple[int, tuple[Any, ...]]]:
    return [(e.pump_ns, (e.type, *(e.fields.get(k) for k in COMPARED[e.type])))
            for e in log.events if e.type in COMPARED]


schedules = st.lists(
    st.tuples(st.integers(1, HORIZON_NS // TICK_NS - 1).map(lambda k: k * TICK_NS),
              st.sampled_from(sorted(INPUTS))),
    max_size=12, unique_by=lambda x: x[0]).map(sorted)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedules)
def test_event_driven_loop_never_misses_a_deadline(schedule: list[tuple[int, str]]) -> None:
    fixed = _compared(run_fixed_tick(schedule))
    event, waker, _ = run_event_driven(schedule)
    driven = _compared(event)
    # The same grants, denials, alarms, relocks and doses, in the same order...
    assert [what for _, what in driven] == [what for _, what in fixed]
    for (t_event, what), (t_fixed, _) in zip(driven, fixed, strict=True):
        # ... each no later than the fixed tick had it, and at most one tick earlier
        # (the fixed tick rounds a deadline up to its 50 ms grid; inputs sit on the grid,
        # so everything they cause happens at the very same virtual time).
        assert t_fixed - TICK_NS < t_event <= t_fixed, (what, t_event, t_fixed)
        if what[0] in ("pca_request", "auth", "alarm_silenced", "session_locked"):
            assert t_event == t_fixed, what
    assert max(waker.sleeps) <= 1000 * MS  # the housekeeping deadline bounds every sleep


def test_the_loop_sleeps_between_deadlines_at_basal() -> None:
    _log, waker, pump = run_event_driven([])
    ticks_per_s = len(waker.sleeps) / (HORIZON_NS / NS_PER_S)
    # Heartbeat (450 ms), housekeeping (1 s) and grants only: far fewer than 20 a second.
    assert ticks_per_s < 4, ticks_per_s
    assert pump.state == "running" and pump.snapshot().delivered_steps["basal"] > 0


def test_a_put_from_another_thread_wakes_the_real_loop_at_once() -> None:
    pump, _clock, _log = _pump()
    wiring = type("W", (), {"pump": pump, "monitor": None})()
    loop = SleepingLoop(wiring, 50, Notifier(address=""))
    pump.tick()
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while loop.ticks < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        woken_before = loop.woken
        pump.put(PanelCommand("silence"))
        while loop.woken == woken_before and time.monotonic() < deadline:
            time.sleep(0.001)
        assert loop.woken > woken_before  # the input woke it (not a timeout)
    finally:
        loop.stop.set()
        thread.join(5)
    assert not thread.is_alive()  # stop wakes a sleeping loop too
