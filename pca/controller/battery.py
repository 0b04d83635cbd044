"""Battery supervision: state of charge and time remaining from the fuel gauge, logged on change,
and a warning when the pack will not last to the end of the syringe at the current delivery.

The battery_low / battery_depleted hardware lines (SR-4) stay the independent signal and
are handled by `Conditions` exactly as before; this adds what the gauge knows. Time
remaining = remaining energy / the pump's average draw (an exponential average over
AVERAGE_S, so a motor burst does not swing the estimate). A `battery_status` event is
logged when mains comes or goes, the state of charge crosses a whole percent, or the
time remaining crosses a 5-minute step, at most once a minute (a change of mains at once);
never on every reading.

The warning is the low-priority, self-clearing alarm `battery_short` (IEC 60601-1-8 low
priority: the operator should know and plan, nothing is wrong with the therapy yet). It
is raised when, on battery, the time remaining is shorter than the time the syringe will
last at the current rate, and cleared on mains or once the estimate is SHORT_CLEAR_MARGIN
longer than needed (hysteresis: a wobbling estimate does not chatter). The medium
`battery_low` from the board and the high `battery_depleted` stop delivery as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pca.controller.ports import NS_PER_S, FuelGauge, PowerReading

AVERAGE_S = 300.0
TIME_STEP_S = 300  # log time remaining in 5-minute steps
SHORT_CLEAR_MARGIN = 1.1
MIN_LOG_INTERVAL_NS = 60 * NS_PER_S  # while the average settles the estimate moves fast


@dataclass(frozen=True)
class BatteryStatus:
    mains: bool
    soc_pct: float
    time_remaining_s: float | None  # None on mains or before a draw has been measured


def time_remaining_s(remaining_wh: float, draw_w: float) -> float | None:
    """How long `remaining_wh` lasts at `draw_w`."""
    if draw_w <= 0:
        return None
    return remaining_wh / draw_w * 3600.0


def battery_short(status: BatteryStatus, needed_s: float | None, active: bool) -> bool:
    """The end-of-syringe warning, with hysteresis (`active`: raised now)."""
    if status.mains or status.time_remaining_s is None or needed_s is None:
        return False
    if active:
        return status.time_remaining_s < needed_s * SHORT_CLEAR_MARGIN
    return status.time_remaining_s < needed_s


class BatteryWatch:
    """Reads the gauge each tick; `needed_s()` is how long the syringe lasts now (None when
    nothing is being delivered)."""

    def __init__(self, gauge: FuelGauge | None, emit: Callable[..., None],
                 condition: Callable[[str, bool], None],
                 needed_s: Callable[[], float | None]) -> None:
        self.gauge = gauge
        self.emit = emit
        self.condition = condition
        self.needed_s = needed_s
        self.status: BatteryStatus | None = None
        self.draw_w: float | None = None
        self._last_t_ns: int | None = None
        self._logged: tuple[bool, int, int | None] | None = None
        self._logged_ns: int | None = None
        self._short = False

    def tick(self, now_ns: int) -> None:
        if self.gauge is None:
            return
        reading = self.gauge.read(now_ns)
        if reading is None:
            return
        self._average(reading)
        remaining = None if reading.mains or self.draw_w is None else \
            time_remaining_s(reading.remaining_wh, self.draw_w)
        self.status = BatteryStatus(reading.mains, reading.soc_pct, remaining)
        self._log(self.status, now_ns)
        short = battery_short(self.status, self.needed_s(), self._short)
        if short != self._short:
            self._short = short
            self.condition("battery_short", short)

    def _average(self, reading: PowerReading) -> None:
        if reading.mains:
            self.draw_w, self._last_t_ns = None, reading.t_ns
            return
        if self.draw_w is None or self._last_t_ns is None:
            self.draw_w = reading.power_w
        else:
            dt_s = max(0.0, (reading.t_ns - self._last_t_ns) / NS_PER_S)
            alpha = min(1.0, dt_s / AVERAGE_S)
            self.draw_w += alpha * (reading.power_w - self.draw_w)
        self._last_t_ns = reading.t_ns

    def _log(self, s: BatteryStatus, now_ns: int) -> None:
        step = None if s.time_remaining_s is None else int(s.time_remaining_s // TIME_STEP_S)
        key = (s.mains, int(s.soc_pct), step)
        if key == self._logged:
            return
        if (self._logged is not None and self._logged_ns is not None and s.mains ==
                self._logged[0] and now_ns - self._logged_ns < MIN_LOG_INTERVAL_NS):
            return  # logged when the minute is up, if it still differs then
        self._logged, self._logged_ns = key, now_ns
        self.emit("battery_status", "system", mains=s.mains, soc_pct=int(s.soc_pct),
                  time_remaining_min=None if step is None else step * TIME_STEP_S // 60)
