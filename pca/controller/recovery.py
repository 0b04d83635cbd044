"""Rebuild what the pump must remember (SR-5) from the event log alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from pca.controller.alarms import LATCHING, PRIORITY
from pca.controller.auth import FailureState
from pca.controller.ports import StoredEvent
from pca.therapy.ledger import DoseSource, Source

# The states in which a dose runs, and all in which the pump delivers: one definition for the
# pump's table, the patient's keys, the PIB decision and the panel.
DOSE_STATES = ("pca_dose", "clinician_dose", "loading_dose", "intermittent_dose")
DELIVERING_STATES = frozenset({"running", "kvo", *DOSE_STATES})


@dataclass
class Recovered:
    """The pump's memory as the log tells it."""

    events: int = 0
    last_seq: int = 0
    last_pump_ns: int = 0
    last_wall_ns: int = 0
    prescription: dict[str, Any] | None = None  # fields of the last prescription_activated
    deliveries: list[tuple[Source, int, int]] = field(default_factory=list)  # source, steps, ns
    dose_starts: list[tuple[int, DoseSource]] = field(default_factory=list)
    open_dose: tuple[DoseSource, float] | None = None  # source, planned mL
    open_dose_steps: int = 0  # steps of the open dose recorded before the crash
    open_grant: tuple[Source, int] | None = None  # granted, never confirmed made
    last_state: str = "unprogrammed"
    clean_shutdown: bool = False
    failures: FailureState = field(default_factory=FailureState)
    alarms: set[str] = field(default_factory=set)  # latching alarms still active
    # Every alarm raised and not yet cleared when the log ends (name -> logged priority),
    # latching or not, whatever happened between: the log's story must end each one.
    open_alarms: dict[str, str] = field(default_factory=dict)
    syringe_ml: float | None = None
    delivered_since_syringe: int = 0  # steps, incl. open grants
    problems: list[str] = field(default_factory=list)  # rows that could not be read


def recover(stored: Iterable[StoredEvent], base: Recovered | None = None) -> Recovered:
    """Fold the stored events; `base` is the fold of the events before them (a start-up
    checkpoint), so start-up need not read a long log from its first event."""
    r = Recovered() if base is None else base
    for item in stored:
        try:
            fold(r, item)
        except (KeyError, ValueError, TypeError) as err:
            # A damaged row must not crash the pump; the caller alarms (log_failure).
            r.problems.append(f"seq {item.seq} ({item.event.type}) is unreadable: {err!r}")
    return r


def fold(r: Recovered, item: StoredEvent) -> None:
    ev = item.event
    f = ev.fields
    r.events += 1
    r.last_seq = item.seq
    r.last_pump_ns = max(r.last_pump_ns, ev.pump_ns)
    r.last_wall_ns = ev.wall_ns
    r.clean_shutdown = ev.type == "shutdown"
    kind = ev.type
    if kind == "delivery":
        source = cast(Source, f["source"])
        steps = int(f["steps"])
        if steps:
            r.deliveries.append((source, steps, ev.pump_ns))
            r.delivered_since_syringe += steps
            if r.open_dose is not None and source == r.open_dose[0]:
                r.open_dose_steps += steps
        granted = int(f.get("granted_steps", 0))
        r.open_grant = (source, granted) if granted > 0 else None
    elif kind == "dose_started":
        source_d = cast(DoseSource, f["source"])
        r.dose_starts.append((ev.pump_ns, source_d))
        r.open_dose = (source_d, float(f["amount_ml"]))
        r.open_dose_steps = 0
    elif kind == "dose_ended":
        r.open_dose = None
        r.open_dose_steps = 0
    elif kind == "prescription_activated":
        r.prescription = dict(f)
    elif kind == "new_patient":
        r.prescription = None
        r.deliveries.clear()
        r.dose_starts.clear()
        # Alarms stay: a new patient clears none of them while the pump runs, and a
        # restart puts the pump back as it was (a latched alarm still needs its clear).
    elif kind == "state_changed":
        r.last_state = str(f["to"])
    elif kind == "auth":
        outcome = f["outcome"]
        if outcome == "ok":
            r.failures = FailureState()
        elif outcome == "failed":
            r.failures = FailureState(r.failures.consecutive + 1, ev.pump_ns)
    elif kind == "alarm_raised":
        if f["alarm"] in LATCHING:
            r.alarms.add(str(f["alarm"]))
        r.open_alarms[str(f["alarm"])] = str(f.get("priority") or PRIORITY[str(f["alarm"])])
    elif kind == "alarm_cleared":
        r.alarms.discard(str(f["alarm"]))
        r.open_alarms.pop(str(f["alarm"]), None)
    elif kind == "syringe_changed":
        r.syringe_ml = float(f["syringe_ml"])
        r.delivered_since_syringe = 0
