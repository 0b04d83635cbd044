"""Buzzer and alarm lamps on GPIO (the Annunciator port), sounding the SR-11 patterns."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from gpiozero import LED, Buzzer, TonalBuzzer
from gpiozero.tones import Tone

from pca.controller.ports import Priority
from pca.hw import pinmap
from pca.hw.alarm_patterns import DARK, Annunciation, AnnunciationPlanner, ToneKind


class GpioAnnunciator:
    """Implements pca.controller.ports.Annunciator with a buzzer and red/yellow/green LEDs.

    The pattern is a function of the now_ns the controller passes each tick; this
    object never reads a clock. Pins are written only when the wanted state
    changes, so a PWM tone is not restarted every tick.
    """

    def __init__(self, *, buzzer_pin: int, led_red_pin: int, led_yellow_pin: int,
                 led_green_pin: int, buzzer_kind: str = "tonal", pin_factory: Any) -> None:
        if buzzer_kind not in pinmap.BUZZER_KINDS:
            raise ValueError(f"buzzer_kind must be one of {pinmap.BUZZER_KINDS}")
        self._devices: list[Any] = []
        try:
            self._buzzer: Any
            if buzzer_kind == "tonal":
                # A5 +/- 2 octaves = 220-3520 Hz: every alarm pitch and information pip fits.
                self._buzzer = TonalBuzzer(buzzer_pin, mid_tone=Tone("A5"), octaves=2,
                                           pin_factory=pin_factory)
            else:
                self._buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
            self._devices.append(self._buzzer)
            self._red = LED(led_red_pin, pin_factory=pin_factory)
            self._devices.append(self._red)
            self._yellow = LED(led_yellow_pin, pin_factory=pin_factory)
            self._devices.append(self._yellow)
            self._green = LED(led_green_pin, pin_factory=pin_factory)
            self._devices.append(self._green)
        except Exception:
            self.close()
            raise
        self._tonal = buzzer_kind == "tonal"
        self._planner = AnnunciationPlanner()
        self._applied = DARK

    @classmethod
    def from_pinmap(cls, ann: pinmap.Annunciator, *, pin_factory: Any) -> GpioAnnunciator:
        return cls(buzzer_pin=ann.buzzer.pin, led_red_pin=ann.led_red.pin,
                   led_yellow_pin=ann.led_yellow.pin, led_green_pin=ann.led_green.pin,
                   buzzer_kind=ann.buzzer_kind, pin_factory=pin_factory)

    @property
    def state(self) -> Annunciation:
        """What the buzzer and lamps are doing now."""
        return self._applied

    def annunciate(self, priority: Priority | None, silenced: bool, now_ns: int) -> None:
        self._apply(self._planner.annunciate(priority, silenced, now_ns))

    def tone(self, kind: ToneKind, now_ns: int) -> None:
        self._apply(self._planner.tone(kind, now_ns))

    def _apply(self, want: Annunciation) -> None:
        have = self._applied
        if want.sound_hz != have.sound_hz:
            if want.sound_hz is None and self._tonal:
                self._buzzer.stop()
            elif want.sound_hz is None:
                self._buzzer.off()
            elif self._tonal:
                self._buzzer.play(Tone(frequency=want.sound_hz))
            else:
                self._buzzer.on()
        for led, on, was in ((self._red, want.red, have.red),
                             (self._yellow, want.yellow, have.yellow),
                             (self._green, want.green, have.green)):
            if on != was:
                led.value = on
        self._applied = want

    OUTPUTS = ("buzzer", "led_red", "led_yellow", "led_green")
    BRING_UP_PITCH_HZ = 880

    def set_output(self, name: str, on: bool) -> None:
        """Drive one output directly, for the bring-up tool; the next annunciate() takes over."""
        if name not in self.OUTPUTS:
            raise ValueError(f"unknown output {name!r}; expected one of {self.OUTPUTS}")
        have = self._applied
        if name == "buzzer":
            want = replace(have, sound_hz=self.BRING_UP_PITCH_HZ if on else None)
        else:
            want = replace(have, **{name.removeprefix("led_"): on})
        self._apply(want)

    def close(self) -> None:
        for device in reversed(getattr(self, "_devices", [])):
            device.close()

    def __enter__(self) -> GpioAnnunciator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
