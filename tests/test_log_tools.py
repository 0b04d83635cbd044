"""SR-7: `pca log verify` catches edits, deletions and reordering; export and tail."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pca_testkit import HEADER, MORPHINE, Outcome, steps

from pca.store.verify import verify


@pytest.fixture
def logged(scenario: Callable[..., Outcome]) -> Path:
    out = scenario(HEADER + MORPHINE + steps(("0s", "program"), ("5s", "start"),
                                             ("1m", "press"), ("5m", "press")))
    return out.db


def tamper(db: Path, *sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER events_no_update")
    conn.execute("DROP TRIGGER events_no_delete")
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()


def pca_log(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pca.app.cli", "log", *args],
                          capture_output=True, text=True, timeout=60)


def test_sr7_intact_log_verifies(logged: Path) -> None:
    verdict = verify(logged)
    assert verdict.ok and verdict.count > 20
    proc = pca_log("verify", "--db", str(logged))
    assert proc.returncode == 0
    assert f"OK, {verdict.count} events" in proc.stdout


def test_sr7_verify_catches_an_edit(logged: Path) -> None:
    tamper(logged, "UPDATE events SET data = replace(data, 'granted', 'denied') "
                   "WHERE seq = (SELECT min(seq) FROM events WHERE type = 'pca_request')")
    verdict = verify(logged)
    assert not verdict.ok and verdict.problem.startswith("edited")
    proc = pca_log("verify", "--db", str(logged))
    assert proc.returncode == 1
    assert f"seq {verdict.first_bad_seq}: edited" in proc.stderr


def test_sr7_verify_catches_a_deletion(logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq = 12")
    verdict = verify(logged)
    assert (verdict.ok, verdict.first_bad_seq) == (False, 13)
    assert verdict.problem == "deleted: seq 12..12 missing"


def test_sr7_verify_catches_reordering(logged: Path) -> None:
    tamper(logged, "UPDATE events SET seq = -1 WHERE seq = 10",
           "UPDATE events SET seq = 10 WHERE seq = 11",
           "UPDATE events SET seq = 11 WHERE seq = -1")
    verdict = verify(logged)
    assert not verdict.ok and verdict.first_bad_seq == 10
    assert verdict.problem.startswith("reordered")


def test_sr7_verify_catches_a_forged_row_with_a_recomputed_hash(logged: Path) -> None:
    # Editing a row and fixing its own hash still breaks the link to the next row.
    from pca.store.eventlog import canonical, chain_hash

    conn = sqlite3.connect(logged)
    seq, prev, data, t_s, pump_ns, wall_ns, type_, actor = conn.execute(
        "SELECT seq, prev_hash, data, t_s, pump_ns, wall_ns, type, actor FROM events "
        "WHERE type = 'pca_request' ORDER BY seq LIMIT 1").fetchone()
    conn.close()
    fields = json.loads(data)
    fields["outcome"] = "denied"
    record = {"seq": seq, "t_s": t_s, "pump_ns": pump_ns, "wall_ns": wall_ns, "type": type_,
              "actor": actor, "fields": fields}
    tamper(logged, f"UPDATE events SET data = '{canonical(fields)}', "
                   f"hash = '{chain_hash(prev, record)}' WHERE seq = {seq}")
    verdict = verify(logged)
    assert not verdict.ok and verdict.first_bad_seq == seq + 1


def test_export_jsonl_and_csv_and_time_filter(logged: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    assert pca_log("export", "--db", str(logged), "--out", str(out)).returncode == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["seq"] == 1
    proc = pca_log("export", "--db", str(logged), "--format", "csv",
                   "--since", "2026-03-01T08:01:00Z", "--until", "2026-03-01T08:05:00Z")
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("seq,t_s,wall,type,actor,outcome")
    walls = [line.split(",")[2] for line in lines[1:]]
    assert walls and all("08:01:00" <= w[11:19] < "08:05:00" for w in walls)


def test_tail_prints_the_last_events(logged: Path) -> None:
    proc = pca_log("tail", "--db", str(logged), "-n", "3")
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 3


def test_bench_log_quick_prints_its_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "pca.app.cli", "bench", "log", "--quick",
                           "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    figures = json.loads(out.read_text())
    assert figures["verify_ok"] is True and figures["events"] == 20_000
    assert figures["durable_appends_per_s"] > 0 and "export_jsonl_s" in figures


def test_sr7_verify_catches_deleting_the_last_rows(logged: Path) -> None:
    tamper(logged, "DELETE FROM events WHERE seq > (SELECT MAX(seq) - 3 FROM events)")
    verdict = verify(logged)
    assert not verdict.ok and verdict.problem.startswith("deleted: the log ends")


def test_schema_v1_is_migrated_forward_on_start_up(logged: Path) -> None:
    from pca.store.eventlog import SCHEMA_VERSION, SqliteEventLog

    conn = sqlite3.connect(logged)
    conn.execute("DROP TABLE episodes")
    conn.execute("DROP TABLE seals")  # v3: not in a v1 log either
    conn.execute("DELETE FROM meta WHERE key IN ('head_seq', 'head_hash')")
    conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    log = SqliteEventLog(logged)
    log.close()
    conn = sqlite3.connect(logged)
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] \
        == str(SCHEMA_VERSION)
    assert conn.execute("SELECT episode, first_seq FROM episodes").fetchall() == [(1, 1)]
    conn.close()
    assert verify(logged).ok


def test_new_patient_starts_a_new_episode_and_deletes_nothing(
        scenario: Callable[..., Outcome]) -> None:
    out = scenario(HEADER + MORPHINE + steps(("0s", "program"), ("5s", "start"),
                                             ("1m", "press"), ("3m", "stop"),
                                             ("4m", "new_patient")))
    conn = sqlite3.connect(out.db)
    episodes = conn.execute("SELECT episode, first_seq FROM episodes").fetchall()
    new_patient = out.of("new_patient")[0]["seq"]
    assert episodes == [(1, 1), (2, new_patient)]
    assert out.of("dose_started")  # the first patient's history is still there
    assert verify(out.db).ok


def test_newer_schema_is_refused(logged: Path) -> None:
    from pca.store.eventlog import LogOpenError, SqliteEventLog

    tamper(logged, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LogOpenError, match="update the software"):
        SqliteEventLog(logged)


def test_csv_export_gives_volumes_in_ml_and_in_the_drug_unit(
        scenario: Callable[..., Outcome], tmp_path: Path) -> None:
    import csv as csv_module

    out = scenario(HEADER + MORPHINE.replace("concentration_per_ml = 1.0",
                                             "concentration_per_ml = 2.0")
                   + steps(("0s", "program"), ("5s", "start"), ("1m", "press")))
    proc = pca_log("export", "--db", str(out.db), "--format", "csv")
    rows = list(csv_module.DictReader(proc.stdout.splitlines()))
    started = next(r for r in rows if r["type"] == "dose_started")
    assert float(started["amount_ml"]) == 0.5  # 1 mg at 2 mg/mL
    assert float(started["amount_drug"]) == 1.0 and started["drug_unit"] == "mg"


def test_log_export_routes_fhir_and_hl7_and_report_runs(logged: Path, tmp_path: Path) -> None:
    fhir = pca_log("export", "--db", str(logged), "--format", "fhir")
    assert fhir.returncode == 0, fhir.stderr
    assert json.loads(fhir.stdout)["resourceType"] == "Bundle"
    hl7 = pca_log("export", "--db", str(logged), "--format", "hl7")
    assert hl7.returncode == 0 and hl7.stdout.startswith("MSH|")
    out = tmp_path / "r.html"
    report = subprocess.run([sys.executable, "-m", "pca.app.cli", "report", "--db", str(logged),
                             "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert out.read_text().lstrip().lower().startswith("<!doctype html")
