"""What the simulator sees of the pump: the events it logs, tallied, and the screen's view."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pca.controller.inputs import Input
from pca.controller.ports import Event, Priority, StoredEvent
from pca.controller.pump import Pump
from pca.controller.recovery import Recovered
from pca.store.eventlog import SqliteEventLog
from pca.therapy.ledger import SOURCES

RECENT_EVENTS = 200


# ---- what the log says (the simulator watches the events the pump logs) --------------------
@dataclass
class Tally:
    """PCA requests and deliveries of the current patient, from the pump's own events."""

    granted: int = 0
    denied: Counter[str] = field(default_factory=Counter)
    delivered_steps: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    syringe_ml: float | None = None
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    counts: Counter[str] = field(default_factory=Counter)

    def observe(self, event: Event) -> None:
        fields = event.fields
        self.counts[event.type] += 1
        self.recent.append(event)
        if event.type == "pca_request":
            if fields.get("outcome") == "granted":
                self.granted += 1
            else:
                self.denied[str(fields.get("reason", "?"))] += 1
        elif event.type == "delivery":
            source = str(fields.get("source"))  # steps: the log's mL are rounded
            self.delivered_steps[source] = self.delivered_steps.get(source, 0) + int(
                fields.get("steps", 0))
        elif event.type == "syringe_changed":
            self.syringe_ml = float(fields["syringe_ml"])
        elif event.type == "new_patient":
            self.granted = 0
            self.denied.clear()
            self.delivered_steps = dict.fromkeys(SOURCES, 0)


class ObservedLog:
    """The pump's EventLog port: the SQLite log itself, with every event also tallied."""

    def __init__(self, log: SqliteEventLog, tally: Tally) -> None:
        self.log = log
        self.tally = tally

    def append(self, event: Event) -> None:
        self.log.append(event)
        self.tally.observe(event)

    def flush(self) -> None:
        self.log.flush()

    def replay(self) -> Iterator[StoredEvent]:
        for stored in self.log.replay():
            self.tally.observe(stored.event)
            yield stored

    def resume(self) -> tuple[Recovered | None, Iterator[StoredEvent]]:
        """Start-up from the log's last checkpoint (the tally sees the tail only)."""
        base, stored = self.log.resume()
        return base, self._tallied(stored)

    def _tallied(self, stored: Iterator[StoredEvent]) -> Iterator[StoredEvent]:
        for item in stored:
            if not item.context:
                self.tally.observe(item.event)
            yield item


class _Sink:
    """Where the hardware puts inputs: the pump's queue, noting that a tick is due."""

    def __init__(self) -> None:
        self.pump: Pump | None = None
        self.early: list[Input] = []
        self.pending = False

    def put(self, item: Input) -> None:
        self.pending = True
        if self.pump is None:
            self.early.append(item)  # inputs seen while the pump boots wait here
        else:
            self.pump.put(item)


# ---- what the screen shows -----------------------------------------------------------------
@dataclass(frozen=True)
class AlarmRow:
    name: str
    priority: Priority
    present: bool  # False: the condition has gone; a latched alarm waits for a clear


@dataclass(frozen=True)
class View:
    """Everything the front panel draws, read at one instant."""

    t_ns: int  # virtual time since the simulator started
    wall_ns: int
    state: str
    rate_ml_h: float
    display: tuple[str, ...]
    display_box: str
    red: bool
    yellow: bool
    green: bool
    buzzer_hz: float | None
    sounding: Priority | None  # the alarm priority whose pattern is sounding (None: none)
    silenced: bool
    silence_left_s: float  # while silenced: until the sound comes back
    alarms: tuple[AlarmRow, ...]
    reservoir_ml: float
    syringe_ml: float
    delivered_ml: Mapping[str, float]
    pca_granted: int
    pca_denied: Mapping[str, int]
    lockout_min: float | None
    lockout_left_s: float
    drug: str | None
    lines: Mapping[str, bool]
    vitals: Mapping[str, int]
    monitor_plugged: bool
    demo_pin: str | None
    recent: tuple[Event, ...]

    @property
    def delivered_total_ml(self) -> float:
        return sum(self.delivered_ml.values())
