"""Fault-injection harness: SIGKILL the real-time pump process at random moments and
check, after every kill and restart, that the log and the dose rules held."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pca.store.verify import verify
from pca.therapy.ledger import HOUR_NS, NS_PER_S

DRIVER = Path(__file__).with_name("driver.py")
LOCKOUT_NS = 6 * NS_PER_S  # RX lockout_min = 0.1
LIMIT_STEPS = 9288  # 0.6 mL at 15480 steps/mL
MAX_PER_H = 30


@dataclass
class Report:
    kills: int = 0
    mid_write_deaths: int = 0
    restarts: int = 0
    kills_mid_dose: int = 0
    events_checked: int = 0
    doses: int = 0
    interrupted: int = 0
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"kills={self.kills} (in a write transaction: {self.mid_write_deaths}, "
                f"mid-dose: {self.kills_mid_dose}) restarts={self.restarts} "
                f"doses={self.doses} interrupted_doses_logged={self.interrupted} "
                f"events_checked={self.events_checked} violations={len(self.violations)}")


def rows(db: Path) -> list[tuple[int, int, str, dict[str, object], str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(seq, pump_ns, type_, json.loads(data), hash_) for seq, pump_ns, type_, data, hash_
                in conn.execute("SELECT seq, pump_ns, type, data, hash FROM events ORDER BY seq")]
    finally:
        conn.close()


def check_rules(events: list[tuple[int, int, str, dict[str, object], str]]) -> list[str]:
    """SR-1, SR-2, SR-3 in pump time; SR-5 restart behaviour; interrupted doses once."""
    bad: list[str] = []
    starts: list[int] = []
    granted: list[int] = []
    counted: list[tuple[int, int]] = []
    open_dose = False
    after_restart = False
    for i, (seq, t, kind, f, _) in enumerate(events):
        if kind == "restarted":
            if open_dose and f["interrupted_dose_ml"] == 0:
                bad.append(f"seq {seq}: restart forgot the open dose")
            after_restart = True
        elif kind == "pca_request" and f["outcome"] == "granted":
            if open_dose:
                bad.append(f"seq {seq}: SR-1 PCA granted during a dose")
            if starts and t - starts[-1] < LOCKOUT_NS:
                bad.append(f"seq {seq}: SR-1 lockout broken ({(t - starts[-1]) / 1e9:.2f} s)")
            granted.append(t)
            if sum(1 for g in granted if t - HOUR_NS < g <= t) > MAX_PER_H:
                bad.append(f"seq {seq}: SR-3 too many doses in an hour")
        elif kind == "dose_started":
            if open_dose:
                bad.append(f"seq {seq}: dose started inside a dose")
            cause = [e for e in events[:i] if e[2] in ("pca_request", "restarted",
                                                       "dose_ended")][-1]
            if f["source"] == "pca" and not (cause[2] == "pca_request"
                                             and cause[3].get("outcome") == "granted"
                                             and t - cause[1] < NS_PER_S):
                bad.append(f"seq {seq}: SR-5 a dose started by itself")
            starts.append(t)
            open_dose = True
        elif kind == "dose_ended":
            if not open_dose:
                bad.append(f"seq {seq}: dose ended twice (interrupted dose logged twice?)")
            open_dose = False
        elif kind == "state_changed" and after_restart and f["from"] == "off":
            if f["to"] not in ("stopped", "unprogrammed", "alarm"):
                bad.append(f"seq {seq}: SR-5 came up {f['to']}, not stopped")
            after_restart = False
        elif kind == "delivery" and f["source"] in ("basal", "pca", "loading"):
            counted.append((t, int(str(f["steps"]))))
            in_window = sum(s for tt, s in counted if t - HOUR_NS < tt <= t)
            if in_window > LIMIT_STEPS:
                bad.append(f"seq {seq}: SR-2 {in_window} steps in an hour > {LIMIT_STEPS}")
    return bad


def run_campaign(workdir: Path, *, kills: int, seed: int, max_run_s: float = 10.0,
                 fresh_every: int = 0) -> Report:
    """`fresh_every` > 0 starts a new pump database (a new unit) every so many kills, so a
    long campaign keeps dosing instead of sitting at the dose limit."""
    rng = random.Random(seed)
    db = workdir / "events.db"
    library = workdir / "library.toml"
    from driver import LIBRARY  # type: ignore[import-not-found]

    library.write_text(LIBRARY)
    report = Report()
    committed_before: list[tuple[int, str]] = []
    seen: set[str] = set()
    per_db: dict[Path, tuple[int, int]] = {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for k in range(kills):
        if fresh_every and k and k % fresh_every == 0:
            db = workdir / f"events-{k // fresh_every}.db"
            committed_before, seen = [], set()
        die_in_write = 0.1 if k % 4 == 3 else 0.0
        proc = subprocess.Popen(
            [sys.executable, str(DRIVER), "--db", str(db), "--library", str(library),
             "--seed", str(seed * 1000 + k), "--die-in-write", str(die_in_write)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        report.restarts += k > 0
        last_committed = [0]

        def read(p: subprocess.Popen[str] = proc, box: list[int] = last_committed) -> None:
            assert p.stdout is not None
            for line in p.stdout:
                if line.startswith("committed "):
                    box[0] = int(line.split()[1])

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        deadline = time.monotonic() + rng.uniform(1.0, max_run_s)
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            report.kills += 1
        elif proc.returncode == -signal.SIGKILL:
            report.kills += 1
            report.mid_write_deaths += 1
        else:
            err = proc.stderr.read() if proc.stderr else ""
            report.violations.append(f"run {k}: driver exited {proc.returncode}: {err[-500:]}")
        proc.wait()
        reader.join(timeout=5)
        if proc.stderr:
            proc.stderr.close()
        if not db.exists():
            continue
        events = rows(db)
        have = {seq: h for seq, _, _, _, h in events}
        lost = [seq for seq, h in committed_before if have.get(seq) != h]
        lost += [s for s in range(1, last_committed[0] + 1) if s not in have]
        if lost:
            report.violations.append(f"run {k}: committed events lost or changed: {lost[:5]}")
        verdict = verify(db)
        if not verdict.ok:
            report.violations.append(f"run {k}: chain broken at {verdict.first_bad_seq}: "
                                     f"{verdict.problem}")
        open_dose = False
        for _, _, kind, _, _ in events:
            open_dose = kind == "dose_started" or (open_dose and kind != "dose_ended")
        report.kills_mid_dose += open_dose
        # The whole log is re-checked after every restart; report each problem once.
        report.violations.extend(f"run {k}: {v}" for v in check_rules(events)
                                 if v not in seen)
        seen.update(check_rules(events))
        report.events_checked += len(events)
        per_db[db] = (sum(1 for e in events if e[2] == "dose_started"),
                      sum(1 for e in events
                          if e[2] == "dose_ended" and e[3]["completion"] == "interrupted"))
        report.doses = sum(d for d, _ in per_db.values())
        report.interrupted = sum(i for _, i in per_db.values())
        committed_before = [(seq, h) for seq, _, _, _, h in events]
    return report
