"""The annunciator's simulated twin: records what it would sound and show, in virtual time."""

from __future__ import annotations

from dataclasses import dataclass

from pca.controller.ports import Priority
from pca.hw.alarm_patterns import DARK, Annunciation, AnnunciationPlanner, ToneKind


@dataclass(frozen=True)
class AnnunciatorChange:
    now_ns: int
    state: Annunciation


class SimulatedAnnunciator:
    """Implements the Annunciator port with the same planner as the GPIO one, minus the pins.

    `changes` holds every change of buzzer pitch or lamp with its now_ns, for the
    front-panel simulator and for scenario assertions.
    """

    def __init__(self) -> None:
        self._planner = AnnunciationPlanner()
        self.state = DARK
        self.changes: list[AnnunciatorChange] = []
        self.tones: list[tuple[int, ToneKind]] = []

    @property
    def priority(self) -> Priority | None:
        return self._planner.priority

    @property
    def silenced(self) -> bool:
        return self._planner.silenced

    def annunciate(self, priority: Priority | None, silenced: bool, now_ns: int) -> None:
        self._record(self._planner.annunciate(priority, silenced, now_ns), now_ns)

    def tone(self, kind: ToneKind, now_ns: int) -> None:
        self.tones.append((now_ns, kind))
        self._record(self._planner.tone(kind, now_ns), now_ns)

    def sound_edges(self) -> list[tuple[int, int | None]]:
        """(now_ns, pitch or None) at every buzzer change."""
        edges: list[tuple[int, int | None]] = []
        last: int | None = None
        for change in self.changes:
            if change.state.sound_hz != last:
                edges.append((change.now_ns, change.state.sound_hz))
                last = change.state.sound_hz
        return edges

    def _record(self, state: Annunciation, now_ns: int) -> None:
        if state != self.state:
            self.state = state
            self.changes.append(AnnunciatorChange(now_ns, state))

    def close(self) -> None:
        pass
