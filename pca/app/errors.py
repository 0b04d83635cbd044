"""How the `pca` command fails: one line on stderr, a non-zero exit, nothing changed.

Expected errors (bad arguments, a file that is not what it should be, a folder that is not
there) are `CliError`: exit 2 with the line. The checks here run before a command touches
anything, and never create or modify a file: a typo in `--db` must not leave a new database
behind. Anything else that escapes a command is a bug: `guarded` still prints one line (with
how to get the traceback) and exits 70, so it is never mistaken for a user error, and the
command-line tests, which expect 2, catch it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

EXIT_USAGE = 2  # bad input: the user can fix it
EXIT_BUG = 70  # EX_SOFTWARE: an internal error
EXIT_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a reader that went away
DEBUG_ENV = "PCA_DEBUG"
# The tables and columns every pca event log has (pca.store's schema).
LOG_COLUMNS = {"seq", "t_s", "wall", "type", "actor", "data"}


class CliError(Exception):
    """Bad input the user can fix; the message is the one line they see."""


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (usage is one `--help` away) and exit 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def check_log(path: str | Path, flag: str = "--db") -> Path:
    """An existing pca event log, opened read-only to check it (nothing is created)."""
    db = Path(path)
    if not db.exists():
        raise CliError(f"{flag} {db}: no such file")
    if not db.is_file():
        raise CliError(f"{flag} {db}: not a file")
    if db.stat().st_size == 0:
        raise CliError(f"{flag} {db}: the file is empty, not a pca event log")
    # Read-only; and with no write-ahead file beside it, immutable too: SQLite would otherwise
    # make -wal and -shm files for a file whose header says WAL (a truncated log does).
    wal = db.with_name(db.name + "-wal").exists()
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro{'' if wal else '&immutable=1'}", uri=True)
    except sqlite3.Error as err:
        raise CliError(f"{flag} {db}: cannot open it ({err})") from None
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        conn.execute("SELECT count(*) FROM meta").fetchone()
    except sqlite3.Error as err:
        raise CliError(f"{flag} {db}: not a readable pca event log ({err})") from None
    finally:
        conn.close()
    if not columns >= LOG_COLUMNS:
        raise CliError(f"{flag} {db}: an SQLite file, but not a pca event log (it has no "
                       "events table)")
    return db


def check_new_file(path: str | Path, flag: str) -> Path:
    """A file about to be written: its folder must exist (none is created for it)."""
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        raise CliError(f"{flag} {target}: no such folder {folder}")
    if target.is_dir():
        raise CliError(f"{flag} {target}: is a folder")
    return target


def damaged(db: Path, err: sqlite3.Error, flag: str = "--db") -> CliError:
    """A log that opened but could not be read to its end."""
    return CliError(f"{flag} {db}: the log cannot be read to its end ({err}): it is damaged "
                    "or truncated; nothing was written")


def _quiet_stdout() -> None:
    """The reader of stdout went away: send what is still buffered nowhere, so the
    interpreter's own flush at exit does not print a second error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a file (a test's capture): nothing buffered at exit


def guarded(prog: str, command: Callable[[], int], *, daemon: bool = False) -> int:
    """Run a command; turn what escapes it into one line and an exit status. For the daemon
    (`daemon=True`) an internal error keeps its traceback: the journal is where an operator
    reads it, and nobody can run a pump again just to see it."""
    try:
        code = command()
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except CliError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        _quiet_stdout()
        print(f"{prog}: output closed early (broken pipe); stopped", file=sys.stderr)
        return EXIT_PIPE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if daemon or os.environ.get(DEBUG_ENV):
            raise
        text = str(err).splitlines()[0] if str(err) else ""
        print(f"{prog}: internal error ({type(err).__name__}{': ' + text if text else ''}); "
              f"this is a bug: run it again with {DEBUG_ENV}=1 for the traceback and report it",
              file=sys.stderr)
        return EXIT_BUG
