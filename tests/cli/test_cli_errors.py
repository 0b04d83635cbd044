"""Bad input at the command line: one clear line, a non-zero exit, and nothing changed.

Each case of the issue, run in-process through `pca.app.cli.main` (the console script's
entry point); a few that need a real pipe or interpreter exit run as subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pca.app import cli
from pca.app.errors import EXIT_BUG, EXIT_USAGE, guarded

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "pca" / "examples" / "postop_morphine.toml"
RX_FILE = ROOT / "pca" / "examples" / "pharmacy" / "morphine_pca.pca-rx.toml"


def pca(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def good_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("log") / "events.db"
    assert cli.main(["scenario", str(EXAMPLE), "--db", str(db)]) == 0
    return db


def bad_logs(folder: Path, good: Path) -> dict[str, Path]:
    """An empty file, random bytes, a truncated log, and an SQLite file of something else."""
    empty = folder / "empty.db"
    empty.write_bytes(b"")
    noise = folder / "random.db"
    noise.write_bytes(bytes((i * 7919 + 13) % 256 for i in range(8192)))
    truncated = folder / "truncated.db"
    truncated.write_bytes(good.read_bytes()[:6000])
    other = folder / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    return {"empty": empty, "random": noise, "truncated": truncated, "other": other}


@pytest.mark.parametrize("command", [["log", "tail"], ["log", "export"],
                                     ["log", "export", "--format", "fhir"],
                                     ["log", "export", "--format", "hl7"], ["log", "verify"]])
def test_log_commands_refuse_a_file_that_is_not_a_log_and_change_nothing(
        tmp_path: Path, good_log: Path, capsys: pytest.CaptureFixture[str],
        command: list[str]) -> None:
    for kind, db in bad_logs(tmp_path, good_log).items():
        before = tree(tmp_path)
        code, out, err = pca(capsys, *command, "--db", str(db))
        line = one_line(err)
        assert code == EXIT_USAGE and out == "", (kind, err)
        assert line.startswith(f"pca {' '.join(command[:2])}: --db {db}: "), line
        assert tree(tmp_path) == before, kind  # not even a -wal or -journal file
    assert (tmp_path / "empty.db").stat().st_size == 0  # never turned into a database


def test_export_out_into_a_missing_folder(tmp_path: Path, good_log: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no" / "such" / "x.csv"
    code, _, err = pca(capsys, "log", "export", "--db", str(good_log), "--out", str(target))
    assert code == EXIT_USAGE and "no such folder" in one_line(err)
    assert not (tmp_path / "no").exists()


def test_a_failed_export_leaves_no_half_file(tmp_path: Path, good_log: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    truncated = bad_logs(tmp_path, good_log)["truncated"]
    # A log whose schema reads but whose rows do not: damage it past the first page.
    data = bytearray(good_log.read_bytes())
    data[8192:16384] = bytes(8192)
    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(bytes(data))
    for db in (truncated, damaged):
        target = tmp_path / f"out-{db.stem}.jsonl"
        code, _, err = pca(capsys, "log", "export", "--db", str(db), "--out", str(target))
        assert code == EXIT_USAGE, err
        one_line(err)
        assert not target.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("flag", ["--events", "--db", "--trace"])
def test_scenario_outputs_into_a_missing_folder(tmp_path: Path, flag: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "out"
    code, out, err = pca(capsys, "scenario", str(EXAMPLE), flag, str(target))
    assert code == EXIT_USAGE and out == ""
    assert one_line(err) == f"pca scenario: {flag} {target}: no such folder {target.parent}"
    assert list(tmp_path.iterdir()) == []


def test_pin_status_on_a_typo_creates_no_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    typo = tmp_path / "typo.db"
    code, _, err = pca(capsys, "pin", "status", "--db", str(typo), "--no-pepper")
    assert code == EXIT_USAGE and "no such file" in one_line(err)
    code, _, err = pca(capsys, "pin", "set", "--db", str(tmp_path / "x" / "typo.db"),
                       "--pepper", str(tmp_path / "pepper"))
    assert code == EXIT_USAGE and "no such folder" in one_line(err)
    assert list(tmp_path.iterdir()) == []  # no database, no pepper


def test_rx_load_into_a_missing_spool_creates_no_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "nonexistent" / "x"
    for command in (["rx", "load", str(RX_FILE)], ["rx", "load-library",
                                                    str(ROOT / "pca" / "therapy" / "data" /
                                                        "drug_library.toml")]):
        code, _, err = pca(capsys, *command, "--spool", str(spool))
        assert code != 0
        one_line(err)
        assert not (tmp_path / "nonexistent").exists()


def test_sim_headless_uses_the_db_it_is_given_or_refuses(
        tmp_path: Path, good_log: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "sim.db"
    code, out, _ = pca(capsys, "sim", "--headless", "--db", str(db))
    assert code == 0 and str(db) in out
    assert cli.main(["log", "verify", "--db", str(db)]) == 0
    capsys.readouterr()
    before = good_log.stat().st_mtime_ns, good_log.stat().st_size
    code, _, err = pca(capsys, "sim", "--headless", "--db", str(good_log))
    assert code == EXIT_USAGE and "already exists" in one_line(err)
    assert (good_log.stat().st_mtime_ns, good_log.stat().st_size) == before
    code, _, err = pca(capsys, "sim", "--headless", "--db", str(tmp_path / "no" / "x.db"))
    assert code == EXIT_USAGE and "no such folder" in one_line(err)


@pytest.mark.parametrize(("group", "members"), [
    ("bench", ["stepgen", "log", "scenario", "report"]), ("hw", ["selftest"])])
def test_group_help_lists_its_subcommands(group: str, members: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = pca(capsys, group, "--help")
    assert code == 0
    for name in members:
        assert any(line.split()[:1] == [name] for line in out.splitlines()), (name, out)
    code, _, err = pca(capsys, group)
    assert code == EXIT_USAGE and "SUBCOMMAND" in one_line(err)


def test_sim_help_lists_every_key_of_the_simulator(capsys: pytest.CaptureFixture[str]) -> None:
    from pca.app import sim_tui

    code, out, _ = pca(capsys, "sim", "--help")
    assert code == 0 and "1234" in out
    keys = out.split("keys in the simulator:", 1)[1]
    for binding in sim_tui.PumpSimApp.BINDINGS:
        first = binding.key.split(",")[0] if hasattr(binding, "key") else binding[0]
        if first.isdigit() or first in ("asterisk", "number_sign"):
            continue  # the keypad row: "0-9, *, #"
        assert first in keys, first
    for key, line in sim_tui.SWITCH_KEYS.items():
        assert key in keys and line.replace("_", " ") in keys


def test_report_on_a_file_that_is_not_a_log(tmp_path: Path, good_log: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for db in bad_logs(tmp_path, good_log).values():
        before = tree(tmp_path)
        code, _, err = pca(capsys, "report", "--db", str(db), "--out", str(tmp_path / "r.html"))
        assert code == EXIT_USAGE
        one_line(err)
        assert tree(tmp_path) == before


def test_an_unexpected_error_is_one_line_exit_70_and_says_it_is_a_bug(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> int:
        raise KeyError("oops")

    monkeypatch.delenv("PCA_DEBUG", raising=False)
    assert guarded("pca x", broken) == EXIT_BUG
    line = one_line(capsys.readouterr().err)
    assert line.startswith("pca x: internal error (KeyError") and "PCA_DEBUG=1" in line
    monkeypatch.setenv("PCA_DEBUG", "1")
    with pytest.raises(KeyError):
        guarded("pca x", broken)
    monkeypatch.delenv("PCA_DEBUG")
    with pytest.raises(KeyError):  # the daemon's journal keeps the traceback
        guarded("pca run", broken, daemon=True)


def _console(*argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PCA_DEBUG", None)
    return subprocess.run([sys.executable, "-c", "import sys; from pca.app.cli import main; "
                           "sys.exit(main())", *argv], capture_output=True, text=True,
                          timeout=120, env=env, **kwargs)  # type: ignore[call-overload]


def test_export_into_a_closed_pipe(good_log: Path) -> None:
    """`pca log export ... | head -1`: the reader leaves early; one line, exit 141."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = (f"{sys.executable} -c 'import sys; from pca.app.cli import main; sys.exit(main())'"
              f" log export --db {good_log} --format csv | head -1")
    done = subprocess.run(["bash", "-o", "pipefail", "-c", script], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.stdout.startswith("seq,t_s,wall,type")
    assert done.returncode == 141
    assert one_line(done.stderr) == "pca log export: output closed early (broken pipe); stopped"


def test_the_console_script_never_shows_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    for argv in (["log", "tail", "--db", str(empty)], ["scenario", str(tmp_path / "none.toml")],
                 ["report", "--db", str(empty), "--out", str(tmp_path / "r.html")],
                 ["log", "export", "--db", str(empty), "--since", "yesterday"]):
        done = _console(*argv)
        assert done.returncode == EXIT_USAGE, (argv, done.stderr)
        one_line(done.stderr)
    assert empty.stat().st_size == 0
