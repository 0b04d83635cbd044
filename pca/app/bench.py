"""`pca bench log` and `pca bench scenario`: figures for the event log and the replay.

Benchmarks print figures and compare with a baseline measured in the same run; they
assert nothing (these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pca.controller.ports import NS_PER_S, Event
from pca.store.eventlog import SqliteEventLog, export_rows
from pca.store.verify import verify


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# A pump logs a few hundred events an hour; the bench log is one event every 30 s of pump
# time, so 1M events are about a year and start-up replays the last 74 h (~9,000 events).
BENCH_SPACING_NS = 30 * NS_PER_S


def _event(i: int, spacing_ns: int = NS_PER_S // 2) -> Event:
    kinds: list[tuple[str, dict[str, Any]]] = [
        ("delivery", {"source": "basal", "steps": 387, "ml": 0.025, "granted_steps": 774}),
        ("pca_request", {"outcome": "denied", "reason": "lockout"}),
        ("rate_changed", {"mode": "basal", "rate_ml_h": 0.5})]
    kind, fields = kinds[i % len(kinds)]
    return Event(kind, "system", i * spacing_ns / NS_PER_S, i * spacing_ns,
                 1_770_000_000 * NS_PER_S + i * spacing_ns, fields)


def bench_log(events: int, appends: int, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"events": events}
    # Baseline: bare sqlite3 inserts with the same durability, one commit each.
    raw = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=FULL")
    raw.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, data TEXT)")
    payload = json.dumps(_event(0).fields)

    def raw_loop() -> None:
        for i in range(appends):
            raw.execute("BEGIN")
            raw.execute("INSERT INTO t VALUES (?, ?)", (i + 1, payload))
            raw.execute("COMMIT")

    secs, _ = _timed(raw_loop)
    raw.close()
    out["baseline_raw_sqlite_commits_per_s"] = round(appends / secs)
    log = SqliteEventLog(workdir / "durable.db")

    def durable_loop() -> None:
        for i in range(appends):
            log.append(_event(i))
            log.flush()

    secs, _ = _timed(durable_loop)
    log.close()
    out["durable_appends_per_s"] = round(appends / secs)
    big = SqliteEventLog(workdir / "big.db", provision_keys=True)  # sealed, with MACs

    def fill() -> None:
        batch = 10_000
        for start in range(0, events, batch):
            for i in range(start, min(events, start + batch)):
                big.append(_event(i, BENCH_SPACING_NS))
            big.flush()

    secs, _ = _timed(fill)
    big.close()
    out["batched_appends_per_s"] = round(events / secs)
    db = workdir / "big.db"
    secs, verdict = _timed(lambda: verify(db))
    out["verify_s"] = round(secs, 2)
    out["verify_ok"] = verdict.ok and verdict.count == events
    for fmt in ("jsonl", "csv"):
        from pca.app.logtool import _write

        def export(fmt: str = fmt) -> int:
            with open(os.devnull, "w", encoding="utf-8") as sink:
                return _write(export_rows(db), fmt, sink)

        secs, count = _timed(export)
        out[f"export_{fmt}_s"] = round(secs, 2)
        assert count == events
    out["db_mb"] = round(db.stat().st_size / 1e6, 1)
    # Start-up and verify in their own processes, so each peak RSS is its own; the
    # baselines are the same process doing the same on an empty log, in this run.
    empty = workdir / "empty.db"
    SqliteEventLog(empty, provision_keys=True).close()
    base = _child("startup", empty)
    start = _child("startup", db)
    out["startup_empty_log_s"] = base["secs"]
    out["startup_s"] = start["secs"]
    out["startup_peak_rss_mb"] = start["rss_mb"]
    out["startup_empty_log_peak_rss_mb"] = base["rss_mb"]
    out["startup_ok"] = start["ok"]
    keyed = _child("verify", db)
    idle = _child("verify", empty)
    out["verify_with_key_s"] = keyed["secs"]
    out["verify_peak_rss_mb"] = keyed["rss_mb"]
    out["verify_empty_log_peak_rss_mb"] = idle["rss_mb"]
    out["verify_with_key_ok"] = keyed["ok"]
    return out


def _child(what: str, db: Path) -> dict[str, Any]:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pca.app.bench", "_child", what, str(db)],
                          capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _child_main(what: str, db: Path) -> None:
    """Runs in a fresh process: one start-up or one keyed verify, with its peak RSS."""
    import resource

    from pca.app.config import Config
    from pca.app.daemon import wire
    from pca.store.seal import parse_verify_key, sim_verify_key_path

    if what == "startup":
        start = time.perf_counter()
        wiring = wire(Config(), sim=True, db=db)
        secs = time.perf_counter() - start
        ok = not any("event log" in p for p in wiring.problems)
        wiring.stack.close()
    else:
        seed = parse_verify_key(sim_verify_key_path(db).read_text())
        start = time.perf_counter()
        verdict = verify(db, seed)
        secs = time.perf_counter() - start
        ok = verdict.ok
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"secs": round(secs, 2), "rss_mb": round(rss_mb), "ok": ok}))


def seventy_two_hours() -> str:
    """A 72-hour post-op scenario: basal and a press every 5 minutes."""
    lines = ['name = "72 h basal + press every 5 min"', 'clinician_pin = "482916"',
             'end = "72h"', "[pump]", "syringe_ml = 100.0", "[prescription]",
             'drug = "morphine"', "concentration_per_ml = 1.0", 'dose_unit = "mg"',
             "basal_rate_per_h = 0.5", "pca_dose = 1.0", "lockout_min = 8",
             "max_pca_per_h = 4", "dose_limit = 8.0", "dose_limit_window_h = 4",
             '[[step]]\nat = "0s"\ndo = "program"', '[[step]]\nat = "5s"\ndo = "start"']
    lines += [f'[[step]]\nat = "{k * 5}m"\ndo = "press"' for k in range(1, 72 * 12)]
    for day in (1, 2):  # the pharmacy's refill every day keeps it going for 72 h
        lines.append(f'[[step]]\nat = "{day * 24}h"\ndo = "stop"')
        lines.append(f'[[step]]\nat = "{day * 24}h"\ndo = "new_syringe"\nsyringe_ml = 100.0')
        lines.append(f'[[step]]\nat = "{day * 24}h"\ndo = "start"')
    steps = sorted(lines[15:], key=lambda s: _at_s(s))
    return "\n".join(lines[:15] + steps) + "\n"


def _at_s(step: str) -> float:
    text = step.split('at = "')[1].split('"')[0]
    from pca.app.scenario import parse_duration

    return parse_duration(text, "bench") / NS_PER_S


def bench_scenario(workdir: Path) -> dict[str, Any]:
    from pca.app.scenario import load_scenario, run_scenario

    path = workdir / "72h.toml"
    path.write_text(seventy_two_hours())
    scenario = load_scenario(path)
    secs_bare, result = _timed(lambda: run_scenario(scenario, db=workdir / "bare.db"))
    trace, events = io.StringIO(), io.StringIO()
    secs_full, _ = _timed(lambda: run_scenario(scenario, db=workdir / "full.db", trace=trace,
                                               events=events))
    rows = events.getvalue().count("\n")
    return {"virtual_hours": 72, "steps": len(scenario.steps), "events": rows,
            "trace_rows": trace.getvalue().count("\n") - 1,
            "seconds_without_outputs": round(secs_bare, 2),
            "seconds_with_trace_and_events": round(secs_full, 2),
            "speedup_vs_real_time": round(72 * 3600 / secs_full),
            "summary": result.summary}


def run(argv: list[str]) -> int:
    if argv[:1] == ["_child"]:
        _child_main(argv[1], Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(prog="pca bench")
    parser.add_argument("what", choices=["log", "scenario"])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--json", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pca-bench-") as tmp:
        if args.what == "log":
            figures = bench_log(20_000 if args.quick else 1_000_000,
                                200 if args.quick else 2_000, Path(tmp))
        else:
            figures = bench_scenario(Path(tmp))
    for key, value in figures.items():
        print(f"{key:>34}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(run(sys.argv[1:]))
