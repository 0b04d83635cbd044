"""Command-line fuzz: hundreds of malformed invocations and files across `pca scenario`,
`pca log`, `pca report`, `pca rx`, `pca pin` and `pca run --config`.

Every case must end with exit 2 (bad input; a 70 is an internal error, a bug), exactly one
line on stderr, no traceback, and no file created or changed in its folder. The cases are
generated from a seed, so a failure names a case that reproduces. They run in-process through
`pca.app.cli.main`, the console script's entry point, so the whole set takes seconds."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pca.app import cli
from pca.app.errors import EXIT_USAGE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "pca" / "examples"
SEED = 20260301

SCENARIO = (EXAMPLES / "postop_morphine.toml").read_text(encoding="utf-8")
RX = (EXAMPLES / "pharmacy" / "morphine_pca.pca-rx.toml").read_text(encoding="utf-8")
LIBRARY = (ROOT / "pca" / "therapy" / "data" / "drug_library.toml").read_text(encoding="utf-8")


@dataclass
class Case:
    name: str
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)  # written into the case's folder


def _noise(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def _broken_toml(rng: random.Random, text: str) -> Iterator[tuple[str, str]]:
    """Files that are not TOML at all, or not the TOML they should be."""
    yield "unclosed-table", "[prescription\n" + text
    yield "unclosed-string", text + '\nname = "never closed\n'
    yield "duplicate-key", text + "\n" + text.splitlines()[-1] + "\n"
    yield "bare-word", text + "\nthis is not toml\n"
    lines = text.splitlines()
    cut = rng.randrange(1, len(lines))
    yield "cut-mid-line", "\n".join(lines[:cut]) + "\n" + lines[cut][: len(lines[cut]) // 2] + \
        ' = "'
    yield "array-of-nothing", "x = [1, 2\n"


def scenario_cases(rng: random.Random) -> Iterator[Case]:
    for name, text in _broken_toml(rng, SCENARIO):
        yield Case(f"scenario-toml-{name}", ["scenario", "{dir}/s.toml"],
                   {"s.toml": text.encode()})
    yield Case("scenario-binary", ["scenario", "{dir}/s.toml"], {"s.toml": _noise(rng, 600)})
    yield Case("scenario-latin1", ["scenario", "{dir}/s.toml"],
               {"s.toml": 'name = "caf\xe9"\n'.encode("latin-1")})
    yield Case("scenario-missing", ["scenario", "{dir}/none.toml"])
    yield Case("scenario-folder", ["scenario", "{dir}"])
    # Contract violations: the loader must name them (SCENARIOS: exit 2, one line).
    steps = {
        "unknown-action": 'at = "1m"\ndo = "teleport"',
        "no-do": 'at = "1m"',
        "no-at": 'do = "press"',
        "bad-time-word": 'at = "soon"\ndo = "press"',
        "bad-time-unit": 'at = "5 parsecs"\ndo = "press"',
        "negative-time": 'at = "-5m"\ndo = "press"',
        "time-as-list": 'at = [1]\ndo = "press"',
        "signal-no-name": 'at = "1m"\ndo = "signal"\nvalue = true',
        "signal-unknown-line": 'at = "1m"\ndo = "signal"\nname = "gremlin"\nvalue = true',
        "bolus-no-amount": 'at = "1m"\ndo = "clinician_bolus"',
        "bolus-amount-text": 'at = "1m"\ndo = "clinician_bolus"\namount = "lots"',
        "syringe-no-volume": 'at = "1m"\ndo = "new_syringe"',
        "clock-step-text": 'at = "1m"\ndo = "clock_step"\nseconds = "ten"',
        "keys-number": 'at = "1m"\ndo = "keys"\nkeys = 1234',
        "do-number": 'at = "1m"\ndo = 7',
    }
    for name, body in steps.items():
        yield Case(f"scenario-step-{name}", ["scenario", "{dir}/s.toml"],
                   {"s.toml": (SCENARIO + f"\n[[step]]\n{body}\n").encode()})
    yield Case("scenario-time-goes-back", ["scenario", "{dir}/s.toml"], {"s.toml": (
        SCENARIO + '\n[[step]]\nat = "30m"\ndo = "press"\n[[step]]\nat = "10m"\ndo = "press"\n'
    ).encode()})
    yield Case("scenario-steps-not-tables", ["scenario", "{dir}/s.toml"],
               {"s.toml": b'name = "x"\nstep = [1, 2]\n'})
    yield Case("scenario-start-not-a-time", ["scenario", "{dir}/s.toml"],
               {"s.toml": SCENARIO.replace('start = "2026-03-01T08:00:00Z"',
                                           'start = "yesterday"').encode()})
    yield Case("scenario-end-not-a-time", ["scenario", "{dir}/s.toml"],
               {"s.toml": SCENARIO.replace('end = "2h"', 'end = "forever"').encode()})
    for key, value in (("concentration_per_ml", '"strong"'), ("lockout_min", "[8]"),
                       ("pca_dose", "{}"), ("dose_limit_window_h", '"4h"')):
        yield Case(f"scenario-rx-{key}-wrong-type", ["scenario", "{dir}/s.toml"], {
            "s.toml": SCENARIO.replace(f"{key} = ", f"{key} = {value}\n_old_{key} = ",
                                       1).encode()})
    yield Case("scenario-pump-syringe-text", ["scenario", "{dir}/s.toml"],
               {"s.toml": SCENARIO.replace("syringe_ml = 30.0", 'syringe_ml = "full"').encode()})
    yield Case("scenario-drug-table-broken", ["scenario", "{dir}/s.toml"],
               {"s.toml": (SCENARIO + '\n[[drug]]\nname = "morphine"\nunit = 5\n').encode()})
    good = {"s.toml": SCENARIO.encode()}
    yield Case("scenario-db-exists", ["scenario", "{dir}/s.toml", "--db", "{dir}/s.toml"], good)
    for flag in ("--db", "--events", "--trace"):
        yield Case(f"scenario-{flag[2:]}-missing-folder",
                   ["scenario", "{dir}/s.toml", flag, "{dir}/no/such/out"], good)
        yield Case(f"scenario-{flag[2:]}-is-a-folder",
                   ["scenario", "{dir}/s.toml", flag, "{dir}"], good)
    for value in ("0", "-1", "x", "nan", ""):
        yield Case(f"scenario-trace-interval-{value or 'empty'}",
                   ["scenario", "{dir}/s.toml", "--trace-interval", value], good)
    yield Case("scenario-no-file", ["scenario"])
    yield Case("scenario-unknown-flag", ["scenario", "{dir}/s.toml", "--turbo"], good)


def _bad_logs(rng: random.Random, good: bytes) -> dict[str, bytes]:
    other = _sqlite_without_the_log()
    return {"empty": b"", "random": _noise(rng, 4096), "text": b"seq,t_s,wall\n1,0,x\n",
            "truncated": good[: rng.randrange(512, 8192)], "half": good[: len(good) // 2],
            "other-sqlite": other, "header-only": good[:100]}


def _sqlite_without_the_log() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "o.db"
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE events (id INTEGER)")
        conn.commit()
        conn.close()
        return path.read_bytes()


def _label(command: list[str]) -> str:
    return "-".join(word.strip("-").replace("{dir}/", "") for word in command)


def log_cases(rng: random.Random, good: bytes) -> Iterator[Case]:
    commands = [["log", "verify"], ["log", "tail"], ["log", "tail", "-n", "3"],
                ["log", "export"], ["log", "export", "--format", "csv"],
                ["log", "export", "--format", "fhir"], ["log", "export", "--format", "hl7"],
                ["log", "export", "--out", "{dir}/x.jsonl"]]
    for kind, data in _bad_logs(rng, good).items():
        for command in commands:
            yield Case(f"{_label(command)}-{kind}", [*command, "--db", "{dir}/l.db"],
                       {"l.db": data})
    for command in commands:
        yield Case(f"{_label(command)}-missing", [*command, "--db", "{dir}/none.db"])
        yield Case(f"{_label(command)}-folder", [*command, "--db", "{dir}"])
    ok = {"l.db": good}
    for value in ("yesterday", "2026-13-01", "2026-03-01T25:00", "", "0x10", "2026-03-01 8am"):
        for flag in ("--since", "--until"):
            yield Case(f"log-export-{flag[2:]}-{value or 'empty'}",
                       ["log", "export", "--db", "{dir}/l.db", flag, value], ok)
    yield Case("log-export-format-xml", ["log", "export", "--db", "{dir}/l.db", "--format",
                                         "xml"], ok)
    yield Case("log-export-out-missing-folder",
               ["log", "export", "--db", "{dir}/l.db", "--out", "{dir}/no/x.csv"], ok)
    yield Case("log-export-out-is-folder",
               ["log", "export", "--db", "{dir}/l.db", "--out", "{dir}"], ok)
    yield Case("log-tail-n-text", ["log", "tail", "--db", "{dir}/l.db", "-n", "ten"], ok)
    yield Case("log-no-subcommand", ["log"])
    yield Case("log-unknown-subcommand", ["log", "shred", "--db", "{dir}/l.db"], ok)
    yield Case("log-no-db", ["log", "tail"])


def report_cases(rng: random.Random, good: bytes) -> Iterator[Case]:
    for kind, data in _bad_logs(rng, good).items():
        yield Case(f"report-{kind}", ["report", "--db", "{dir}/l.db", "--out", "{dir}/r.html"],
                   {"l.db": data})
        yield Case(f"report-pdf-{kind}", ["report", "--db", "{dir}/l.db", "--out",
                                          "{dir}/r.pdf"], {"l.db": data})
    ok = {"l.db": good}
    base = ["report", "--db", "{dir}/l.db", "--out", "{dir}/r.html"]
    yield Case("report-missing-db", ["report", "--db", "{dir}/none.db", "--out", "{dir}/r.html"])
    yield Case("report-out-missing-folder", ["report", "--db", "{dir}/l.db", "--out",
                                             "{dir}/no/r.html"], ok)
    yield Case("report-pdf-missing-folder", [*base, "--pdf", "{dir}/no/r.pdf"], ok)
    for value in ("yesterday", "2026-02-30T00:00:00Z", "", "noon"):
        yield Case(f"report-since-{value or 'empty'}", [*base, "--since", value], ok)
        yield Case(f"report-until-{value or 'empty'}", [*base, "--until", value], ok)
    yield Case("report-until-before-since", [*base, "--since", "2026-03-01T09:00:00Z",
                                             "--until", "2026-03-01T08:00:00Z"], ok)
    for value in ("0", "-1", "2", "99", "one"):
        yield Case(f"report-episode-{value}", [*base, "--episode", value], ok)
    yield Case("report-no-args", ["report"])
    yield Case("report-no-out", ["report", "--db", "{dir}/l.db"], ok)


def rx_cases(rng: random.Random) -> Iterator[Case]:
    for name, text in _broken_toml(rng, RX):
        yield Case(f"rx-check-toml-{name}", ["rx", "check", "{dir}/p.toml"],
                   {"p.toml": text.encode()})
    yield Case("rx-check-binary", ["rx", "check", "{dir}/p.toml"], {"p.toml": _noise(rng, 300)})
    yield Case("rx-check-missing", ["rx", "check", "{dir}/none.toml"])
    yield Case("rx-check-folder", ["rx", "check", "{dir}"])
    yield Case("rx-check-a-scenario", ["rx", "check", "{dir}/p.toml"],
               {"p.toml": SCENARIO.encode()})
    yield Case("rx-check-no-prescription", ["rx", "check", "{dir}/p.toml"],
               {"p.toml": b'rx_id = "RX-1"\n'})
    for key, value in (("drug", '"unobtainium"'), ("concentration_per_ml", '"x"'),
                       ("pca_dose", "-1.0"), ("lockout_min", "0"), ("dose_unit", '"drops"'),
                       ("dose_limit_window_h", "99"), ("basal_rate_per_h", "1000.0"),
                       ("pca_dose", "500.0"), ("max_pca_per_h", "[4]")):
        yield Case(f"rx-check-{key}-{value.strip(chr(34))}", ["rx", "check", "{dir}/p.toml"], {
            "p.toml": "\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line
                                for line in RX.splitlines()).encode()})
    good = {"p.toml": RX.encode()}
    yield Case("rx-load-missing-spool", ["rx", "load", "{dir}/p.toml", "--spool",
                                         "{dir}/no/spool"], good)
    yield Case("rx-load-spool-is-a-file", ["rx", "load", "{dir}/p.toml", "--spool",
                                           "{dir}/p.toml"], good)
    yield Case("rx-check-library-missing", ["rx", "check", "{dir}/p.toml", "--library",
                                            "{dir}/none.toml"], good)
    yield Case("rx-check-library-broken", ["rx", "check", "{dir}/p.toml", "--library",
                                           "{dir}/lib.toml"],
               {**good, "lib.toml": b"[[drug]]\nname = 5\n"})
    yield Case("rx-check-bolus-rate-text", ["rx", "check", "{dir}/p.toml", "--bolus-rate-ml-h",
                                            "fast"], good)
    for name, text in _broken_toml(rng, LIBRARY):
        yield Case(f"rx-check-library-toml-{name}", ["rx", "check-library", "{dir}/lib.toml"],
                   {"lib.toml": text.encode()})
    from pca.therapy.drugs import seal_library_text

    sealed = seal_library_text(LIBRARY, "7")
    yield Case("rx-check-library-edited-after-sealing", ["rx", "check-library",
                                                         "{dir}/lib.toml"],
               {"lib.toml": sealed.replace('name = "morphine"', 'name = "morphinx"').encode()})
    yield Case("rx-seal-library-broken", ["rx", "seal-library", "{dir}/lib.toml", "--out",
                                          "{dir}/sealed.toml"], {"lib.toml": b"[[drug]\n"})
    yield Case("rx-load-library-missing-spool", ["rx", "load-library", "{dir}/lib.toml",
                                                 "--spool", "{dir}/no/spool"],
               {"lib.toml": LIBRARY.encode()})
    yield Case("rx-no-command", ["rx"])
    yield Case("rx-unknown-command", ["rx", "print"])


def pin_cases(rng: random.Random, good: bytes) -> Iterator[Case]:
    for kind, data in _bad_logs(rng, good).items():
        if kind == "empty":
            continue  # `pin set` on an empty file: a new database there is what was asked
        for command in (["pin", "status"], ["pin", "set", "--stdin"]):
            yield Case(f"{_label(command)}-{kind}",
                       [*command, "--db", "{dir}/l.db", "--pepper", "{dir}/pepper"],
                       {"l.db": data})
    yield Case("pin-status-empty", ["pin", "status", "--db", "{dir}/l.db", "--no-pepper"],
               {"l.db": b""})
    yield Case("pin-status-typo", ["pin", "status", "--db", "{dir}/typo.db", "--no-pepper"])
    yield Case("pin-set-missing-folder", ["pin", "set", "--stdin", "--db", "{dir}/no/x.db",
                                          "--pepper", "{dir}/pepper"])
    ok = {"l.db": good}
    yield Case("pin-status-pepper-short", ["pin", "status", "--db", "{dir}/l.db", "--pepper",
                                           "{dir}/pepper"], {**ok, "pepper": b"short"})
    yield Case("pin-set-role-unknown", ["pin", "set", "--db", "{dir}/l.db", "--role", "janitor",
                                        "--no-pepper"], ok)
    yield Case("pin-no-command", ["pin"])
    yield Case("pin-status-no-db", ["pin", "status"])


def run_config_cases(rng: random.Random) -> Iterator[Case]:
    """Only configurations that must be refused: a valid one would start the pump."""
    broken = {
        "not-toml": b"[pump\n", "binary": _noise(rng, 200), "latin1": "x = 'caf\xe9'\n".encode(
            "latin-1"),
        "pump-not-a-table": b'pump = "fast"\n',
        "steps-text": b'[pump]\nsteps_per_ml = "many"\n',
        "database-number": b"database = 5\n",
        "pinout-list": b'pinout = ["a"]\n',
        "unclosed-string": b'database = "x\n',
    }
    for name, data in broken.items():
        yield Case(f"run-config-{name}", ["run", "--config", "{dir}/c.toml"], {"c.toml": data})
    yield Case("run-config-missing", ["run", "--config", "{dir}/none.toml"])
    yield Case("run-config-folder", ["run", "--config", "{dir}"])
    yield Case("run-unknown-flag", ["run", "--turbo"])


def all_cases(good: bytes) -> list[Case]:
    rng = random.Random(SEED)
    cases = [*scenario_cases(rng), *log_cases(rng, good), *report_cases(rng, good),
             *rx_cases(rng), *pin_cases(rng, good), *run_config_cases(rng),
             Case("no-command", []), Case("unknown-command", ["explode"])]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def _good_log() -> bytes:
    import tempfile

    from pca.app.scenario import load_scenario, run_scenario

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "l.db"
        run_scenario(load_scenario(EXAMPLES / "postop_morphine.toml"), db=db)
        return db.read_bytes()


GOOD_LOG = _good_log()
CASES = all_cases(GOOD_LOG)


def test_there_are_enough_cases_across_every_command() -> None:
    assert len(CASES) >= 200
    commands = {c.argv[0] if c.argv else "" for c in CASES}
    assert {"scenario", "log", "report", "rx", "pin", "run"} <= commands


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_malformed_input_gets_one_line_exit_2_and_changes_nothing(
        case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.delenv("PCA_DEBUG", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO("2580\n"))  # `pin set --stdin` never blocks
    monkeypatch.chdir(tmp_path)  # a command that fell back to a default path writes here
    for name, data in case.files.items():
        (tmp_path / name).write_bytes(data)
    argv = [a.replace("{dir}", str(tmp_path)) for a in case.argv]
    before = _tree(tmp_path)
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit (usage errors)
        code = exc.code if isinstance(exc.code, int) else 2
    _, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, f"{case.name}: expected one line of error, got {err!r}"
    assert code == EXIT_USAGE, f"{case.name}: exit {code}: {lines[0]}"
    assert _tree(tmp_path) == before, f"{case.name}: files changed"
