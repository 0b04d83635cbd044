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
    """

    def __init__(self, poll: Callable[[int], None], *, period_ns: int = 10 * MS,
                 clock: Callable[[], int] = time.monotonic_ns, name: str = "pca-inputs") -> None:
        if period_ns <= 0:
            raise ValueError("period_ns must be > 0")
        self._poll = poll
        self._period_ns = period_ns
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

    def stop(self, timeout_s: float = 1.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def healthy(self, now_ns: int, max_age_ns: int = 250 * MS) -> bool:
        """True while polls keep happening (the last one within max_age_ns)."""
        return self.last_poll_ns is not None and now_ns - self.last_poll_ns <= max_age_ns

    def _run(self) -> None:
        deadline_ns = self._clock()
        while True:
            wait_ns = deadline_ns - self._clock()
            if self._stop.wait(max(wait_ns, 0) / 1e9):
                return
            now_ns = self._clock()
            try:
                self._poll(now_ns)
            except Exception:
                self.errors += 1
                if self.errors == 1 or self.errors % 1000 == 0:
                    log.exception("input poll failed (%d failures so far)", self.errors)
            else:
                self.last_poll_ns = now_ns
            deadline_ns += self._period_ns
            if deadline_ns < now_ns:  # fell behind (suspend, overload): do not burst to catch up
                deadline_ns = now_ns + self._period_ns
