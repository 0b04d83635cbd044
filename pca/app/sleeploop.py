"""The daemon's event-driven control loop: it sleeps until an input arrives or a deadline falls due.

`pca run` used to tick the pump every 50 ms whether or not anything was due: 20 wake-ups
a second at rest. This loop ticks when

- an input arrives: the pump's `on_input` hook signals the `Waker` the moment any thread
  (gpiozero callbacks through the input thread, the keypad scanner, the pharmacy-file
  watcher, the early sink) calls `Pump.put`, so a press is handled at once instead of at
  the next 50 ms tick;
- the pump's own next deadline falls due (`Pump.next_wakeup_ns`: a motor grant, the end of
  a dose, a lockout or a dose-limit window ending, a keypad session expiring, the end of
  a silence, a monitor reading going stale);
- the pulse thread needs a heartbeat (every HEARTBEAT_NS while a segment runs, well
  inside its 1 s deadman);
- housekeeping is due (the pharmacy-file watcher and the systemd watchdog ping, once per
  HOUSEKEEPING_NS or half the watchdog period, whichever is shorter: the ping comes from
  the loop at its own deadline, so a loop that stops ticking stops pinging);
- sound or light is being played: while a high or medium alarm is active, around each
  burst of a low-priority alarm (one 200 ms pulse every 20 s: the loop wakes for it and
  sleeps between), and for BUSY_NS after an input (tones, the screen answering a key),
  it ticks at the configured period, because the alarm patterns are built on that 50 ms
  grid;
- a respiratory monitor is wired: at least every MONITOR_NS, the reader's batch period,
  so a reading is acted on as soon as it could be before.

`daemon.ControlLoop` stays as the fixed-tick variant, the baseline of `pca bench power`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from pca.app.notify import Notifier
from pca.app.storage_watch import StorageWatchdog
from pca.hw.alarm_patterns import BURSTS

MS = 1_000_000
HEARTBEAT_NS = 450 * MS
HOUSEKEEPING_NS = 1000 * MS
BUSY_NS = 1000 * MS
MONITOR_NS = 200 * MS


class Waker:
    """A flag under a condition variable: inputs set it, the loop sleeps until it is set
    or its deadline passes (one futex wait, no polling)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._set = False
        self.signals = 0

    def signal(self) -> None:
        with self._cond:
            self._set = True
            self.signals += 1
            self._cond.notify()

    def wait(self, timeout_ns: int) -> bool:
        """Sleep up to `timeout_ns`; True if signalled (the flag is consumed)."""
        with self._cond:
            if not self._set and timeout_ns > 0:
                self._cond.wait(timeout_ns / 1e9)
            woken, self._set = self._set, False
            return woken


class _Stop(threading.Event):
    """`loop.stop.set()` (SIGTERM) also wakes the sleeping loop."""

    def __init__(self, waker: Waker) -> None:
        super().__init__()
        self._waker = waker

    def set(self) -> None:
        super().set()
        self._waker.signal()


class SleepingLoop:
    """Ticks the pump on events and deadlines only; pings the watchdog while healthy.

    Same interface as `daemon.ControlLoop` (`run`, `stop`, `hang`, `ticks`, `status`).
    `clock` and `waker` are injected so tests run the very same loop in virtual time.
    """

    def __init__(self, wiring: Any, tick_ms: int, notifier: Notifier, watcher: Any = None, *,
                 clock: Callable[[], int] = time.monotonic_ns, waker: Waker | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.w = wiring
        self.watcher = watcher
        self.period_ns = tick_ms * MS
        self.notifier = notifier
        self.clock = clock
        self.waker = waker or Waker()
        self.on_tick = on_tick  # after each tick (the battery supervisor)
        self.stop = _Stop(self.waker)
        self.hang = threading.Event()  # test hook: simulate a hung loop
        self.ticks = 0
        self.woken = 0  # ticks that an input caused
        self.power: Any = None  # a PowerSupervisor: the clean stop at depletion
        self.exit_code = 0
        self.fault: BaseException | None = None  # what a tick raised (then the loop holds)
        self._priority: str | None = None  # the highest alarm, and since when (its pattern)
        self._priority_since_ns = 0
        self.storage = StorageWatchdog(wiring)
        ping_ns = (notifier.watchdog_ns or 0) // 2
        self.house_ns = min(HOUSEKEEPING_NS, ping_ns) if ping_ns else HOUSEKEEPING_NS
        self.ping = bool(ping_ns)
        wiring.pump.on_input = self.waker.signal

    def status(self) -> str:
        snap = self.w.pump.snapshot()
        alarms = ",".join(snap.alarms) or "none"
        return f"STATUS=state={snap.state} rate_ml_h={snap.rate_ml_h:g} alarms={alarms}"

    def deadline_ns(self, now_ns: int, house_due_ns: int, busy_until_ns: int) -> int:
        """When the loop must tick next if no input arrives first."""
        pump = self.w.pump
        due = [house_due_ns]
        wake = pump.next_wakeup_ns()
        if wake is not None:
            due.append(wake)
        if pump.seg is not None:
            due.append(now_ns + HEARTBEAT_NS)
        priority = pump.alarms.highest()
        if priority != self._priority:
            self._priority, self._priority_since_ns = priority, now_ns
        if now_ns < busy_until_ns or priority in ("high", "medium"):
            due.append(now_ns + self.period_ns)
        elif priority == "low" and not pump.alarms.silenced(pump.time.now_ns):
            burst = BURSTS["low"]
            period = burst.period_ns or burst.burst_ns
            pos = (now_ns - self._priority_since_ns) % period
            if pos < burst.burst_ns + self.period_ns:
                due.append(now_ns + self.period_ns)  # in the pulse: on the grid
            else:
                due.append(now_ns - pos + period)  # the next burst's onset
        if getattr(self.w, "monitor", None) is not None:
            due.append(now_ns + MONITOR_NS)
        return min(due)

    def run(self) -> None:
        try:
            self._run()
        except Exception as err:  # never die silently: halt, alarm, hold (issue 17)
            from pca.app.loopguard import hold_after_fault

            self.fault = err
            hold_after_fault(self.w, err, self.stop, self.notifier)

    def _run(self) -> None:
        now = self.clock()
        last_house = now - self.house_ns
        busy_until = now + BUSY_NS
        while not self.stop.is_set():
            if self.hang.is_set():
                time.sleep(0.05)  # the loop is "stuck": no ticks, no pings
                continue
            self.w.pump.tick()
            self.ticks += 1
            if self.on_tick is not None:
                self.on_tick()
            if self.power is not None:
                reason = self.power.depleted()
                if reason is not None:
                    self.power.power_down(reason)
                    self.exit_code = self.power.hold(self.stop)
                    return
            now = self.clock()
            # While heartbeats run, housekeeping rides on the one before it falls due
            # (at most HEARTBEAT_NS early) instead of waking the loop on its own.
            slack = HEARTBEAT_NS if self.w.pump.seg is not None else 0
            if now - last_house >= self.house_ns - slack:
                self.storage.check()  # SR-7: the database file still there and writable
                if self.watcher is not None:
                    for item in self.watcher.poll():
                        self.w.pump.put(item)
                if self.ping:
                    self.notifier.send("WATCHDOG=1", self.status())
                last_house = now
            deadline = self.deadline_ns(now, last_house + self.house_ns, busy_until)
            if self.waker.wait(deadline - self.clock()):
                self.woken += 1
                busy_until = self.clock() + BUSY_NS
