"""Pin map validation (errors name file, key and pin) and the hardware folder's consistency."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from pca.hw.pinmap import (
    REPO_PINOUT,
    RESERVED_PINS,
    PinMapError,
    default_pinout_path,
    load_pinmap,
    parse_pinmap,
)

HARDWARE = Path(__file__).resolve().parents[2] / "hardware"


@pytest.fixture
def data():
    with REPO_PINOUT.open("rb") as f:
        return tomllib.load(f)


def test_default_pinout_is_valid_and_uses_each_pin_once(pinmap):
    pins = list(pinmap.pins().values())
    assert len(pins) == len(set(pins)) == 21
    assert not set(pins) & set(RESERVED_PINS)
    assert pinmap.motor.enable.active_high is False
    assert pinmap.keypad.rows == (19, 20, 21, 7) and pinmap.keypad.cols == (8, 9, 10)
    assert pinmap.keypad.settle_us == 50


def test_pin_used_twice_is_rejected_naming_file_key_and_pin(data):
    data["sensors"]["door_open"]["pin"] = 17  # the bolus button's pin
    with pytest.raises(PinMapError) as err:
        parse_pinmap(data, "hardware/pinout.toml")
    assert str(err.value) == ("hardware/pinout.toml: sensors.door_open.pin: GPIO 17 is already "
                              "used by button.bolus.pin")
    assert err.value.key == "sensors.door_open.pin"


def test_motor_line_clash_is_rejected(data):
    data["annunciator"]["led_red"] = 4  # motor ENABLE
    with pytest.raises(PinMapError, match=r"motor.enable.pin: GPIO 4 is already used by "
                                          r"annunciator.led_red"):
        parse_pinmap(data, "x.toml")


def test_keypad_pin_clash_names_the_list_entry(data):
    data["keypad"]["cols"][2] = 19
    with pytest.raises(PinMapError, match=re.escape("keypad.cols[2]: GPIO 19 is already used by "
                                                    "keypad.rows[0]")):
        parse_pinmap(data, "x.toml")


@pytest.mark.parametrize("pin", sorted(RESERVED_PINS))
def test_reserved_pins_are_rejected_unless_declared(data, pin):
    data["annunciator"]["led_green"] = pin
    with pytest.raises(PinMapError) as err:
        parse_pinmap(data, "p.toml")
    expected = f"annunciator.led_green: GPIO {pin} is reserved for {RESERVED_PINS[pin]}"
    assert expected in str(err.value)
    assert "[reserved] allow" in str(err.value)
    data["reserved"]["allow"] = [pin]
    assert parse_pinmap(data, "p.toml").annunciator.led_green.pin == pin


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["button"]["bolus"].update(pin=28), "button.bolus.pin: GPIO 28 is not on the"),
    (lambda d: d["button"]["bolus"].update(pin="17"), "button.bolus.pin: pin must be a BCM GPIO"),
    (lambda d: d["button"]["bolus"].update(pin=True), "button.bolus.pin: pin must be a BCM GPIO"),
    (lambda d: d["button"]["bolus"].update(active="lo"), "button.bolus.active: must be"),
    (lambda d: d["sensors"]["occlusion"].update(pull="upp"), "sensors.occlusion.pull: must be"),
    (lambda d: d["sensors"]["occlusion"].update(source="strain"), "sensors.occlusion.source"),
    (lambda d: d["sensors"]["door_open"].update(source="x"), "sensors.door_open.source: only"),
    (lambda d: d["sensors"].update(flow={"pin": 11}), "sensors.flow: unknown key"),
    (lambda d: d["sensors"].pop("air_in_line"), "sensors.air_in_line: missing"),
    (lambda d: d["keypad"].update(rows=[19, 20, 21]), "keypad.rows: must be a list of 4"),
    (lambda d: d["keypad"].update(settle_us=-1), "keypad.settle_us: must be a whole number"),
    (lambda d: d["keypad"].update(settle_us=5001), "keypad.settle_us: must be a whole number"),
    (lambda d: d["keypad"].update(settle_us="50"), "keypad.settle_us: must be a whole number"),
    (lambda d: d["keypad"].update(settle_us=True), "keypad.settle_us: must be a whole number"),
    (lambda d: d["annunciator"].update(buzzer_kind="piezo"), "annunciator.buzzer_kind"),
    (lambda d: d["annunciator"].pop("led_red"), "annunciator.led_red: missing"),
    (lambda d: d["motor"].pop("enable"), "motor.enable: missing"),
    (lambda d: d.update(display={}), "display: unknown key"),
    (lambda d: d["reserved"].update(allow=14), "reserved.allow: must be a list"),
])
def test_malformed_entries_are_rejected_with_their_key(data, edit, message):
    broken = copy.deepcopy(data)
    edit(broken)
    with pytest.raises(PinMapError, match=re.escape(message)):
        parse_pinmap(broken, "p.toml")


def test_missing_or_broken_file_names_the_file(tmp_path):
    with pytest.raises(PinMapError, match=r"nope.toml: \(file\): not found"):
        load_pinmap(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[button.bolus\npin = 3\n")
    with pytest.raises(PinMapError, match=r"bad.toml: \(file\): not valid TOML"):
        load_pinmap(bad)


def test_pinout_path_comes_from_the_environment_first(monkeypatch, tmp_path):
    monkeypatch.setenv("PCA_PINOUT", str(tmp_path / "unit7.toml"))
    assert default_pinout_path() == tmp_path / "unit7.toml"
    monkeypatch.delenv("PCA_PINOUT")
    assert default_pinout_path() in (Path("/etc/pca/pinout.toml"), REPO_PINOUT)


def _boot_gpio_lines():
    states = {}
    for line in (HARDWARE / "config.txt").read_text().splitlines():
        m = re.fullmatch(r"gpio=([\d,\-]+)=([a-z,]+)", line.strip())
        if not m:
            continue
        for part in m.group(1).split(","):
            lo, _, hi = part.partition("-")
            for pin in range(int(lo), int(hi or lo) + 1):
                assert pin not in states, f"GPIO {pin} set twice in config.txt"
                states[pin] = set(m.group(2).split(","))
    return states


def test_config_txt_keeps_the_stepper_driver_disabled_and_still_while_booting(pinmap):
    boot = _boot_gpio_lines()
    enable = pinmap.motor.enable
    off_level = "dl" if enable.active_high else "dh"
    assert boot[enable.pin] == {"op", off_level}
    assert boot[pinmap.motor.step.pin] == {"op", "dl"}
    assert boot[pinmap.motor.dir.pin] == {"op", "dl"}
    a = pinmap.annunciator
    for out in (a.buzzer, a.led_red, a.led_yellow, a.led_green):
        assert boot[out.pin] == {"op", "dl"}, out.key


def test_config_txt_covers_exactly_the_pins_of_the_map(pinmap):
    boot = _boot_gpio_lines()
    assert set(boot) == set(pinmap.pins().values())
    for gpio in pinmap.keypad.rows:
        assert boot[gpio] == {"ip", "pn"}
    for line in (pinmap.bolus_button, *pinmap.sensors.values(), *pinmap.power.values()):
        assert boot[line.pin] == {"ip", "pu" if line.pull == "up" else "pd"}, line.key


def test_config_txt_enables_i2c_and_the_rtc():
    text = (HARDWARE / "config.txt").read_text()
    assert "dtparam=i2c_arm=on" in text
    assert "dtoverlay=i2c-rtc,ds3231" in text


def test_udev_rule_gives_the_gpio_group_the_gpio_chips():
    rules = (HARDWARE / "99-pca-gpio.rules").read_text()
    assert 'KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' in rules


def test_hardware_docs_are_present():
    for name in ("wiring.md", "bom.md", "pinout.toml", "config.txt", "99-pca-gpio.rules"):
        assert (HARDWARE / name).is_file(), name
