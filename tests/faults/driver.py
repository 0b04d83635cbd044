"""Fault-injection driver: the daemon's wiring (`pca run --sim`) in real time, with a patient.

Run as a separate process by the harness, which SIGKILLs it at random moments. It
prints `committed <seq>` after every durable flush, so the harness knows exactly
what was committed before the kill. With --die-in-write P it also kills itself
inside a write transaction (after the insert, before the commit) with probability P.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import tomllib
from fractions import Fraction
from pathlib import Path

from pca.app.config import Config, MotorConfig
from pca.app.daemon import ControlLoop, wire
from pca.app.notify import Notifier
from pca.controller import auth
from pca.controller.inputs import BolusButton, ClinicianCommand, PanelCommand
from pca.controller.profile import PumpProfile
from pca.store import eventlog
from pca.store.eventlog import SqliteEventLog
from pca.therapy.drugs import parse_library

PIN = "482916"
LIBRARY = """
[[drug]]
name = "testmorphine"
unit = "mg"
concentrations_per_ml = [1.0]
dose_limit_required = true
[drug.limits]
basal_rate_per_h    = [0.0, 0.0, 1.0, 1.0]
pca_dose            = [0.01, 0.01, 1.0, 1.0]
lockout_min         = [0.05, 0.05, 60, 60]
dose_limit_window_h = [1, 1, 12, 12]
max_pca_per_h       = [1, 1, 30, 30]
dose_limit          = [0.1, 0.1, 10.0, 10.0]
loading_dose        = [0.0, 0.0, 1.0, 1.0]
clinician_bolus_max = [0.0, 0.0, 1.0, 1.0]
"""
RX = {"drug": "testmorphine", "concentration_per_ml": 1.0, "dose_unit": "mg",
      "basal_rate_per_h": 0.2, "pca_dose": 0.05, "lockout_min": 0.1, "max_pca_per_h": 30,
      "dose_limit": 0.6, "dose_limit_window_h": 1}
PROFILE = PumpProfile(bolus_rate_ml_h=Fraction(60), syringe_ml=Fraction(100), rtc=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--die-in-write", type=float, default=0.0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    auth.SCRYPT_N = 2**10  # the cost of the hash is not what is under test here

    original_write = SqliteEventLog._write

    def write(self: SqliteEventLog, rows: list[dict[str, object]],
              seals: list[dict[str, object]]) -> None:
        if args.die_in_write and rows and rng.random() < args.die_in_write:
            with self.db.atomic():
                self.db.table("events").insert_all(rows)
                os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction
        original_write(self, rows, seals)

    SqliteEventLog._write = write  # type: ignore[method-assign]
    original_flush = eventlog.SqliteEventLog.flush

    def flush(self: SqliteEventLog) -> None:
        before = self.last_seq
        original_flush(self)
        if self.last_seq != before:
            print(f"committed {self.last_seq}", flush=True)

    SqliteEventLog.flush = flush  # type: ignore[method-assign]

    db = Path(args.db)
    if not db.exists():
        log = SqliteEventLog(db)
        log.set_pin_hash("clinician", auth.hash_pin(PIN))
        log.close()
    cfg = Config(profile=PROFILE, motor=MotorConfig(budget_ml=Fraction(5), budget_window_s=3600))
    library = parse_library(tomllib.loads(Path(args.library).read_text())["drug"], args.library)
    wiring = wire(cfg, sim=True, db=db, library=library)
    pump = wiring.pump
    if wiring.problems:
        print("problems", wiring.problems, flush=True)
    if pump.state == "unprogrammed":
        pump.put(ClinicianCommand("program", PIN, {"prescription": RX}))
    pump.put(PanelCommand("start"))
    loop = ControlLoop(wiring, 50, Notifier(address=""))

    def patient() -> None:
        while not loop.stop.is_set():
            loop.stop.wait(rng.uniform(0.2, 2.0))
            pump.put(BolusButton(True))
            pump.put(BolusButton(False))

    threading.Thread(target=patient, daemon=True).start()
    print("running", flush=True)
    with wiring.stack:
        loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
