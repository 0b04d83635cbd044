"""SR-7 storage watchdog: the open event log is still the file at its path, and writable."""

from __future__ import annotations

import time
from typing import Any

from pca.controller.ports import LogWriteError
from pca.store.eventlog import SqliteEventLog


class StorageWatchdog:
    """SR-7: the open database is still the file at its path and writable; checked on
    every write by the log itself and here once a second, so an idle pump notices too.
    It also lets the log seal an epoch that ended with nothing new logged."""

    def __init__(self, wiring: Any, period_ns: int = 1_000_000_000) -> None:
        self.w = wiring
        self.failed: str | None = None
        self.period_ns = period_ns
        self._next_ns = 0

    def poll(self, now_ns: int) -> None:
        if now_ns >= self._next_ns:
            self._next_ns = now_ns + self.period_ns
            self.check()

    def check(self) -> None:
        log = getattr(self.w, "log", None)  # test wirings may have no log
        if not isinstance(log, SqliteEventLog):
            return
        pump = self.w.pump
        try:
            log.check_storage()
            log.tick(pump.pump_ns(), time.time_ns())
        except LogWriteError as err:
            if self.failed is None or "log_failure" not in pump.alarms.active:
                pump.log_unusable(str(err))
            self.failed = str(err)
            return
        self.failed = None
