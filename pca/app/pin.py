"""`pca pin`: provision and inspect PINs (SR-6) — there is no default PIN.

`pca pin set --db PATH [--role clinician|admin]` reads the PIN twice from the
terminal without echo (or once from stdin with --stdin, for scripts) and stores
only a salted scrypt hash keyed with the device pepper. The pepper is a secret
file outside the database (default /etc/pca/pepper); it is created on first use.
The PIN is never printed, logged or kept in a traceback.

This command writes only the credentials table: appending to the event log from
a second process would race a running pump's hash chain. The pump logs the
change itself (`pin_changed`, by "outside the pump") the next time a PIN is used.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from pathlib import Path
from typing import TextIO

from pca.controller.auth import (
    PEPPER_MIN_BYTES,
    ROLES,
    PinFormatError,
    PinService,
    Role,
    SecretPin,
    check_pin_format,
    hash_problem,
    pin_weakness,
)
from pca.store.eventlog import LogOpenError, SqliteEventLog

DEFAULT_PEPPER = Path("/etc/pca/pepper")
PEPPER_BYTES = 32


class PinToolError(RuntimeError):
    """Something the operator must fix; the message says what."""


def load_pepper(path: Path) -> bytes:
    """The device pepper; refuses a file others can read (it would be no secret)."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as err:
        raise PinToolError(f"device pepper {path}: cannot read: {err.strerror}") from None
    if mode & 0o077:
        raise PinToolError(f"device pepper {path}: readable by others (mode {mode & 0o777:o}); "
                           f"run: chmod 600 {path}")
    if len(data) < PEPPER_MIN_BYTES:
        raise PinToolError(f"device pepper {path}: {len(data)} bytes, needs at least "
                           f"{PEPPER_MIN_BYTES}; it is damaged")
    return data


def create_pepper(path: Path) -> bytes:
    """A new random pepper, written owner-only; never overwrites an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(PEPPER_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    return data


def read_pin(role: Role, *, from_stdin: bool, stdin: TextIO, interactive: bool) -> SecretPin:
    if from_stdin:
        line = stdin.readline()
        return SecretPin(line.strip())
    if not interactive:
        raise PinToolError("no terminal to read the PIN from: run it in a terminal, or pass "
                           "--stdin and give the PIN on standard input")
    first = SecretPin(getpass.getpass(f"New {role} PIN (4-8 digits): "))
    second = SecretPin(getpass.getpass(f"Repeat the {role} PIN: "))
    if first != second:
        raise PinToolError("the two PINs differ: nothing changed")
    return first


def _check_db(db: Path, *, create: bool) -> None:
    """The pump's database; only `pin set` may create a new one (on a fresh install)."""
    from pca.app.errors import CliError, check_log, check_new_file

    try:
        if create and not db.exists():
            check_new_file(db, "--db")
        else:
            check_log(db)
    except CliError as err:
        raise PinToolError(str(err)) from None


def _open_credentials(db: Path, *, create: bool = False) -> SqliteEventLog:
    _check_db(db, create=create)
    try:
        return SqliteEventLog(db)
    except LogOpenError as err:
        raise PinToolError(str(err)) from None


def _set(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> int:
    role: Role = args.role
    db = Path(args.db)
    _check_db(db, create=True)  # before the pepper is made: a bad --db changes nothing
    pepper: bytes | None = None
    if args.no_pepper and Path(args.pepper).exists():
        raise PinToolError(f"--no-pepper: this pump has the device pepper {args.pepper}, and "
                           "once a pepper exists a PIN hash without it is refused; nothing "
                           "changed")
    if not args.no_pepper:
        path = Path(args.pepper)
        if path.exists():
            pepper = load_pepper(path)
        else:
            pepper = create_pepper(path)
            print(f"pca pin: created the device pepper {path} (owner-only). Keep it with the "
                  "pump: without it no PIN can be checked.", file=out)
    log = _open_credentials(db, create=True)
    try:
        service = PinService(log, pepper=pepper)
        if service.provisioned(role) and not args.reset:
            raise PinToolError(f"a {role} PIN is already set in {db}: to replace it use "
                               "--reset (or reset it from the keypad with the admin PIN)")
        pin = read_pin(role, from_stdin=args.stdin, stdin=stdin,
                       interactive=sys.stdin.isatty())
        try:
            check_pin_format(pin)
        except PinFormatError as err:
            raise PinToolError(f"{err}: nothing changed") from None
        weak = pin_weakness(pin)
        if weak is not None:
            raise PinToolError(f"that PIN is too easy to guess ({weak}): choose another; "
                               "nothing changed")
        service.set_pin(pin, role)
        del pin
    finally:
        log.close()
    how = "salted scrypt, keyed with the device pepper" if pepper else "salted scrypt"
    print(f"pca pin: {role} PIN set in {db} ({how}). It is not shown or logged.", file=out)
    return 0


def _status(args: argparse.Namespace, out: TextIO) -> int:
    pepper = None if args.no_pepper or not Path(args.pepper).exists() else \
        load_pepper(Path(args.pepper))
    log = _open_credentials(Path(args.db))
    try:
        for role in ROLES:
            encoded = log.get_pin_hash(role)
            if encoded is None:
                print(f"{role}: no PIN (no {role} action is possible)", file=out)
                continue
            problem = hash_problem(str(encoded), pepper)
            print(f"{role}: set" + (f" but {problem}" if problem else ""), file=out)
    finally:
        log.close()
    return 0


def parser() -> argparse.ArgumentParser:
    from pca.app.errors import OneLineParser

    top = OneLineParser(prog="pca pin", description="provision PINs (SR-6)")
    sub = top.add_subparsers(dest="command", required=True)
    for name, text in (("set", "set a PIN (reads it without echo)"),
                       ("status", "which roles have a PIN")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--db", required=True, help="the pump's database")
        p.add_argument("--pepper", default=str(DEFAULT_PEPPER),
                       help=f"device pepper file (default {DEFAULT_PEPPER}; created if absent)")
        p.add_argument("--no-pepper", action="store_true",
                       help="no pepper (bench and simulator databases only)")
        if name == "set":
            p.add_argument("--role", choices=list(ROLES), default="clinician")
            p.add_argument("--stdin", action="store_true",
                           help="read the PIN from standard input (one line) for scripts")
            p.add_argument("--reset", action="store_true",
                           help="replace a PIN that is already set")
    return top


def run(argv: list[str], *, stdin: TextIO | None = None, out: TextIO | None = None) -> int:
    args = parser().parse_args(argv)
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    try:
        if args.command == "set":
            return _set(args, stdin, out)
        return _status(args, out)
    except PinToolError as err:
        print(f"pca pin: {err}", file=sys.stderr)
        return 2
