"""A pump with a simulated display driven key by key in virtual time (tests/panel helpers;
a plain module with a unique name, never imported from a conftest)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pca.app.scenario import QuietAnnunciator, VirtualClock
from pca.controller.inputs import Input, Key
from pca.controller.ports import NS_PER_S
from pca.controller.profile import PumpProfile
from pca.controller.pump import Pump
from pca.hw.display_sim import SimDisplay
from pca.hw.sim_motor import VirtualMotor
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.therapy.drugs import DrugLibrary, default_library

PIN = "482916"
ADMIN_PIN = "7391"
PEPPER = b"test pepper, 32 bytes long......"

MORPHINE_RX: dict[str, Any] = {
    "drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
    "basal_rate_per_h": 0.5, "pca_dose": 1.0, "lockout_min": 10, "max_pca_per_h": 4,
    "dose_limit": 6.0, "dose_limit_window_h": 4, "loading_dose": 2.0,
    "clinician_bolus_max": 2.0,
}


class PanelRig:
    """The real pump, event log and panel; keys arrive one per tick, `step_s` apart."""

    def __init__(self, db: Path, *, pin: str | None = PIN, admin_pin: str | None = ADMIN_PIN,
                 pepper: bytes | None = None, library: DrugLibrary | None = None,
                 step_s: float = 0.5) -> None:
        self.db = db
        self.step_s = step_s
        self.pepper = pepper
        self.library = library or default_library()
        self.clock = VirtualClock(1_770_000_000 * NS_PER_S)
        self.log = SqliteEventLog(db)
        self.display = SimDisplay()
        self.t_s = 0.0
        self.pump = self.boot()
        if pin is not None:
            self.pump.provision_pin(pin)
        if admin_pin is not None:
            self.pump.pins.set_pin(admin_pin, "admin")
        self.tick()

    def boot(self) -> Pump:
        self.motor = VirtualMotor()
        return Pump.boot(motor=self.motor, annunciator=QuietAnnunciator(), log=self.log,
                         clock=self.clock, library=self.library, profile=PumpProfile(),
                         credentials=self.log, display=self.display, pepper=self.pepper)

    def restart(self) -> None:
        """The process dies and starts again on the same database."""
        self.pump = self.boot()
        self.tick()

    # ---- driving ---------------------------------------------------------------------
    def tick(self, *items: Input) -> None:
        self.clock.now_ns = int(self.t_s * NS_PER_S)
        for item in items:
            self.pump.put(item)
        self.pump.tick()

    def wait(self, seconds: float) -> None:
        """Let `seconds` pass, ticking whenever the pump has something to do by itself
        (motor grants, dose ends), as the real loop and `pca scenario` do."""
        end_ns = int((self.t_s + seconds) * NS_PER_S)
        while True:
            wake = self.pump.next_wakeup_ns()
            if wake is None or not self.clock.now_ns < wake < end_ns:
                break
            self.clock.now_ns = wake
            self.pump.tick()
        self.t_s += seconds
        self.tick()

    def put(self, *items: Input) -> None:
        self.t_s += self.step_s
        self.tick(*items)

    def keys(self, text: str) -> None:
        """Type `text` on the keypad, one key per tick."""
        for key in text:
            self.put(Key(key))

    def unlock(self, pin: str = PIN) -> None:
        self.keys(pin + "#")

    # ---- looking -----------------------------------------------------------------------
    @property
    def screen(self) -> str:
        return "\n".join(line.rstrip() for line in self.display.lines)

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        self.log.flush()
        return [e for e in export_rows(self.db) if kind is None or e["type"] == kind]

    def last(self, kind: str) -> dict[str, Any]:
        found = self.events(kind)
        assert found, f"no {kind} event"
        return found[-1]


def program(rig: PanelRig, rx: dict[str, Any] | None = None, *, source: str = "rx.toml",
            confirm: str = "") -> None:
    """Deliver a pharmacy prescription and confirm it on the keypad (page through, #)."""
    from pca.controller.inputs import PendingPrescription

    rig.put(PendingPrescription(dict(rx or MORPHINE_RX), source))
    rig.unlock()
    rig.keys("#" * 7 + confirm)  # six pages, then "activate? #=yes"
    rig.keys(PIN + "#")
    rig.wait(5)  # "Prescription ACTIVE" goes; the menu is back


def texts(lines: Iterable[str]) -> str:
    return "\n".join(lines)
