"""The respiratory monitor's simulated twin: reports the values it was given once a second.

For `pca scenario` and `pca sim`. Setting values makes a reading at once and then one a
second from then; unplugging stops the readings, plugging in again resumes them with
the last values. A value never given is not measured.

`poll` is exact but thrifty for virtual time: between two changes every reading carries
the same values, so only the first reading after a change and the latest one are handed
over (the watcher needs the first for the onset and the latest for freshness; the ones
in between change nothing it decides).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pca.controller.ports import NS_PER_S, VITALS, VitalsReading


class SimulatedMonitor:
    def __init__(self, period_ns: int = NS_PER_S) -> None:
        self.period_ns = period_ns
        self.values: dict[str, int] = {}
        self.plugged = True
        self._epoch_ns: int | None = None  # first reading of the current run of readings
        self._pending: list[VitalsReading] = []
        self._handed_ns: int | None = None  # time of the last reading handed over

    def set(self, now_ns: int, values: Mapping[str, int]) -> None:
        """From now on report these values (the others keep their last value)."""
        unknown = sorted(set(values) - set(VITALS))
        if unknown:
            raise ValueError(f"unknown vital(s) {', '.join(unknown)}")
        self._flush_grid(now_ns - 1)  # readings of the old values made before now
        self.values.update({k: int(v) for k, v in values.items()})
        self._restart(now_ns)

    def plug(self, now_ns: int, plugged: bool) -> None:
        if plugged == self.plugged:
            return
        self.plugged = plugged
        if plugged:
            self._restart(now_ns)
        else:
            self._flush_grid(now_ns)
            self._epoch_ns = None

    def _restart(self, now_ns: int) -> None:
        if self.plugged and self.values:
            self._epoch_ns = now_ns
            self._pending.append(VitalsReading(now_ns, dict(self.values)))

    def _latest_grid(self, now_ns: int) -> int | None:
        if self._epoch_ns is None or now_ns < self._epoch_ns:
            return None
        return self._epoch_ns + (now_ns - self._epoch_ns) // self.period_ns * self.period_ns

    def _flush_grid(self, now_ns: int) -> None:
        latest = self._latest_grid(now_ns)
        last = self._pending[-1].t_ns if self._pending else self._handed_ns
        if latest is not None and (last is None or latest > last):
            self._pending.append(VitalsReading(latest, dict(self.values)))

    def poll(self, now_ns: int) -> Sequence[VitalsReading]:
        self._flush_grid(now_ns)
        out = [r for r in self._pending if r.t_ns <= now_ns]
        self._pending = [r for r in self._pending if r.t_ns > now_ns]
        if out:
            self._handed_ns = out[-1].t_ns
        return out

    def next_reading_ns(self, now_ns: int) -> int | None:
        """When the next reading is made (None: unplugged or nothing to report)."""
        latest = self._latest_grid(now_ns)
        return None if latest is None else latest + self.period_ns
