"""The `pca` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable, Sequence

from pca.app.errors import CliError, OneLineParser, check_new_file, guarded

# Subcommands implemented as `run(argv) -> int` in their own modules.
DELEGATED: dict[tuple[str, ...], str] = {
    ("bench", "stepgen"): "pca.app.bench_stepgen",
    ("bench", "log"): "pca.app.bench",
    ("bench", "scenario"): "pca.app.bench",
    ("bench", "monitor"): "pca.app.bench_monitor",
    ("bench", "power"): "pca.app.bench_power",
    ("hw", "selftest"): "pca.app.hw_selftest",
    ("bench", "report"): "pca.app.bench_report",
    ("report",): "pca.app.report",
    ("rx",): "pca.app.rx",
    ("pin",): "pca.app.pin",
}
DELEGATED_HELP: dict[tuple[str, ...], str] = {
    ("bench", "stepgen"): "pulse timing of the native step generator against a baseline",
    ("bench", "log"): "event-log append and flush rates",
    ("bench", "scenario"): "scenario replay speed",
    ("bench", "report"): "time `pca report` on a generated multi-day episode",
    ("hw", "selftest"): "bring-up check of every device on the Pi",
}
GROUP_HELP = {"bench": "benchmarks that print figures against a same-run baseline",
              "hw": "hardware bring-up on the Pi"}
# The simulator's keyboard (pca.app.sim_tui's bindings; a test keeps the two the same).
SIM_KEYS = """keys in the simulator:
  space, b        the patient's bolus button
  0-9, *, #       the keypad (* or Backspace: back; # or Enter: confirm)
  o a d e l x     sensor switches: occlusion, air in line, door open, end of travel,
                  battery low, battery depleted
  s n v           the breathing the monitor reads: lower SpO2, no breath, breathe normally
  m               unplug or plug in the respiratory monitor's cable
  t               time speed (1x, 10x, 60x, 600x)
  r               a pharmacy (Rx) file arrives for the demo prescription
  p               program the demo prescription (simulator shortcut)
  q               quit
demo clinician PIN: 1234 (simulation only)"""


def _seconds(text: str) -> float:
    """A period in seconds: a finite number above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of seconds above 0")
    return value


