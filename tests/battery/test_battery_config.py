"""[battery] in pca.toml: the fuel gauge's settings, and one clear line for a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from pca.app.config import ConfigError, load_config


def _cfg(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pca.toml"
    path.write_text(text)
    return path


def test_battery_table_is_read(tmp_path: Path) -> None:
    cfg = load_config(_cfg(tmp_path, '[battery]\nkind = "ina219"\naddress = 0x43\ncells = 2\n'
                                     'capacity_wh = 14.8\n'))
    assert (cfg.battery.kind, cfg.battery.address, cfg.battery.cells,
            cfg.battery.capacity_wh, cfg.battery.port) == ("ina219", 0x43, 2, 14.8, 1)
    assert load_config(_cfg(tmp_path, "")).battery.kind == "none"


@pytest.mark.parametrize("body, named", [
    ('kind = "max17048"', "battery.kind"),
    ("cells = 0", "battery.cells"),
    ("capacity_wh = -1", "battery.capacity_wh"),
    ('address = "0x42"', "battery.address"),
    ("volts = 4", "unknown field"),
])
def test_bad_battery_settings_name_the_field(tmp_path: Path, body: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_cfg(tmp_path, f"[battery]\n{body}\n"))
    assert named in str(err.value) and "\n" not in str(err.value)
