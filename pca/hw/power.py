"""Battery lines from the UPS/battery board: low and depleted, debounced with a long dwell."""

from __future__ import annotations

from typing import Any

from pca.hw import pinmap
from pca.hw.sensors import SensorInput
from pca.hw.sink import Sink


class BatteryMonitor:
    """battery_low and battery_depleted as Sensor inputs.

    Each line must hold active 1 s (low) / 0.25 s (depleted) to be reported
    and inactive 30 s to be cleared: a board output that flickers near its
    threshold gives one report, not one per flicker (at most one report/clear
    pair per 30 s). See sensors.DEFAULT_HOLD_NS.
    """

    def __init__(self, low: pinmap.InputLine, depleted: pinmap.InputLine, sink: Sink, *,
                 pin_factory: Any) -> None:
        self.lines: list[SensorInput] = []
        try:
            for name, line in (("battery_low", low), ("battery_depleted", depleted)):
                self.lines.append(SensorInput(name, line.pin, sink, active_high=line.active_high,
                                              pull=line.pull, pin_factory=pin_factory))
        except Exception:
            self.close()
            raise

    def poll(self, now_ns: int) -> None:
        for line in self.lines:
            line.poll(now_ns)

    def close(self) -> None:
        for line in self.lines:
            line.close()

    def __enter__(self) -> BatteryMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
