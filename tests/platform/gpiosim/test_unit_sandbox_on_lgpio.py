"""systemd/pca.service's /proc sandboxing leaves gpiozero what it needs to find the board."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from pibench import fake_cpuinfo, pump_env
from simkit import SimChip

REPO = Path(__file__).resolve().parents[3]
UNIT = REPO / "systemd" / "pca.service"

PROBE = ("from pca.hw.pins import make_pin_factory\n"
         "f = make_pin_factory('lgpio')\n"
         "print('board', f.board_info.revision)\n")


def unit_proc_options() -> str:
    """The procfs mount options systemd gives the service (ProtectProc=, ProcSubset=)."""
    settings = dict(line.split("=", 1) for line in UNIT.read_text().splitlines()
                    if "=" in line and not line.startswith("#"))
    options = []
    if settings.get("ProtectProc", "default") != "default":
        options.append(f"hidepid={settings['ProtectProc']}")
    if settings.get("ProcSubset", "all") == "pid":
        options.append("subset=pid")
    return ",".join(options) or "defaults"


def test_the_units_proc_sandbox_leaves_gpiozero_the_board_revision(
        make_chip: Callable[..., SimChip], tmp_path: Path) -> None:
    chip = make_chip("pi4")
    cpuinfo = fake_cpuinfo(tmp_path, chip.layout.revision)
    # A fresh procfs with the unit's options, as systemd mounts it for the service; the
    # board's cpuinfo (if that procfs shows one at all) is the Pi's.
    script = ('mount -t proc -o "$1" proc /proc && '
              '{ [ ! -e /proc/cpuinfo ] || mount --bind "$2" /proc/cpuinfo; } && '
              'shift 2 && exec "$@"')
    run = subprocess.run(["unshare", "--mount", "--propagation", "private",
                          "sh", "-c", script, "sh", unit_proc_options(), str(cpuinfo),
                          sys.executable, "-c", PROBE],
                         cwd=tmp_path, env=pump_env(tmp_path), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, (unit_proc_options(), run.stdout, run.stderr[-2000:])
    assert f"board {chip.layout.revision}" in run.stdout
