"""Alarm sounds and lamps (SR-11, IEC 60601-1-8) and dose tones, edge by edge in virtual time."""

from __future__ import annotations

import pytest

from pca.hw.alarm_patterns import BURSTS, INFO_SIGNALS, LAMPS, AnnunciationPlanner
from pca.hw.annunciator import GpioAnnunciator
from pca.hw.sim_annunciator import SimulatedAnnunciator

MS = 1_000_000
S = 1_000_000_000
BUZZER, RED, YELLOW, GREEN = 18, 23, 24, 25
T0_NS = 7_123 * MS  # patterns start whenever the alarm starts, not at a round time


@pytest.fixture
def ann(mock_factory):
    with GpioAnnunciator(buzzer_pin=BUZZER, led_red_pin=RED, led_yellow_pin=YELLOW,
                         led_green_pin=GREEN, pin_factory=mock_factory) as a:
        yield a


class Recorder:
    """Calls annunciate every tick and records each output's edges as (ms since T0, value)."""

    def __init__(self, factory):
        self.factory = factory
        self.edges = {"buzzer": [], "red": [], "yellow": [], "green": []}
        self.last = {}

    def sample(self, now_ns):
        pin = self.factory.pin(BUZZER)
        values = {
            "buzzer": pin.frequency if pin.state else None,
            "red": bool(self.factory.pin(RED).state),
            "yellow": bool(self.factory.pin(YELLOW).state),
            "green": bool(self.factory.pin(GREEN).state),
        }
        for name, value in values.items():
            if self.last.get(name, "unset") != value:
                self.edges[name].append(((now_ns - T0_NS) // MS, value))
                self.last[name] = value

    def drive(self, ann, priority, *, silenced=False, start_ns=T0_NS, end_ns, tick_ms=50):
        t = start_ns
        while t < end_ns:
            ann.annunciate(priority, silenced, t)
            self.sample(t)
            t += tick_ms * MS
        return t


def pulses_to_edges(pulses_ms, pitch_hz):
    edges = []
    for on, off in pulses_ms:
        edges += [(on, float(pitch_hz)), (off, None)]
    return edges


HIGH_BURST_MS = [(0, 150), (250, 400), (500, 650), (1000, 1150), (1250, 1400),
                 (1900, 2050), (2150, 2300), (2400, 2550), (2900, 3050), (3150, 3300)]
HIGH_PERIOD_MS = 6050  # 3.3 s burst + 2.75 s interburst


@pytest.mark.parametrize("tick_ms", [50, 10])
def test_sr11_high_priority_is_a_10_pulse_burst_every_6_05_s(ann, mock_factory, tick_ms):
    rec = Recorder(mock_factory)
    rec.drive(ann, "high", end_ns=T0_NS + 2 * HIGH_PERIOD_MS * MS, tick_ms=tick_ms)
    expected = pulses_to_edges(
        HIGH_BURST_MS + [(on + HIGH_PERIOD_MS, off + HIGH_PERIOD_MS) for on, off in HIGH_BURST_MS],
        880)
    assert rec.edges["buzzer"] == expected


def test_sr11_high_priority_flashes_the_red_lamp_at_2hz(ann, mock_factory):
    rec = Recorder(mock_factory)
    rec.drive(ann, "high", end_ns=T0_NS + 2000 * MS)
    assert rec.edges["red"] == [(ms, (ms // 250) % 2 == 0) for ms in range(0, 2000, 250)]
    assert rec.edges["yellow"] == [(0, False)]
    assert rec.edges["green"] == [(0, False)]


def test_sr11_medium_priority_is_3_pulses_every_3_8_s_with_yellow_flashing(ann, mock_factory):
    rec = Recorder(mock_factory)
    rec.drive(ann, "medium", end_ns=T0_NS + 7600 * MS)
    burst = [(0, 200), (400, 600), (800, 1000)]
    assert rec.edges["buzzer"] == pulses_to_edges(
        burst + [(on + 3800, off + 3800) for on, off in burst], 660)
    assert rec.edges["yellow"] == [(ms, (ms // 1000) % 2 == 0) for ms in range(0, 7600, 1000)]
    assert rec.edges["red"] == [(0, False)]


def test_sr11_low_priority_is_one_pulse_repeated_after_20_s_with_yellow_steady(ann, mock_factory):
    rec = Recorder(mock_factory)
    rec.drive(ann, "low", end_ns=T0_NS + 45_000 * MS)
    assert rec.edges["buzzer"] == pulses_to_edges([(0, 200), (20_200, 20_400), (40_400, 40_600)],
                                                  523)
    assert rec.edges["yellow"] == [(0, True)]
    assert rec.edges["red"] == [(0, False)]


def test_sr11_no_alarm_is_green_steady_and_silent(ann, mock_factory):
    rec = Recorder(mock_factory)
    rec.drive(ann, None, end_ns=T0_NS + 30 * S)
    assert rec.edges["green"] == [(0, True)]
    assert rec.edges["buzzer"] == [(0, None)]
    assert rec.edges["red"] == rec.edges["yellow"] == [(0, False)]


def test_sr11_nothing_shows_before_the_controller_first_annunciates(ann, mock_factory):
    for gpio in (BUZZER, RED, YELLOW, GREEN):
        assert not mock_factory.pin(gpio).state


def test_sr11_only_the_priority_passed_sounds_and_a_new_one_restarts_its_pattern(ann, mock_factory):
    rec = Recorder(mock_factory)
    t = rec.drive(ann, "medium", end_ns=T0_NS + 500 * MS)  # mid-way through medium pulse 2
    rec.drive(ann, "high", start_ns=t, end_ns=t + 1000 * MS)
    # Medium pulse 1 (0-200), medium pulse 2 cut at 500 when high begins its own burst.
    assert rec.edges["buzzer"] == [(0, 660.0), (200, None), (400, 660.0), (500, 880.0),
                                   (650, None), (750, 880.0), (900, None), (1000, 880.0),
                                   (1150, None)]
    assert rec.edges["red"] == [(0, False), (500, True), (750, False), (1000, True),
                                (1250, False)]
    assert rec.edges["yellow"] == [(0, True), (500, False)]


def test_sr11_silence_pauses_sound_for_its_duration_but_the_lamp_keeps_flashing(ann, mock_factory):
    rec = Recorder(mock_factory)
    t = rec.drive(ann, "high", end_ns=T0_NS + 1000 * MS)
    silence_end_ns = t + 120 * S  # the controller's 2-minute silence
    t = rec.drive(ann, "high", silenced=True, start_ns=t, end_ns=silence_end_ns)
    silenced_sound = [e for e in rec.edges["buzzer"] if 1000 <= e[0] < 121_000]
    assert silenced_sound == [], "no pulse at all while silenced"
    red_during = [e for e in rec.edges["red"] if 1000 <= e[0] < 121_000]
    assert len(red_during) == 2 * 120 * 2, "red keeps flashing at 2 Hz through the silence"
    rec.drive(ann, "high", start_ns=t, end_ns=t + 700 * MS)
    # The silence ends: the burst restarts from pulse 1 at once.
    after = [e for e in rec.edges["buzzer"] if e[0] >= 121_000]
    assert after == [(121_000, 880.0), (121_150, None), (121_250, 880.0), (121_400, None),
                     (121_500, 880.0), (121_650, None)]


def test_sr11_silence_never_changes_which_lamp_shows(ann, mock_factory):
    for priority, colour in (("high", "red"), ("medium", "yellow"), ("low", "yellow")):
        ann.annunciate(priority, True, T0_NS)
        assert getattr(ann.state, colour) and ann.state.sound_hz is None


def test_dose_granted_is_two_short_rising_pips_and_two_green_blinks(ann, mock_factory):
    rec = Recorder(mock_factory)
    t = rec.drive(ann, None, end_ns=T0_NS + 100 * MS)
    ann.tone("granted", t)
    rec.sample(t)
    rec.drive(ann, None, start_ns=t + 50 * MS, end_ns=t + 1500 * MS)
    assert rec.edges["buzzer"] == [(0, None), (100, 1319.0), (150, None), (200, 1760.0),
                                   (250, None)]
    assert rec.edges["green"] == [(0, True), (100, False), (350, True), (600, False),
                                  (850, True)]
    assert rec.edges["red"] == [(0, False)] and rec.edges["yellow"] == [(0, False)]


def test_dose_denied_is_one_short_pip_and_one_long_green_blink(ann, mock_factory):
    rec = Recorder(mock_factory)
    t = rec.drive(ann, None, end_ns=T0_NS + 100 * MS)
    ann.tone("denied", t)
    rec.sample(t)
    rec.drive(ann, None, start_ns=t + 50 * MS, end_ns=t + 1500 * MS)
    assert rec.edges["buzzer"] == [(0, None), (100, 1175.0), (150, None)]
    assert rec.edges["green"] == [(0, True), (100, False), (850, True)]


def test_granted_and_denied_differ_in_rhythm_not_only_pitch():
    granted, denied = INFO_SIGNALS["granted"], INFO_SIGNALS["denied"]
    assert len(granted.pips) != len(denied.pips)  # an on/off buzzer still tells them apart
    assert len(granted.green_blinks) != len(denied.green_blinks)
    assert granted.pips[0][2] < granted.pips[1][2]  # "yes" rises


def test_information_signals_are_never_taken_for_an_alarm():
    """IEC 60601-1-8 keeps information signals apart from alarm signals: shorter pulses than
    any alarm pulse may have, shorter than any alarm burst, pitched outside the band of alarm
    fundamentals, and on no alarm lamp."""
    shortest_pulse = min(b.pulse_ns for b in BURSTS.values())
    shortest_burst = min(b.burst_ns for b in BURSTS.values())
    alarm_pitches = {b.pitch_hz for b in BURSTS.values()}
    for kind, signal in INFO_SIGNALS.items():
        for start, end, pitch_hz in signal.pips:
            assert end - start < 75 * MS <= shortest_pulse, kind  # 75 ms: the standard's least
            assert pitch_hz > 1000 and pitch_hz not in alarm_pitches, kind
        assert signal.sound_ns < shortest_burst, kind
        assert signal.length_ns <= 1000 * MS, kind
    assert all(150 <= p <= 1000 for p in alarm_pitches)


@pytest.mark.parametrize("priority", [None, "high", "medium", "low"])
@pytest.mark.parametrize("kind", ["granted", "denied"])
def test_an_information_signal_touches_only_the_green_lamp_and_ends(priority, kind):
    quiet, signalled = AnnunciationPlanner(), AnnunciationPlanner()
    t = T0_NS
    quiet.annunciate(priority, False, t)
    signalled.annunciate(priority, False, t)
    signalled.tone(kind, t)
    while t < T0_NS + 2000 * MS:
        a, b = quiet.annunciate(priority, False, t), signalled.annunciate(priority, False, t)
        assert (a.red, a.yellow) == (b.red, b.yellow)  # the alarm lamps never change
        if a.sound_hz is not None:
            assert b.sound_hz == a.sound_hz  # an alarm pulse always wins
        if t >= T0_NS + 1000 * MS:
            assert a == b  # over within a second
        t += 50 * MS


def test_sr11_a_tone_never_masks_an_alarm_pulse(ann, mock_factory):
    rec = Recorder(mock_factory)
    t = rec.drive(ann, "medium", end_ns=T0_NS + 100 * MS)  # inside medium pulse 1 (0-200)
    ann.tone("granted", t)  # pips at 100-150 and 200-250 ms
    rec.sample(t)
    rec.drive(ann, "medium", start_ns=t + 50 * MS, end_ns=T0_NS + 1200 * MS)
    # The alarm pulse stays whole (660 Hz): the first pip is lost under it, the second
    # fills part of the gap after it.
    assert rec.edges["buzzer"] == [(0, 660.0), (200, 1760.0), (250, None), (400, 660.0),
                                   (600, None), (800, 660.0), (1000, None)]


def test_active_buzzer_sounds_the_same_rhythm(mock_factory):
    with GpioAnnunciator(buzzer_pin=BUZZER, led_red_pin=RED, led_yellow_pin=YELLOW,
                         led_green_pin=GREEN, buzzer_kind="active",
                         pin_factory=mock_factory) as ann:
        pin = mock_factory.pin(BUZZER)
        edges, last = [], None
        t = T0_NS
        while t < T0_NS + 1200 * MS:
            ann.annunciate("medium", False, t)
            if bool(pin.state) != last:
                edges.append(((t - T0_NS) // MS, bool(pin.state)))
                last = bool(pin.state)
            t += 50 * MS
    assert edges == [(0, True), (200, False), (400, True), (600, False), (800, True),
                     (1000, False)]


def test_simulated_annunciator_sounds_exactly_like_the_gpio_one(ann, mock_factory):
    sim = SimulatedAnnunciator()
    rec = Recorder(mock_factory)
    script = [("high", False, 0), ("high", True, 2000), ("medium", True, 4000),
              ("medium", False, 6000), ("low", False, 10_000), (None, False, 31_000)]
    t = T0_NS
    for i, (priority, silenced, _start_ms) in enumerate(script):
        end_ms = script[i + 1][2] if i + 1 < len(script) else 33_000
        while t < T0_NS + end_ms * MS:
            if t == T0_NS + 3000 * MS:
                ann.tone("granted", t)
                sim.tone("granted", t)
            ann.annunciate(priority, silenced, t)
            sim.annunciate(priority, silenced, t)
            rec.sample(t)
            t += 50 * MS
    sim_edges = [((ns - T0_NS) // MS, None if hz is None else float(hz))
                 for ns, hz in sim.sound_edges()]
    assert sim_edges == rec.edges["buzzer"]
    assert sim.state == ann.state
    assert sim.tones == [(T0_NS + 3000 * MS, "granted")]


def test_unknown_priority_or_tone_is_rejected(ann):
    with pytest.raises(ValueError, match="unknown alarm priority"):
        ann.annunciate("urgent", False, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown tone"):
        ann.tone("maybe", 0)  # type: ignore[arg-type]


def test_sr11_figures_sit_inside_the_iec_60601_1_8_ranges():
    high, medium, low = BURSTS["high"], BURSTS["medium"], BURSTS["low"]
    assert high.pulses == 10 and medium.pulses == 3 and low.pulses in (1, 2)
    assert 75 * MS <= high.pulse_ns <= 200 * MS
    for burst in (medium, low):
        assert 125 * MS <= burst.pulse_ns <= 250 * MS
    x = high.spacings_ns[0]
    assert 50 * MS <= x <= 125 * MS
    assert high.spacings_ns == (x, x, 2 * x + high.pulse_ns, x, high.spacings_ns[4],
                                x, x, 2 * x + high.pulse_ns, x)
    assert 350 * MS <= high.spacings_ns[4] <= 1300 * MS
    assert all(125 * MS <= s <= 250 * MS for s in medium.spacings_ns)
    assert 2500 * MS <= high.interburst_ns <= 3000 * MS  # SR-11: about every 2.5-3 s
    assert medium.interburst_ns >= 2600 * MS and medium.period_ns <= 4000 * MS  # 2.6-4 s
    assert low.interburst_ns is None or low.interburst_ns > 15 * S
    for burst in (high, medium, low):
        assert 150 <= burst.pitch_hz <= 1000
    red, yellow = LAMPS["high"], LAMPS["medium"]
    assert red.colour == "red" and 1.4 <= S / red.period_ns <= 2.8
    assert 0.2 <= red.on_ns / red.period_ns <= 0.6
    assert yellow.colour == "yellow" and 0.4 <= S / yellow.period_ns <= 0.8
    assert 0.2 <= yellow.on_ns / yellow.period_ns <= 0.6
    assert LAMPS["low"].colour in ("yellow", "cyan") and LAMPS["low"].period_ns is None
    assert LAMPS[None].colour == "green" and LAMPS[None].period_ns is None
