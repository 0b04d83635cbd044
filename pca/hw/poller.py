"""The input thread: samples every polled input at a fixed period on the monotonic clock."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from pca.hw.lines import MS

log = logging.getLogger(__name__)


class InputPoller:
    """Calls `poll(now_ns)` every `period_ns` on its own thread until stopped.

    The devices never read a clock; this thread is the only place the real
    clock enters pca/hw, so the same devices run in virtual time under tests.
    A failing poll is logged and counted, and `healthy()` lets the controller's
    watchdog notice an input thread that has stopped sampling.

    With `at_rest` (True while every input is settled and the next change will arrive
    as an edge) the thread samples only every `idle_period_ns` while at rest, and
    `kick()` (the lines' edge callbacks) makes it sample at once and then every
    `period_ns` again until everything has settled: a press is seen as soon as before,
    and an idle pump does not wake 100 times a second.
    """

    def __init__(self, poll: Callable[[int], None], *, period_ns: int = 10 * MS,
                 clock: Callable[[], int] = time.monotonic_ns, name: str = "pca-inputs",
                 at_rest: Callable[[], bool] | None = None,
                 idle_period_ns: int = 1000 * MS) -> None:
        if period_ns <= 0 or idle_period_ns < period_ns:
            raise ValueError("period_ns must be > 0 and idle_period_ns >= period_ns")
        self._poll = poll
        self._period_ns = period_ns
        self._at_rest = at_rest
        self._idle_period_ns = idle_period_ns
        self._kick = threading.Event()
        self.polls = 0
        self._clock = clock
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_poll_ns: int | None = None
        self.errors = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("input poller already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """Sample now (any thread; gpiozero's edge callbacks call it)."""
        self._kick.set()

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def healthy(self, now_ns: int, max_age_ns: int | None = None) -> bool:
        """True while polls keep happening (the last one within max_age_ns; default
        250 ms, or 2.5 idle periods when the thread sleeps at rest)."""
        if max_age_ns is None:
            max_age_ns = max(250 * MS, 5 * self._idle_period_ns // 2 if self._at_rest else 0)
        return self.last_poll_ns is not None and now_ns - self.last_poll_ns <= max_age_ns

    def _run(self) -> None:
        deadline_ns = self._clock()
        while True:
            wait_ns = deadline_ns - self._clock()
            if wait_ns > 0:
                self._kick.wait(wait_ns / 1e9)
            self._kick.clear()  # before sampling: an edge from here on is seen next time
            if self._stop.is_set():
                return
            now_ns = self._clock()
            self.polls += 1
            try:
                self._poll(now_ns)
            except Exception:
                self.errors += 1
                if self.errors == 1 or self.errors % 1000 == 0:
                    log.exception("input poll failed (%d failures so far)", self.errors)
            else:
                self.last_poll_ns = now_ns
            if self._at_rest is not None and self._at_rest():
                deadline_ns = now_ns + self._idle_period_ns
                continue
            deadline_ns += self._period_ns
            if deadline_ns < now_ns or deadline_ns > now_ns + self._period_ns:
                # fell behind (suspend, overload) or woken early: do not burst to catch up
                deadline_ns = now_ns + self._period_ns
