"""The unit file passes `systemd-analyze verify` and keeps its hardening (where available)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "pca.service"


def test_unit_has_the_notify_watchdog_and_hardening_settings() -> None:
    text = UNIT.read_text()
    for setting in ("Type=notify", "WatchdogSec=", "Restart=on-failure", "User=pca",
                    "SupplementaryGroups=gpio", "StateDirectory=pca", "WorkingDirectory=",
                    "DeviceAllow=char-gpiochip rw", "LimitRTPRIO=", "LimitMEMLOCK=",
                    "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateNetwork=yes"):
        assert setting in text, setting


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    pca = Path(sys.executable).with_name("pca")
    unit = tmp_path / "pca.service"
    unit.write_text(UNIT.read_text().replace("/opt/pca/.venv/bin/pca", str(pca)))
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in proc.stderr.splitlines()
                if "sysinit.target" not in line and "Failed to connect to bus" not in line]
    assert proc.returncode == 0 and not problems, proc.stderr
