"""The event log as the pump writes it: dated events, their observers, flush and log failure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from pca.controller.ports import NS_PER_S, Actor, Event, EventLog, LogWriteError, StoredEvent
from pca.controller.pumptime import PumpTime
from pca.controller.recovery import Recovered


def from_to(source: str, dest: str) -> dict[str, Any]:
    """state_changed's fields ("from" is a Python keyword)."""
    return {"from": source, "to": dest}


Observer = Callable[[str, Mapping[str, Any], int], None]  # type, fields, pump_ns


class Journal:
    """Appends events dated in pump time and tells every observer; `flush` makes them
    durable. A failed flush is reported once per failure to `on_failed` (SR-7: the pump
    never delivers what it cannot log) and the recovery to `on_restored`."""

    def __init__(self, log: EventLog, time: PumpTime) -> None:
        self.log = log
        self.time = time
        self.ok = True
        self.observers: list[Observer] = []
        self.on_failed: Callable[[str], None] = lambda why: None
        self.on_restored: Callable[[], None] = lambda: None

    def emit(self, type_: str, actor: Actor, *, at_pump_ns: int | None = None,
             **fields: Any) -> None:
        """Log an event; `at_pump_ns` dates it (a delivery record: the ledger's time)."""
        clock, offset = self.time.clock, self.time.offset_ns
        mono = clock.monotonic_ns() if at_pump_ns is None else at_pump_ns - offset
        self.log.append(Event(type_, actor, mono / NS_PER_S, mono + offset, clock.wall_ns(),
                              fields))
        self.observe(type_, fields, mono + offset)

    def observe(self, type_: str, fields: Mapping[str, Any], pump_ns: int) -> None:
        for observer in self.observers:
            observer(type_, fields, pump_ns)

    def replay(self) -> Iterator[StoredEvent]:
        """The log at start-up, shown to every observer on its way to recovery."""
        return self._observed(self.log.replay())

    def replay_from_checkpoint(self) -> tuple[Recovered | None, Iterator[StoredEvent]]:
        """Start-up from the log's last checkpoint when it has one (pca.store.resume): the
        recovery fold so far, and the tail to fold onto it. Observers also see the older
        events marked `context` (the last prescription, library, PIN change), which
        recovery must not fold twice."""
        start = getattr(self.log, "resume", None)
        base, stored = start() if start is not None else (None, self.log.replay())
        return base, self._observed(stored)

    def _observed(self, stored_events: Iterable[StoredEvent]) -> Iterator[StoredEvent]:
        for stored in stored_events:
            event = stored.event
            self.observe(event.type, event.fields, event.pump_ns)
            if not stored.context:
                yield stored

    def flush(self) -> bool:
        """Make the log durable; False (and `on_failed`) if it cannot be written."""
        try:
            self.log.flush()
        except LogWriteError as err:
            self.failed(str(err))
            return False
        if not self.ok:
            self.ok = True
            self.on_restored()
        return True

    def failed(self, why: str) -> None:
        self.ok = False
        self.on_failed(why)
