"""Alarm sound and light patterns per IEC 60601-1-8 (SR-11), as pure functions of elapsed time.

Figures chosen (every one a multiple of the 50 ms control tick, so ticks hit
the edges exactly):

  priority  pulses  td      pulse spacing ts (off time)             tb (interburst, off)  pitch
  high      10      150 ms  100,100,350,100,500,100,100,350,100 ms  2.75 s                880 Hz
  medium    3       200 ms  200,200 ms                              2.80 s                660 Hz
  low       1       200 ms  -                                       20 s                  523 Hz

The standard's ranges these sit in: high td 75-200 ms, medium/low td 125-250 ms;
spacing x = 50-125 ms (high) or 125-250 ms (medium/low); high burst is 3+2 pulses,
3rd-4th spacing 2x+td, 5th-6th spacing 0.35-1.30 s, then repeated; tb high
2.5-15 s, medium 2.5-30 s, low > 15 s or no repeat. The high burst itself lasts
3.3 s, so "repeated about every 2.5-3 s" can only mean the interburst interval;
2.75 s is inside it (onset to onset 6.05 s). Medium: tb 2.8 s, onset to onset
3.8 s, inside 2.6-4 s on either reading. Fundamentals are inside 150-1000 Hz.

Lamps: high red flashing 2.0 Hz 50 % (standard 1.4-2.8 Hz, 20-60 %); medium
yellow flashing 0.5 Hz 50 % (0.4-0.8 Hz); low yellow steady (cyan or yellow,
constant); no alarm: green steady.

Information signals (the answer to a bolus press: "dose given" / "not now") are
kept apart from alarm signals, as IEC 60601-1-8 asks (an information signal is
any signal that is not an alarm or reminder signal, and must not be taken for
one): every pip is 50 ms, shorter than the shortest alarm pulse the standard
allows (75 ms); a whole signal (at most 150 ms) is shorter than the shortest
alarm burst here (200 ms); pitches are above 1 kHz, outside the 150-1000 Hz band
of alarm fundamentals; the buzzer has one level, so a pip is never louder than an
alarm; and the light is the green lamp only (blinked against its steady state),
never red or yellow. Granted and denied differ in rhythm (two rising pips, one
pip) and in the green lamp (two blinks, one long blink), so an on/off buzzer or a
glance at the lamp still tells them apart. An alarm pulse always wins over a pip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pca.controller.ports import Priority

MS = 1_000_000

ToneKind = Literal["granted", "denied"]
PRIORITIES: tuple[Priority, ...] = ("high", "medium", "low")


@dataclass(frozen=True)
class Burst:
    """One auditory alarm signal: equal pulses, their spacings, then the interburst gap."""

    pulses: int
    pulse_ns: int
    spacings_ns: tuple[int, ...]
    interburst_ns: int | None  # None: sounds once
    pitch_hz: int

    def __post_init__(self) -> None:
        if len(self.spacings_ns) != self.pulses - 1:
            raise ValueError("a burst of n pulses has n-1 spacings")

    @property
    def pulse_windows_ns(self) -> tuple[tuple[int, int], ...]:
        """(on, off) of every pulse, relative to the burst start."""
        windows = []
        start = 0
        for i in range(self.pulses):
            windows.append((start, start + self.pulse_ns))
            if i < len(self.spacings_ns):
                start += self.pulse_ns + self.spacings_ns[i]
        return tuple(windows)

    @property
    def burst_ns(self) -> int:
        return self.pulse_windows_ns[-1][1]

    @property
    def period_ns(self) -> int | None:
        """Onset to onset of consecutive bursts."""
        return None if self.interburst_ns is None else self.burst_ns + self.interburst_ns

    def sounding(self, elapsed_ns: int) -> bool:
        if elapsed_ns < 0:
            return False
        period = self.period_ns
        if period is None:
            if elapsed_ns >= self.burst_ns:
                return False
            pos = elapsed_ns
        else:
            pos = elapsed_ns % period
        return any(on <= pos < off for on, off in self.pulse_windows_ns)


@dataclass(frozen=True)
class Lamp:
    """A coloured indicator, steady (period None) or flashing with the given on time."""

    colour: Literal["red", "yellow", "green"]
    period_ns: int | None = None
    on_ns: int = 0

    def lit(self, elapsed_ns: int) -> bool:
        if self.period_ns is None:
            return True
        return max(elapsed_ns, 0) % self.period_ns < self.on_ns


@dataclass(frozen=True)
class InfoSignal:
    """A short information signal: buzzer pips (start, end, pitch) and windows in which the
    green lamp is shown the other way from its steady state, relative to its start."""

    pips: tuple[tuple[int, int, int], ...]
    green_blinks: tuple[tuple[int, int], ...]

    @property
    def length_ns(self) -> int:
        return max(self.sound_ns, max(end for _, end in self.green_blinks))

    @property
    def sound_ns(self) -> int:
        return self.pips[-1][1]

    def pitch_at(self, elapsed_ns: int) -> int | None:
        for start, end, pitch_hz in self.pips:
            if start <= elapsed_ns < end:
                return pitch_hz
        return None

    def green_flipped(self, elapsed_ns: int) -> bool:
        return any(start <= elapsed_ns < end for start, end in self.green_blinks)


_X_HIGH_NS = 100 * MS
_TD_HIGH_NS = 150 * MS
BURSTS: dict[Priority, Burst] = {
    "high": Burst(
        pulses=10,
        pulse_ns=_TD_HIGH_NS,
        spacings_ns=(_X_HIGH_NS, _X_HIGH_NS, 2 * _X_HIGH_NS + _TD_HIGH_NS, _X_HIGH_NS,
                     500 * MS,
                     _X_HIGH_NS, _X_HIGH_NS, 2 * _X_HIGH_NS + _TD_HIGH_NS, _X_HIGH_NS),
        interburst_ns=2750 * MS,
        pitch_hz=880,
    ),
    "medium": Burst(pulses=3, pulse_ns=200 * MS, spacings_ns=(200 * MS, 200 * MS),
                    interburst_ns=2800 * MS, pitch_hz=660),
    "low": Burst(pulses=1, pulse_ns=200 * MS, spacings_ns=(), interburst_ns=20_000 * MS,
                 pitch_hz=523),
}

LAMPS: dict[Priority | None, Lamp] = {
    "high": Lamp("red", period_ns=500 * MS, on_ns=250 * MS),
    "medium": Lamp("yellow", period_ns=2000 * MS, on_ns=1000 * MS),
    "low": Lamp("yellow"),
    None: Lamp("green"),
}

PIP_NS = 50 * MS  # one control tick: the pins change only on ticks
# See the module note: two rising pips and two green blinks say "yes, a dose";
# one pip and one long green blink say "not now".
INFO_SIGNALS: dict[ToneKind, InfoSignal] = {
    "granted": InfoSignal(pips=((0, PIP_NS, 1319), (2 * PIP_NS, 3 * PIP_NS, 1760)),
                          green_blinks=((0, 250 * MS), (500 * MS, 750 * MS))),
    "denied": InfoSignal(pips=((0, PIP_NS, 1175),), green_blinks=((0, 750 * MS),)),
}


@dataclass(frozen=True)
class Annunciation:
    """What the buzzer and lamps should be doing at one instant."""

    sound_hz: int | None
    red: bool
    yellow: bool
    green: bool


DARK = Annunciation(None, red=False, yellow=False, green=False)


class AnnunciationPlanner:
    """Turns (priority, silenced, tone requests, now_ns) into buzzer and lamp states.

    Pure: no pins and no clock, shared by the GPIO annunciator and its simulated
    twin so both sound exactly alike. A new priority restarts its pattern;
    ending a silence restarts the burst but not the lamp. An alarm pulse always
    wins over an information pip: a pip may be cut, an alarm never masked; an
    information signal shows only on the green lamp, never red or yellow.
    """

    def __init__(self) -> None:
        self._started = False
        self.priority: Priority | None = None
        self.silenced = False
        self._lamp_origin_ns = 0
        self._sound_origin_ns = 0
        self._info: InfoSignal | None = None
        self._info_start_ns = 0

    def annunciate(self, priority: Priority | None, silenced: bool, now_ns: int) -> Annunciation:
        if priority is not None and priority not in BURSTS:
            raise ValueError(f"unknown alarm priority {priority!r}")
        if not self._started or priority != self.priority:
            self._lamp_origin_ns = self._sound_origin_ns = now_ns
        elif self.silenced and not silenced:
            self._sound_origin_ns = now_ns
        self._started = True
        self.priority, self.silenced = priority, bool(silenced)
        return self.output(now_ns)

    def tone(self, kind: ToneKind, now_ns: int) -> Annunciation:
        if kind not in INFO_SIGNALS:
            raise ValueError(f"unknown tone {kind!r}")
        self._info, self._info_start_ns = INFO_SIGNALS[kind], now_ns
        return self.output(now_ns)

    def output(self, now_ns: int) -> Annunciation:
        if not self._started:
            lamp_colour = None
        else:
            lamp = LAMPS[self.priority]
            lamp_colour = lamp.colour if lamp.lit(now_ns - self._lamp_origin_ns) else None
        sound_hz: int | None = None
        if self.priority is not None and not self.silenced:
            burst = BURSTS[self.priority]
            if burst.sounding(now_ns - self._sound_origin_ns):
                sound_hz = burst.pitch_hz
        green = lamp_colour == "green"
        info = self._info
        if info is not None:
            elapsed_ns = now_ns - self._info_start_ns
            if elapsed_ns >= info.length_ns:
                self._info = None
            else:
                if sound_hz is None:
                    sound_hz = info.pitch_at(elapsed_ns)
                if info.green_flipped(elapsed_ns):
                    green = not green
        return Annunciation(sound_hz, red=lamp_colour == "red", yellow=lamp_colour == "yellow",
                            green=green)
