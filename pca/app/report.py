"""`pca report`: the clinical review report of an episode, as one HTML file (and a PDF)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

USAGE_EXAMPLE = "e.g. 2026-03-01T08:00:00Z"


class ReportError(Exception):
    """Bad input: the message is the one line the user sees."""


def _parser() -> argparse.ArgumentParser:
    from pca.app.errors import OneLineParser

    parser = OneLineParser(
        prog="pca report", description="Clinical review report of a PCA episode: one "
        "self-contained HTML file (charts inline, no network), optionally a PDF.")
    parser.add_argument("--db", required=True, help="the pump's event-log database")
    parser.add_argument("--out", required=True,
                        help="report file to write: .html (or .pdf for a PDF only)")
    parser.add_argument("--since", help=f"ISO 8601 wall time, inclusive ({USAGE_EXAMPLE})")
    parser.add_argument("--until", help="ISO 8601 wall time, exclusive")
    parser.add_argument("--episode", type=int, metavar="N",
                        help="patient episode of the log to report (default: the last one)")
    parser.add_argument("--pdf", nargs="?", const="", metavar="PATH",
                        help="also write a PDF for the patient record (default: --out with .pdf)")
    return parser


def parse_time(text: str | None, flag: str) -> datetime | None:
    """--since/--until read as `pca log export` reads them (naive means UTC)."""
    if text is None:
        return None
    from pca.store.eventlog import parse_wall_ns

    try:
        wall_ns = parse_wall_ns(text)
    except ValueError:
        raise ReportError(f"{flag} {text!r} is not an ISO 8601 time ({USAGE_EXAMPLE})") from None
    return datetime.fromtimestamp(wall_ns / 1e9, tz=UTC)


def _check_db(db: Path) -> None:
    from pca.app.errors import CliError, check_log

    try:
        check_log(db)
    except CliError as err:
        raise ReportError(str(err)) from None


def run(argv: list[str]) -> int:
    """`pca report --db PATH --out FILE [--since T] [--until T] [--episode N] [--pdf [PATH]]`."""
    args = _parser().parse_args(argv)
    try:
        db = Path(args.db)
        since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
        if since is not None and until is not None and until <= since:
            raise ReportError(f"--until {args.until} is not after --since {args.since}")
        _check_db(db)
        out = Path(args.out)
        targets = [out]
        if args.pdf is not None:
            targets.append(Path(args.pdf) if args.pdf else out.with_suffix(".pdf"))
        for target in targets:
            if not target.parent.is_dir():
                raise ReportError(f"cannot write {target}: no such directory {target.parent}")
        from pca.review.report import ReportInputError, build_report, write

        try:
            report = build_report(db, since, until, episode=args.episode)
            for target in targets:
                write(report, target)
        except ReportInputError as err:
            raise ReportError(str(err)) from None
        except (sqlite3.Error, ValueError, KeyError) as err:
            raise ReportError(f"--db {db}: the log cannot be read as a pca event log "
                              f"({type(err).__name__}: {err})") from None
        except OSError as err:
            raise ReportError(f"cannot write the report: {err}") from None
    except ReportError as err:
        print(f"pca report: {err}", file=sys.stderr)
        return 2
    if not report.verdict.ok:
        # The report is written (a reviewer needs to see what the damaged log says), but the
        # exit status says the log cannot be trusted, as `pca log verify` does.
        print(f"pca report: wrote {', '.join(map(str, targets))}, but LOG INTEGRITY CHECK FAILED"
              f" at seq {report.verdict.first_bad_seq}: {report.verdict.problem}",
              file=sys.stderr)
        return 1
    print(f"pca report: wrote {', '.join(map(str, targets))} (verified)")
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
