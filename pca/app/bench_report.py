"""`pca bench report`: times the review report on a generated multi-day episode.

`pca bench report [--days 7] [--pdf] [--keep DIR]` (or `python -m pca.app.bench_report`).
It lives in `app`, not `review`, because it drives the scenario runner: it makes the
episode with the real runner, then times the report twice: in this process (reading,
charts, writing) and as the `pca report` command a user runs (with interpreter start-up and
imports). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pca.app.scenario import load_scenario, run_scenario
from pca.review.sample_episode import write_episode


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="pca bench report",
                                     description="time `pca report` on a generated episode")
    parser.add_argument("--days", type=int, default=7, help="episode length (default 7)")
    parser.add_argument("--pdf", action="store_true", help="also time the PDF")
    parser.add_argument("--keep", metavar="DIR", help="keep the scenario, log and reports here")
    args = parser.parse_args(argv)
    # The replay fsyncs every flush; in memory (tmpfs) it takes seconds, not minutes. The
    # report only reads the log, which the page cache serves alike from either.
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None
    with tempfile.TemporaryDirectory(dir=shm) as scratch:
        where = Path(args.keep) if args.keep else Path(scratch)
        where.mkdir(parents=True, exist_ok=True)
        toml, db = where / f"episode_{args.days}d.toml", where / f"episode_{args.days}d.db"
        db.unlink(missing_ok=True)
        write_episode(toml, args.days)
        t0 = time.perf_counter()
        result = run_scenario(load_scenario(toml), db=db)
        replay_s = time.perf_counter() - t0
        from pca.review.report import build_report, write

        t0 = time.perf_counter()
        report = build_report(db)
        html = where / "report.html"
        write(report, html)
        html_s = time.perf_counter() - t0
        count = report.verdict.count
        print(f"episode: {args.days} days, {count} events, "
              f"{result.summary['pca_requests']} PCA requests (scenario replay {replay_s:.2f} s)")
        print(f"report in-process (read + verify + charts + HTML): {html_s:.2f} s, "
              f"{html.stat().st_size // 1024} KiB")
        if args.pdf:
            t0 = time.perf_counter()
            write(report, where / "report.pdf")
            print(f"PDF in-process (charts + pages): {time.perf_counter() - t0:.2f} s")
        cmd = [sys.executable, "-m", "pca.app.report", "--db", str(db), "--out",
               str(where / "report_cli.html")] + (["--pdf"] if args.pdf else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        cli_s = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"pca report failed: {proc.stderr.strip()}", file=sys.stderr)
            return 1
        print(f"`pca report` end to end{' (HTML + PDF)' if args.pdf else ''}: {cli_s:.2f} s")
        if args.keep:
            print(f"kept in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
