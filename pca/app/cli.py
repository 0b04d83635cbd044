"""The `pca` command: one entry point, one subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# Subcommands implemented as `run(argv) -> int` in their own modules.
DELEGATED: dict[tuple[str, ...], str] = {
    ("bench", "stepgen"): "pca.app.bench_stepgen",
    ("bench", "log"): "pca.app.bench",
    ("bench", "scenario"): "pca.app.bench",
    ("bench", "monitor"): "pca.app.bench_monitor",
    ("hw", "selftest"): "pca.app.hw_selftest",
    ("bench", "report"): "pca.app.bench_report",
    ("report",): "pca.app.report",
    ("rx",): "pca.app.rx",
    ("pin",): "pca.app.pin",
}


def _scenario(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("file", help="scenario TOML (see SCENARIOS.md)")
    parser.add_argument("--db", help="event-log database to create (default: a temporary one)")
    parser.add_argument("--events", help="write the event log as JSON Lines")
    parser.add_argument("--trace", help="write a CSV trace")
    parser.add_argument("--trace-interval", type=float, default=1.0, metavar="SECONDS",
                        help="trace sample period in virtual seconds (default 1)")

    def run(args: argparse.Namespace) -> int:
        from pca.app import scenario

        return scenario.main(args)

    return run


def _sim(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    parser.add_argument("--headless", action="store_true",
                        help="replay the demo scenario and print its summary")
    parser.add_argument("--db", help="event log of the simulated pump (default ./pca-sim.db)")
    parser.add_argument("--speed", type=int, choices=[1, 10, 60, 600], default=1,
                        help="starting speed of virtual time")

    def run(args: argparse.Namespace) -> int:
        from pca.app import sim

        return sim.main(args)

    return run


def _log(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    sub = parser.add_subparsers(dest="log_command", required=True)
    verify = sub.add_parser("verify", help="check the hash chain of an event log")
    verify.add_argument("--db", required=True)
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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    for prefix, module in DELEGATED.items():
        if tuple(argv[: len(prefix)]) == prefix:
            runner: Callable[[list[str]], int] = importlib.import_module(module).run
            rest = argv[len(prefix):]
            return int(runner([prefix[1], *rest] if module == "pca.app.bench" else rest))
    parser = argparse.ArgumentParser(prog="pca", description="PCA pump controller")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runners = {}
    for name, (help_text, build) in COMMANDS.items():
        runners[name] = build(sub.add_parser(name, help=help_text))
    for group in dict.fromkeys(prefix[0] for prefix in DELEGATED):
        if group not in runners:
            names = " | ".join(p[1] for p in DELEGATED if p[0] == group and len(p) > 1)
            sub.add_parser(group, help=f"{group} {names} ..." if names else f"{group} ...")
    args = parser.parse_args(argv)
    if args.command not in runners:
        parser.error(f"unknown {args.command} subcommand; try: pca " + " | pca ".join(
            " ".join(p) for p in DELEGATED if p[0] == args.command))
    return runners[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
