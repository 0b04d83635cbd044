"""The controller driven directly: keypad sessions (SR-6), write-ahead grants, ports."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from pca.app.scenario import QuietAnnunciator, VirtualClock
from pca.controller.inputs import BolusButton, ClinicianCommand, Key, PanelCommand
from pca.controller.ports import NS_PER_S, StepRate
from pca.controller.profile import PumpProfile
from pca.controller.pump import Pump
from pca.hw.sim_motor import VirtualMotor
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.therapy.drugs import default_library
from pca.therapy.prescription import parse_request

RX = parse_request({"drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
                    "basal_rate_per_h": 0.5, "pca_dose": 1.0, "lockout_min": 10,
                    "dose_limit": 6.0, "dose_limit_window_h": 4, "clinician_bolus_max": 2.0})


class Rig:
    def __init__(self, db: Path) -> None:
        self.clock = VirtualClock(1_770_000_000 * NS_PER_S)
        self.motor = VirtualMotor()
        self.log = SqliteEventLog(db)
        self.db = db
        self.pump = Pump.boot(motor=self.motor, annunciator=QuietAnnunciator(), log=self.log,
                              clock=self.clock, library=default_library(),
                              profile=PumpProfile(), credentials=self.log)
        self.pump.provision_pin("482916")

    def at(self, t_s: float, *items: object) -> None:
        self.clock.now_ns = int(t_s * NS_PER_S)
        for item in items:
            self.pump.put(item)  # type: ignore[arg-type]
        self.pump.tick()

    def events(self, kind: str) -> list[dict[str, object]]:
        return [e for e in export_rows(self.db) if e["type"] == kind]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path / "events.db")


def keys(text: str) -> list[Key]:
    return [Key(k) for k in text]


def test_sr6_keypad_session_opens_with_pin_and_relocks_after_30s_idle(rig: Rig) -> None:
    rig.at(0, ClinicianCommand("program", None, {"prescription": RX}))
    assert rig.events("action_rejected")[-1]["reason"].startswith("the keypad is locked")
    rig.at(1, *keys("482916#"))
    assert rig.events("auth")[-1]["outcome"] == "ok"
    rig.at(10, ClinicianCommand("program", None, {"prescription": RX}))
    assert rig.pump.state == "stopped"
    rig.at(39.9)
    assert rig.pump.session_until_ns is not None
    rig.at(40.1)  # 30 s after the last action
    assert rig.events("session_locked")
    rig.at(41, ClinicianCommand("new_patient", None))
    assert rig.pump.state == "stopped"
    assert rig.events("action_rejected")[-1]["action"] == "new_patient"


def test_sr6_star_clears_a_half_typed_pin(rig: Rig) -> None:
    rig.at(0, *keys("48*482916#"))
    assert [e["outcome"] for e in rig.events("auth")] == ["ok"]


def test_sr6_backoff_grows_exponentially_and_is_capped(rig: Rig) -> None:
    from pca.controller.auth import BACKOFF_MAX_S, backoff_ns

    assert [backoff_ns(n) // NS_PER_S for n in range(7)] == [0, 0, 0, 15, 30, 60, 120]
    assert backoff_ns(40) == BACKOFF_MAX_S * NS_PER_S


def test_sr6_pins_are_stored_as_salted_scrypt(rig: Rig) -> None:
    from pca.controller import auth

    stored = rig.log.get_pin_hash("clinician")
    assert stored is not None and stored.startswith("scrypt$")
    assert "482916" not in stored
    again = auth.hash_pin("482916")
    assert again != stored  # a new salt every time
    assert auth.verify_pin("482916", stored) and not auth.verify_pin("482917", stored)
    with pytest.raises(auth.PinFormatError):
        auth.hash_pin("12")


def test_production_scrypt_cost_is_memory_hard() -> None:
    from pca.controller import auth

    assert auth.hash_pin("1234", n=2**14).split("$")[1] == "16384"


def test_write_ahead_grant_is_durable_before_the_motor_moves(rig: Rig) -> None:
    """The motor's limit never exceeds what the durable log has granted."""
    rig.at(0, ClinicianCommand("program", "482916", {"prescription": RX}))
    rig.at(1, PanelCommand("start"))
    rig.at(60, BolusButton(True))
    for t in range(61, 125):
        rig.at(t)
        granted = 0
        made = 0
        for e in rig.events("delivery"):
            made += int(e["steps"])  # type: ignore[call-overload]
            granted = int(e["granted_steps"])  # type: ignore[call-overload]
        seg = rig.pump.seg
        if seg is not None:
            # Steps of this segment the motor may make <= logged made + logged grant.
            assert seg.limit - seg.start_count - seg.recorded <= granted
        assert rig.motor.count(rig.clock.now_ns) <= made + granted


def test_the_controller_never_commands_more_than_the_allowance(rig: Rig) -> None:
    rx = parse_request({"drug": "morphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
                        "basal_rate_per_h": 2.0, "pca_dose": 1.0, "lockout_min": 10,
                        "dose_limit": 2.5, "dose_limit_window_h": 1})
    rig.at(0, ClinicianCommand("program", "482916", {"prescription": rx}))
    rig.at(1, PanelCommand("start"))
    rig.at(2, BolusButton(True))
    spm = PumpProfile().steps_per_ml
    limit_steps = int(Fraction(5, 2) * spm)
    t = 2.0
    while t < 3 * 3600:
        t += 7.3
        rig.at(t)
        seg = rig.pump.seg
        allowance = rig.pump.ledger.allowance_steps(rig.pump.pump_ns())
        assert allowance is not None and 0 <= allowance <= limit_steps
        if seg is not None and seg.source in ("basal", "pca"):
            outstanding = seg.limit - rig.motor.count(rig.clock.now_ns)
            assert outstanding <= allowance
    assert rig.events("state_changed")[-1]["to"] in ("kvo", "running")


def test_virtual_motor_follows_the_exact_schedule() -> None:
    motor = VirtualMotor()
    rate = StepRate(258)
    motor.run(rate, 10_000, 0)
    assert motor.count(NS_PER_S - 1) == 257
    assert motor.count(NS_PER_S) == 258
    assert motor.time_of_count(258) == NS_PER_S
    # Raising the limit on the moving segment keeps the schedule (no burst, no gap).
    motor.run(rate, 20_000, NS_PER_S // 2)
    assert motor.count(2 * NS_PER_S) == 516
    assert motor.halt(3 * NS_PER_S) == 774
    assert motor.count(10 * NS_PER_S) == 774
    with pytest.raises(ValueError):
        motor.run(rate, 10, 11 * NS_PER_S)
