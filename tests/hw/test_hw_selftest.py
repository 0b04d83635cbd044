"""`pca hw selftest`: passes on a healthy mock unit, names whatever input or output fails."""

from __future__ import annotations

import importlib.util

import pytest
from gpiozero.pins.mock import MockPWMPin

from pca.app.hw_selftest import run


class StuckLowPin(MockPWMPin):
    """An input line that never changes, held low: a wire shorted to GND."""

    level = False

    def drive_high(self):
        self._stick()

    def drive_low(self):
        self._stick()

    def _stick(self):
        if self.level:
            super().drive_high()
        else:
            super().drive_low()


class StuckHighPin(StuckLowPin):
    """An input line that never changes, held high by its pull-up: an open wire."""

    level = True


class DeadOutputPin(MockPWMPin):
    """An output that ignores writes (seen on readback as never lit)."""

    def _set_state(self, value):
        pass


def run_captured(argv, **kw):
    lines = []
    rc = run(argv, out=lines.append, **kw)
    return rc, "\n".join(lines)


def test_selftest_mock_passes_on_a_fresh_clone():
    rc, text = run_captured(["--mock"])
    assert rc == 0, text
    assert text.endswith("selftest passed")
    for name in ("bolus", "occlusion", "air_in_line", "end_of_travel", "door_open", "battery_low",
                 "battery_depleted", "keypad", "buzzer", "led_red", "led_yellow", "led_green"):
        assert f"PASS  {name} (" in text
    for name in ("step", "dir", "enable"):
        assert f"motor line {name}" in text


def test_selftest_names_an_input_that_never_changes(mock_factory):
    # The door switch's cable is pinched to GND: the line never leaves "door shut".
    mock_factory.pin(13, pin_class=StuckLowPin)
    rc, text = run_captured(["--mock"], pin_factory=mock_factory)
    assert rc == 1
    assert "FAIL  door_open (GPIO13): never went active" in text
    assert text.splitlines()[-1] == "selftest FAILED: door_open"


def test_selftest_names_an_input_active_at_rest(mock_factory):
    # The bubble sensor is unplugged: its pull-up reads "air in line", always.
    mock_factory.pin(6, pin_class=StuckHighPin)
    rc, text = run_captured(["--mock"], pin_factory=mock_factory)
    assert rc == 1
    assert "FAIL  air_in_line (GPIO6): active at rest" in text
    assert text.splitlines()[-1] == "selftest FAILED: air_in_line"


def test_selftest_names_a_dead_keypad_column(mock_factory):
    mock_factory.pin(9, pin_class=StuckHighPin)  # column 2 open: keys 2 5 8 0 dead
    rc, text = run_captured(["--mock"], pin_factory=mock_factory)
    assert rc == 1
    fail = next(line for line in text.splitlines() if line.startswith("FAIL  keypad"))
    for key in "2580":
        assert f"key {key} not seen" in fail
    assert "key 1 " not in fail


def test_selftest_names_an_output_that_does_not_come_on(mock_factory):
    mock_factory.pin(23, pin_class=DeadOutputPin)
    rc, text = run_captured(["--mock"], pin_factory=mock_factory)
    assert rc == 1
    assert "FAIL  led_red (GPIO23): did not come on" in text


def test_selftest_rejects_a_bad_pin_map_naming_file_and_key(tmp_path):
    bad = tmp_path / "pinout.toml"
    bad.write_text("[button.bolus]\npin = 3\n")
    rc, text = run_captured(["--mock", "--pinout", str(bad)])
    assert rc == 2
    assert text.startswith(f"pin map error: {bad}: ")


@pytest.mark.skipif(importlib.util.find_spec("lgpio") is not None, reason="lgpio is installed")
def test_selftest_off_the_pi_says_what_to_do():
    rc, text = run_captured(["--pin-factory", "lgpio"])
    assert rc == 2
    assert "pca[pi]" in text and "--mock" in text


def test_selftest_asks_the_technician_about_each_output(mock_factory, monkeypatch):
    from pca.app import hw_selftest

    # Only the output questions here (no real-time waits): inputs are covered under --mock.
    monkeypatch.setattr(hw_selftest, "SETTLE_NS", 10_000_000)
    monkeypatch.setattr(hw_selftest, "_check_input", lambda s, name, device: None)
    monkeypatch.setattr(hw_selftest, "_check_keypad", lambda s, pinmap: None)
    answers = iter(["", "y", "n", "y", "y"])  # at rest; buzzer yes, red NO, yellow, green yes
    questions = []

    def ask(prompt):
        questions.append(prompt.strip())
        return next(answers)

    lines = []
    rc = run([], pin_factory=mock_factory, out=lines.append, ask=ask)
    assert rc == 1
    assert "FAIL  led_red (GPIO23): did not come on" in lines
    assert questions[0].startswith("Put the unit at rest")
    assert questions[1:] == ["Is the buzzer sounding? [y/n]", "Is the RED lamp lit? [y/n]",
                             "Is the YELLOW lamp lit? [y/n]", "Is the GREEN lamp lit? [y/n]"]


def test_help_exits_zero(capsys):
    assert run(["--help"]) == 0
    assert "--mock" in capsys.readouterr().out