def _scenario(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("file", help="scenario TOML (see docs/scenarios.md)")
    parser.add_argument("--db", help="event-log database to create (default: a temporary one)")
    parser.add_argument("--events", help="write the event log as JSON Lines")
    parser.add_argument("--trace", help="write a CSV trace")
    parser.add_argument("--trace-interval", type=_seconds, default=1.0, metavar="SECONDS",
                        help="trace sample period in virtual seconds (default 1)")

    def run(args: argparse.Namespace) -> int:
        from pca.app import scenario

        # Checked before the replay: a missing folder is found now, not after it ran.
        for flag in ("db", "events", "trace"):
            if getattr(args, flag):
                check_new_file(getattr(args, flag), f"--{flag}")
        return scenario.main(args)

    return run


def _sim(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("--headless", action="store_true",
                        help="replay the demo scenario and print its summary")
    parser.add_argument("--db", help="event log of the simulated pump (default ./pca-sim.db; "
                        "with --headless a new log to write, default a temporary one)")
    parser.add_argument("--speed", type=int, choices=[1, 10, 60, 600], default=1,
                        help="starting speed of virtual time")

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = SIM_KEYS

    def run(args: argparse.Namespace) -> int:
        from pca.app import sim

        if args.db:
            check_new_file(args.db, "--db")
        return sim.main(args)

    return run


def _log(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    sub = parser.add_subparsers(dest="log_command", required=True)
    verify = sub.add_parser("verify", help="check the hash chain and seals of an event log")
    verify.add_argument("--db", required=True)
    verify.add_argument("--verify-key", help="the verification key `pca log setup-keys` showed "
                                             "(proves nothing sealed was changed)")
    keys = sub.add_parser("setup-keys", help="provision the sealing key of a pump's log; "
                                             "shows the verification key once")
    keys.add_argument("--db", required=True)
    export = sub.add_parser("export", help="export events (jsonl or csv)")
    export.add_argument("--db", required=True)
    export.add_argument("--format", choices=["jsonl", "csv", "fhir", "hl7"], default="jsonl")
    export.add_argument("--since", help="ISO 8601 wall time, inclusive")
    export.add_argument("--until", help="ISO 8601 wall time, exclusive")
    export.add_argument("--out", help="file to write (default: stdout)")
    tail = sub.add_parser("tail", help="the last events, human-readable")
    tail.add_argument("--db", required=True)
    tail.add_argument("-n", type=int, default=20)

    def run(args: argparse.Namespace) -> int:
        from pca.app import logtool

        return logtool.main(args)

    return run


def _run(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("--config", help="configuration file (default /etc/pca/pca.toml)")
    parser.add_argument("--sim", action="store_true",
                        help="same wiring on mock pins, the simulated pulse backend and a "
                             "local database (pca-sim.db)")
    parser.add_argument("--db", help="event-log database (overrides the configuration)")
    parser.add_argument("--pinout", help="pin map (overrides the configuration)")

    def run(args: argparse.Namespace) -> int:
        from pca.app import daemon

        return daemon.main(args)

    return run


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser],
                                        Callable[[argparse.Namespace], int]]]] = {
    "run": ("the pump daemon (power-on self test, then the control loop)", _run),
    "scenario": ("replay a scripted session in virtual time", _scenario),
    "sim": ("the pump on simulated hardware (headless demo without a terminal)", _sim),
    "log": ("verify, export or tail an event log", _log),
}


def _dispatch(argv: list[str]) -> int:
    for prefix, module in DELEGATED.items():
        if tuple(argv[: len(prefix)]) == prefix:
            runner: Callable[[list[str]], int] = importlib.import_module(module).run
            rest = argv[len(prefix):]
            return int(runner([prefix[1], *rest] if module == "pca.app.bench" else rest))
    parser = OneLineParser(prog="pca", description="PCA pump controller")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runners = {}
    for name, (help_text, build) in COMMANDS.items():
        runners[name] = build(sub.add_parser(name, help=help_text, description=help_text))
    for group in dict.fromkeys(prefix[0] for prefix in DELEGATED):
        if group in runners:
            continue
        members = [p for p in DELEGATED if p[0] == group and len(p) > 1]
        if not members:  # a command of its own (report, rx, pin): its module parses it
            sub.add_parser(group, help=f"see pca {group} --help", add_help=False)
            continue
        group_parser = sub.add_parser(group, help=GROUP_HELP.get(group, group),
                                      description=GROUP_HELP.get(group))
        # Listed for --help and for the error; the routing above runs them.
        names = group_parser.add_subparsers(dest="subcommand", required=True,
                                            metavar="SUBCOMMAND")
        for prefix in members:
            names.add_parser(prefix[1], help=DELEGATED_HELP.get(prefix, ""))
    args = parser.parse_args(argv)
    if args.command not in runners:  # never reached: the routing above took it
        raise CliError(f"unknown command {args.command}")
    return runners[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """`pca ...`: every failure is one line on stderr and a non-zero exit (pca.app.errors)."""
    args = list(sys.argv[1:] if argv is None else argv)
    words = ["pca"]
    if args and (args[0] in COMMANDS or any(p[0] == args[0] for p in DELEGATED)):
        words.append(args[0])
        if len(args) > 1 and args[0] in ("log", "bench", "hw", "rx", "pin") \
                and not args[1].startswith("-"):
            words.append(args[1])
    return guarded(" ".join(words), lambda: _dispatch(args), daemon=words[1:] == ["run"])


if __name__ == "__main__":
    sys.exit(main())
