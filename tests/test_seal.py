"""SR-7 sealed history (issue 17): forward-secure seals, the anchor outside the file, damaged
rows, storage watchdogs and start-up from a checkpoint. Each test is an attack that the
log before seals (plain SHA-256 chain, no key, no anchor) let through."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.controller.ports import NS_PER_S, Event
from pca.store.eventlog import EVENT_COLUMNS, SEAL_COLUMNS, SqliteEventLog, export_rows
from pca.store.resume import dumps
from pca.store.rows import canonical, chain_hash, row_event, row_record
from pca.store.seal import (
    EPOCH_NS,
    Anchor,
    SealKey,
    anchor_path,
    key_path,
    parse_verify_key,
    sim_verify_key_path,
)
from pca.store.verify import verify
from pca.store.walk import SEAL_KEYS, Walker, creds_digest, episodes_digest

TWO_HOURS = steps(("0s", "program"), ("5s", "start"), ("10m", "press"), ("40m", "press"),
                  ("70m", "press"), ("100m", "press"))


@pytest.fixture
def sealed(scenario: Callable[..., Outcome]) -> Outcome:
    """Two hours of basal and presses: eight epochs, so eight seals."""
    return scenario(HEADER + 'end = "2h"\n' + MORPHINE + TWO_HOURS)


def seed_of(db: Path) -> bytes:
    return parse_verify_key(sim_verify_key_path(db).read_text())


def open_rw(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db)
    for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def restore_triggers(conn: sqlite3.Connection, db: Path) -> None:
    """The attacker puts the triggers back, exactly as they were."""
    fresh = sqlite3.connect(":memory:")
    import sqlite_utils

    from pca.store.eventlog import _create_schema  # the same schema text

    _create_schema(sqlite_utils.Database(fresh))
    for (sql,) in fresh.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger'"):
        conn.execute(sql)
    fresh.close()


def rechain(db: Path, edit: Callable[[int, str, dict[str, object]], dict[str, object] | None],
            ) -> None:
    """The strongest keyless forgery: drop the triggers, edit rows, recompute every hash, every
    seal's hash, checkpoint and digests (the MACs cannot be recomputed), the meta head and the
    anchor, then put the triggers back."""
    conn = open_rw(db)
    rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq").fetchall()
    seals = [dict(zip(SEAL_KEYS, s, strict=True))
             for s in conn.execute(f"SELECT {SEAL_COLUMNS} FROM seals ORDER BY n")]
    conn.execute("DELETE FROM events")
    conn.execute("DELETE FROM seals")
    walker = Walker()
    prev = "0" * 64
    by_seq: dict[int, list[dict[str, object]]] = {}
    for seal in seals:
        by_seq.setdefault(int(seal["seq"]), []).append(seal)
    new_seq = 0
    for row in rows:
        seq, t_s, pump_ns, wall_ns, wall, type_, actor, data, _prev, _hash = row
        fields = edit(seq, type_, json.loads(data))
        if fields is None:
            continue  # the row is dropped
        new_seq += 1
        event = row_event((t_s, pump_ns, wall_ns, type_, actor, canonical(fields)))
        digest = chain_hash(prev, row_record(new_seq, event))
        new_row = (new_seq, t_s, pump_ns, wall_ns, wall, type_, actor, canonical(fields), prev,
                   digest)
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", new_row)
        walker.row(new_row)
        for seal in by_seq.get(seq, []):
            seal.update(seq=new_seq, hash=digest, checkpoint=dumps(walker.fold.checkpoint()),
                        episodes=episodes_digest(walker.episodes))
            conn.execute(f"INSERT INTO seals VALUES ({', '.join('?' * len(SEAL_KEYS))})",
                         [seal[k] for k in SEAL_KEYS])
            walker.seal(seal)
        prev = digest
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", [str(new_seq)])
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", [prev])
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    anchor_path(db).unlink()
    last_seal = seals[-1] if seals else {"seq": 0, "mac": ""}
    Anchor([anchor_path(db)]).write(new_seq, prev, int(last_seal["seq"]),  # type: ignore[arg-type]
                                    str(last_seal["mac"]))


def pca_log(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pca.app.cli", "log", *args],
                          capture_output=True, text=True, timeout=120)


# ---- an intact sealed log ---------------------------------------------------------------
def test_sr7_an_intact_log_is_proven_with_its_key_up_to_the_last_seal(sealed: Outcome) -> None:
    db = sealed.db
    conn = sqlite3.connect(db)
    seals = conn.execute("SELECT epoch, mac FROM seals ORDER BY n").fetchall()
    conn.close()
    assert len(seals) >= 7 and all(mac for _e, mac in seals)
    assert [e for e, _m in seals] == sorted({e for e, _m in seals})  # one per epoch
    verdict = verify(db, seed_of(db))
    assert verdict.ok, verdict.problems
    assert verdict.keyed and verdict.last_sealed.startswith("seq ")
    plain = verify(db)
    assert plain.ok and any("no verification key" in n for n in plain.notes)
    out = pca_log("verify", "--db", str(db), "--verify-key", sim_verify_key_path(db).read_text())
    assert out.returncode == 0 and "PROVEN with the verification key" in out.stdout
    out = pca_log("verify", "--db", str(db))
    assert out.returncode == 0 and "cannot prove" in out.stdout


def test_sr7_the_key_on_the_pump_only_moves_forward(sealed: Outcome) -> None:
    key = SealKey.load(key_path(sealed.db))
    assert key.epoch >= 7  # stepped on with every epoch of pump time
    from pca.store.seal import key_at

    seed = seed_of(sealed.db)
    assert key.key == key_at(seed, key.epoch)
    raw = key_path(sealed.db).read_bytes()
    for older in range(key.epoch):  # no earlier key is left in the file
        assert key_at(seed, older).hex().encode() not in raw


def test_a_bad_verification_key_is_one_line_of_error(sealed: Outcome) -> None:
    out = pca_log("verify", "--db", str(sealed.db), "--verify-key", "12-zz")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


# ---- attacks ----------------------------------------------------------------------------
def test_sr7_a_rechained_forgery_fails_with_the_key(sealed: Outcome) -> None:
    db = sealed.db

    def deny_first_grant(seq: int, type_: str, fields: dict[str, object]) -> dict[str, object]:
        if type_ == "pca_request" and fields.get("outcome") == "granted" and seq < 60:
            return {**fields, "outcome": "denied", "reason": "lockout"}
        return fields

    rechain(db, deny_first_grant)
    assert verify(db).ok  # keyless: consistent, and verify says it cannot prove more
    verdict = verify(db, seed_of(db))
    assert not verdict.ok
    assert "MAC does not verify" in verdict.problem


def test_sr7_a_fake_occlusion_inserted_and_rechained_fails_with_the_key(
        sealed: Outcome) -> None:
    db = sealed.db

    def fake(seq: int, type_: str, fields: dict[str, object]) -> dict[str, object]:
        if seq == 30:
            return {"alarm": "occlusion", "priority": "high"} if type_ == "alarm_raised" \
                else fields
        return fields

    conn = open_rw(db)
    conn.execute("UPDATE events SET type = 'alarm_raised' WHERE seq = 30")
    conn.commit()
    conn.close()
    rechain(db, fake)
    verdict = verify(db, seed_of(db))
    assert not verdict.ok and "MAC does not verify" in verdict.problem


def test_sr7_a_cut_tail_with_the_head_fixed_fails(sealed: Outcome) -> None:
    db = sealed.db
    last = sqlite3.connect(db).execute("SELECT MAX(seq) FROM events").fetchone()[0]
    rechain(db, lambda seq, t, f: None if seq > last - 50 else f)  # anchor rewritten too
    assert verify(db).ok  # keyless, a consistent shorter log: nothing to see
    verdict = verify(db, seed_of(db))  # the pump's key has moved on past the last seal
    assert not verdict.ok and "sealed events were cut" in verdict.problem


def test_sr7_a_cut_tail_is_caught_by_the_anchor_without_the_key(sealed: Outcome) -> None:
    db = sealed.db
    conn = open_rw(db)
    last = conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
    conn.execute("DELETE FROM events WHERE seq > ?", [last - 50])
    conn.execute("DELETE FROM seals WHERE seq > ?", [last - 50])
    head = conn.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_seq'", [str(head[0])])
    conn.execute("UPDATE meta SET value = ? WHERE key = 'head_hash'", [head[1]])
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    verdict = verify(db)
    assert not verdict.ok and f"anchor says seq {last}" in verdict.problem
    assert any(f"anchor says seq {last}" in p for p in SqliteEventLog(db).problems)


def test_sr7_a_swapped_fresh_file_fails_verify_and_the_start_up_check(
        scenario: Callable[..., Outcome], sealed: Outcome) -> None:
    other = scenario(HEADER + 'end = "3h"\n' + MORPHINE + steps(("0s", "program"),
                                                                ("5s", "start")))
    shutil.copy(other.db, sealed.db)  # another log, valid in itself (its own seals and key)
    verdict = verify(sealed.db)
    assert not verdict.ok and "the file was replaced" in verdict.problem
    problems = SqliteEventLog(sealed.db).problems
    assert any("the file was replaced" in p for p in problems)
    keyed = verify(sealed.db, seed_of(sealed.db))
    assert not keyed.ok and any("MAC does not verify" in p for p in keyed.problems)


def test_sr7_a_forged_wall_time_fails(sealed: Outcome) -> None:
    conn = open_rw(sealed.db)
    conn.execute("UPDATE events SET wall = '2026-03-01T07:00:00.000Z' WHERE seq = 12")
    restore_triggers(conn, sealed.db)
    conn.commit()
    conn.close()
    verdict = verify(sealed.db)
    assert not verdict.ok and verdict.first_bad_seq == 12 and "wall" in verdict.problem


def test_sr7_credentials_episodes_and_triggers_are_covered(
        scenario: Callable[..., Outcome]) -> None:
    def fresh() -> Path:
        return scenario(HEADER + 'end = "2h"\n' + MORPHINE + TWO_HOURS).db

    db = fresh()
    conn = open_rw(db)
    conn.execute("UPDATE credentials SET pin_hash = pin_hash || 'x'")
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    assert not verify(db).ok and "credentials" in " ".join(verify(db).problems)
    db = fresh()
    conn = open_rw(db)
    conn.execute("UPDATE episodes SET started_wall = '2020-01-01T00:00:00.000Z'")
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    assert "episodes" in " ".join(verify(db).problems)
    db = fresh()
    open_rw(db).close()  # only the triggers dropped
    assert "schema" in " ".join(verify(db).problems)
    db = fresh()
    conn = open_rw(db)
    conn.execute("DELETE FROM seals WHERE n = 3")
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    assert "unsealed" in " ".join(verify(db).problems)


def test_sr7_a_cut_wal_that_drops_committed_events_is_caught(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    log = SqliteEventLog(db, provision_keys=True)
    log.db.execute("PRAGMA wal_autocheckpoint = 0")
    for i in range(40):
        log.append(Event("delivery", "system", i * 60.0, i * 60 * NS_PER_S,
                         1_770_000_000 * NS_PER_S + i * 60 * NS_PER_S,
                         {"source": "basal", "steps": 10, "ml": 0.01, "granted_steps": 0}))
        log.flush()
    copy = tmp_path / "copy.db"  # what power loss leaves if the WAL's last frames are torn
    shutil.copy(db, copy)
    wal = Path(str(db) + "-wal").read_bytes()
    Path(str(copy) + "-wal").write_bytes(wal[:len(wal) - 3000])
    shutil.copy(anchor_path(db), anchor_path(copy))
    shutil.copy(key_path(db), key_path(copy))
    log.close()
    kept = sqlite3.connect(copy).execute("SELECT MAX(seq) FROM events").fetchone()[0]
    assert kept < 40  # SQLite dropped the committed events whose frames were cut
    verdict = verify(copy)
    assert not verdict.ok and "anchor says seq 40 was written" in verdict.problem
    assert any("committed events were lost" in p for p in SqliteEventLog(copy).problems)


DAMAGE = {"truncated": '{"source":', "nan": '{"source":"basal","steps":NaN,"ml":0.1}',
          "deep": "[" * 100_000 + "]" * 100_000}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_sr7_a_damaged_row_is_reported_by_seq_and_never_crashes(
        kind: str, sealed: Outcome, tmp_path: Path) -> None:
    db = sealed.db
    conn = open_rw(db)
    delivery = conn.execute("SELECT seq FROM events WHERE type = 'delivery' ORDER BY seq DESC "
                            "LIMIT 1").fetchone()[0]
    conn.execute("UPDATE events SET data = ? WHERE seq = ?", [DAMAGE[kind], delivery])
    conn.execute("UPDATE events SET data = '{}' WHERE seq = 5")  # a second fault, earlier
    restore_triggers(conn, db)
    conn.commit()
    conn.close()
    verdict = verify(db)
    assert not verdict.ok
    assert any(p.startswith(f"seq {delivery}: damaged row") for p in verdict.problems)
    assert any(p.startswith("seq 5:") for p in verdict.problems)  # it carried on
    out = pca_log("verify", "--db", str(db))
    assert out.returncode == 1 and "Traceback" not in out.stderr and f"seq {delivery}" in \
        out.stderr
    assert pca_log("export", "--db", str(db)).returncode == 0
    assert pca_log("tail", "--db", str(db)).returncode == 0
    from pca.app.config import Config
    from pca.app.daemon import wire

    wiring = wire(Config(), sim=True, db=db)
    with wiring.stack:
        assert "log_failure" in wiring.pump.alarms.active
        assert any(f"seq {delivery}" in p for p in wiring.problems)


# ---- the storage watchdog -----------------------------------------------------------------
LIB = """
[[drug]]
name = "testmorphine"
unit = "mg"
concentrations_per_ml = [1.0]
dose_limit_required = true
[drug.limits]
basal_rate_per_h    = [0.0, 0.0, 5.0, 5.0]
pca_dose            = [0.01, 0.01, 1.0, 1.0]
lockout_min         = [0.05, 0.05, 60, 60]
dose_limit_window_h = [1, 1, 12, 12]
max_pca_per_h       = [1, 1, 30, 30]
dose_limit          = [0.1, 0.1, 10.0, 10.0]
loading_dose        = [0.0, 0.0, 1.0, 1.0]
clinician_bolus_max = [0.0, 0.0, 1.0, 1.0]
"""
RX = {"drug": "testmorphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
      "basal_rate_per_h": 5.0, "pca_dose": 0.05, "lockout_min": 0.1, "max_pca_per_h": 30,
      "dose_limit": 6.0, "dose_limit_window_h": 1}


def _delivering(db: Path) -> object:
    import tomllib

    from pca.app.config import Config
    from pca.app.daemon import wire
    from pca.controller import auth
    from pca.controller.inputs import ClinicianCommand, PanelCommand
    from pca.controller.profile import PumpProfile
    from pca.therapy.drugs import parse_library

    auth.SCRYPT_N = 2**10
    log = SqliteEventLog(db)
    log.set_pin_hash("clinician", auth.hash_pin("482916"))
    log.close()
    cfg = Config(profile=PumpProfile(bolus_rate_ml_h=Fraction(60), syringe_ml=Fraction(100)))
    library = parse_library(tomllib.loads(LIB)["drug"], "test")
    wiring = wire(cfg, sim=True, db=db, library=library)
    wiring.pump.put(ClinicianCommand("program", "482916", {"prescription": RX}))
    wiring.pump.put(PanelCommand("start"))
    for _ in range(10):
        wiring.pump.tick()
        time.sleep(0.02)
    assert wiring.pump.state == "running", wiring.problems
    return wiring


@pytest.mark.parametrize("fault", ["deleted", "moved", "replaced"])
def test_sr7_the_live_database_going_away_stops_delivery_and_keeps_events(
        fault: str, tmp_path: Path) -> None:
    from pca.app.storage_watch import StorageWatchdog

    db = tmp_path / "events.db"
    wiring = _delivering(db)
    pump = wiring.pump  # type: ignore[attr-defined]
    with wiring.stack:  # type: ignore[attr-defined]
        if fault == "deleted":
            db.unlink()
        elif fault == "moved":
            db.rename(tmp_path / "elsewhere.db")
        else:
            db.unlink()
            db.write_bytes(b"")
        StorageWatchdog(wiring).check()  # type: ignore[arg-type]
        assert "log_failure" in pump.alarms.active and pump.state == "alarm"
        made = pump.motor.count(pump.pump_ns())
        for _ in range(10):
            pump.tick()
            time.sleep(0.02)
        assert pump.motor.count(pump.pump_ns()) == made  # delivery stopped
        assert wiring.log.pending > 0  # type: ignore[attr-defined]  # kept in memory
        alarm = [e for e in wiring.log._pending  # type: ignore[attr-defined]
                 if e.type == "alarm_raised" and e.fields.get("alarm") == "log_failure"]
        assert alarm and "database file" in str(alarm[0].fields["detail"])


def test_sr7_a_write_to_a_deleted_database_is_refused_not_lost(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    log.append(Event("delivery", "system", 0.0, 0, 0, {"source": "basal", "steps": 1}))
    db.unlink()
    from pca.controller.ports import LogWriteError

    with pytest.raises(LogWriteError, match="deleted"):
        log.flush()
    assert log.pending == 1


# ---- start-up from a checkpoint -----------------------------------------------------------
def test_sr5_start_up_from_a_checkpoint_recovers_what_a_full_replay_does(
        scenario: Callable[..., Outcome], tmp_path: Path) -> None:
    from pca.controller.recovery import recover

    out = scenario(HEADER + 'end = "80h"\n' + MORPHINE + steps(
        ("0s", "program"), ("5s", "start"),
        *[(f"{h}h", "press") for h in range(1, 80, 3)]))
    log = SqliteEventLog(out.db)
    base, tail = log.resume()
    assert base is not None  # the log is longer than the replay window: a checkpoint is used
    tail_events = list(tail)
    assert 0 < len([s for s in tail_events if not s.context]) < len(out.events)
    quick = recover([s for s in tail_events if not s.context], base)
    full = recover(log.replay())
    for name in ("events", "last_seq", "last_pump_ns", "prescription", "open_dose",
                 "open_grant", "last_state", "failures", "alarms", "open_alarms", "syringe_ml",
                 "delivered_since_syringe"):
        assert getattr(quick, name) == getattr(full, name), name
    window = 12 * 3600 * NS_PER_S
    assert [d for d in quick.deliveries if d[2] > full.last_pump_ns - window] == \
        [d for d in full.deliveries if d[2] > full.last_pump_ns - window]
    log.close()


def test_sr7_a_forged_checkpoint_fails_verify(scenario: Callable[..., Outcome]) -> None:
    out = scenario(HEADER + 'end = "2h"\n' + MORPHINE + TWO_HOURS)
    conn = open_rw(out.db)
    cp = json.loads(conn.execute("SELECT checkpoint FROM seals WHERE n = 4").fetchone()[0])
    cp["rec"]["delivered_since_syringe"] = 0
    conn.execute("UPDATE seals SET checkpoint = ? WHERE n = 4", [dumps(cp)])
    restore_triggers(conn, out.db)
    conn.commit()
    conn.close()
    assert "forged checkpoint" in " ".join(verify(out.db).problems)


def test_verify_streams_a_long_log_without_keeping_it(tmp_path: Path) -> None:
    """Many epochs, two events each: every seal checked, nothing kept per row."""
    db = tmp_path / "long.db"
    log = SqliteEventLog(db, provision_keys=True)
    for i in range(400):
        t = i * EPOCH_NS // 2
        log.append(Event("delivery", "system", t / NS_PER_S, t, t,
                         {"source": "basal", "steps": 1, "ml": 0.001, "granted_steps": 0}))
    log.flush()
    log.close()
    verdict = verify(db, seed_of(db))
    assert verdict.ok and verdict.count == 400
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM seals").fetchone()[0] == 199
    assert creds_digest(conn)
    conn.close()
    assert sum(1 for _ in export_rows(db)) == 400


@pytest.mark.parametrize("loop_kind", ["sleeping", "fixed-tick"])
def test_sr7_the_running_loop_notices_a_deleted_database_within_seconds(
        loop_kind: str, tmp_path: Path) -> None:
    import threading

    from pca.app.daemon import ControlLoop
    from pca.app.notify import Notifier
    from pca.app.sleeploop import SleepingLoop

    db = tmp_path / "events.db"
    wiring = _delivering(db)
    pump = wiring.pump  # type: ignore[attr-defined]
    cls = SleepingLoop if loop_kind == "sleeping" else ControlLoop
    loop = cls(wiring, 50, Notifier(address=""))  # type: ignore[arg-type]
    with wiring.stack:  # type: ignore[attr-defined]
        thread = threading.Thread(target=loop.run)
        thread.start()
        try:
            time.sleep(0.3)
            assert "log_failure" not in pump.alarms.active
            db.unlink()
            deadline = time.monotonic() + 5
            while "log_failure" not in pump.alarms.active and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            loop.stop.set()
            thread.join(5)
        assert "log_failure" in pump.alarms.active and pump.state == "alarm"


def test_sr5_a_pump_booted_from_a_checkpoint_is_the_pump_a_full_replay_gives(
        scenario: Callable[..., Outcome], tmp_path: Path) -> None:
    """Everything the journal's observers rebuild (panel history, PIN audit, library, PIB
    schedule) and the pump's own memory, booted both ways from the same long log."""
    from pca.app.scenario import QuietAnnunciator, VirtualClock
    from pca.controller.profile import PumpProfile
    from pca.controller.pump import Pump
    from pca.hw.sim_motor import VirtualMotor
    from pca.therapy.drugs import default_library

    out = scenario(HEADER + 'end = "80h"\n' + MORPHINE + steps(
        ("0s", "program"), ("5s", "start"), *[(f"{h}h", "press") for h in range(1, 80, 3)]))
    full_db = tmp_path / "full.db"
    shutil.copy(out.db, full_db)
    conn = open_rw(full_db)
    conn.execute("DELETE FROM seals")  # no checkpoint: start-up replays every event
    conn.commit()
    conn.close()

    def boot(db: Path) -> object:
        log = SqliteEventLog(db)
        end = sqlite3.connect(db).execute("SELECT MAX(pump_ns) FROM events").fetchone()[0]
        clock = VirtualClock(1_772_352_000 * NS_PER_S)
        clock.now_ns = end + NS_PER_S
        pump = Pump.boot(motor=VirtualMotor(), annunciator=QuietAnnunciator(), log=log,
                         clock=clock, library=default_library(), profile=PumpProfile(),
                         credentials=log)
        now = pump.pump_ns()
        history = pump.panel.history if hasattr(pump.panel, "history") else None
        state = {"snapshot": pump.snapshot(), "pib": vars(pump.pib.schedule).copy(),
                 "hash_ids": dict(pump.sessions.known_hash_ids),
                 "library": pump.intake.library.version if hasattr(
                     pump.intake.library, "version") else None,
                 "lockout": pump.ledger.lockout_ends_ns(),
                 "counted": pump.ledger.counted_steps(now),
                 "history": None if history is None else history.summary(72, now)}
        log.close()
        return state

    assert SqliteEventLog(out.db).resume()[0] is not None
    assert boot(out.db) == boot(full_db)
