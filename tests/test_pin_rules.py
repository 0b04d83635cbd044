"""SR-6 PIN rules (issue 17 item 7): a blocklist in the spirit of NIST SP 800-63B on every path
that sets a PIN, and no unpeppered hash once the pump has a pepper."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import pytest
from pca_testkit import HEADER, MORPHINE, steps

from pca.app import pin as pin_tool
from pca.controller.auth import (
    PinService,
    WeakPinError,
    hash_pin,
    hash_problem,
    pin_weakness,
    verify_pin,
)

PEPPER = b"p" * 32


class Store:
    """Credentials in a dict (the Credentials port)."""

    def __init__(self) -> None:
        self.hashes: dict[str, str] = {}

    def get_pin_hash(self, role: str) -> str | None:
        return self.hashes.get(role)

    def set_pin_hash(self, role: str, encoded: str) -> None:
        self.hashes[role] = encoded


@pytest.mark.parametrize("pin", [
    "2580", "0852", "147258", "789456", "159357",  # keypad lines and columns
    "1212", "6969", "123123", "4545",  # repeated patterns
    "1357", "2468", "9753", "0369",  # even steps
    "0001", "1000", "9899", "000001",  # all but one digit the same
    "1234", "4321", "0000", "1111",  # sequences and repeats (as before)
    "1122", "112233", "1221", "2002",  # doubled digits, palindromes
    "1004", "2001", "1990", "654321",  # the most common PINs, years
])
def test_sr6_weak_pins_are_named_and_refused(pin: str) -> None:
    assert pin_weakness(pin) is not None
    with pytest.raises(WeakPinError, match="too easy to guess"):
        PinService(Store()).set_pin(pin)


@pytest.mark.parametrize("pin", ["270318", "604182", "731904", "915273", "482916", "7391",
                                 "2614", "602517", "903127", "58204719"])
def test_sr6_the_example_and_test_pins_are_not_weak(pin: str) -> None:
    assert pin_weakness(pin) is None


def test_sr6_the_blocklist_leaves_most_of_the_space() -> None:
    four = sum(pin_weakness("".join(p)) is not None
               for p in itertools.product("0123456789", repeat=4))
    assert 500 < four < 1500  # about 9 % of 4-digit PINs: the ones attackers try first


def test_sr6_scenario_provisioning_runs_the_check_and_logs_a_weak_pin(scenario) -> None:  # type: ignore[no-untyped-def]
    out = scenario(HEADER.replace("482916", "2580") + MORPHINE +
                   steps(("0s", "program", {"pin": "2580"})))
    [changed] = out.of("pin_changed")
    assert changed["weak"] == "it is a line on the keypad (like 2580)"
    assert out.of("prescription_activated")  # the scenario contract still runs it
    strong = scenario(HEADER + MORPHINE + steps(("0s", "program")))
    assert "weak" not in strong.of("pin_changed")[0]


def test_sr6_provision_pin_refuses_a_weak_pin_outside_scenarios(tmp_path: Path) -> None:
    from pca.app.scenario import QuietAnnunciator, VirtualClock
    from pca.controller.profile import PumpProfile
    from pca.controller.pump import Pump
    from pca.hw.sim_motor import VirtualMotor
    from pca.store.eventlog import SqliteEventLog
    from pca.therapy.drugs import default_library

    log = SqliteEventLog(tmp_path / "events.db")
    pump = Pump.boot(motor=VirtualMotor(), annunciator=QuietAnnunciator(), log=log,
                     clock=VirtualClock(0), library=default_library(), profile=PumpProfile(),
                     credentials=log)
    with pytest.raises(WeakPinError):
        pump.provision_pin("1357")
    assert not pump.pins.provisioned()
    log.close()


def test_sr6_keypad_and_pca_pin_set_refuse_keypad_patterns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["set", "--db", str(tmp_path / "e.db"), "--pepper", str(tmp_path / "pepper"),
            "--stdin"]
    for weak in ("2580", "1212", "1357", "0001"):
        assert pin_tool.run(base, stdin=io.StringIO(weak + "\n"), out=io.StringIO()) == 2
        assert "too easy to guess" in capsys.readouterr().err


def test_sr6_no_unpeppered_hash_is_accepted_once_a_pepper_exists() -> None:
    plain = hash_pin("482916", n=2**10)
    assert verify_pin("482916", plain)  # a pump without a pepper checks it
    assert not verify_pin("482916", plain, pepper=PEPPER)
    problem = hash_problem(plain, PEPPER)
    assert problem is not None and "without this pump's device pepper" in problem
    store = Store()
    store.hashes["clinician"] = plain
    service = PinService(store, pepper=PEPPER)
    assert service.problem() is not None
    assert service.attempt("482916", 0) == "failed"


def test_sr6_pca_pin_set_will_not_write_an_unpeppered_hash_beside_a_pepper(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pepper = tmp_path / "pepper"
    pepper.write_bytes(PEPPER)
    code = pin_tool.run(["set", "--db", str(tmp_path / "e.db"), "--pepper", str(pepper),
                         "--no-pepper", "--stdin"], stdin=io.StringIO("482916\n"),
                        out=io.StringIO())
    assert code == 2 and "once a pepper exists" in capsys.readouterr().err
    db = tmp_path / "e.db"
    if db.exists():  # nothing changed: no PIN was stored
        from pca.store.eventlog import SqliteEventLog

        log = SqliteEventLog(db)
        assert log.get_pin_hash("clinician") is None
        log.close()
