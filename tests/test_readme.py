"""Every command block of README.md runs as written, in a fresh copy of the checkout.

A block that cannot run here says so in a `<!-- readme-test: not run (why) -->` line above
it; for those, the test still checks that the commands they name exist."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!-- readme-test: not run \((.+?)\) -->\s*$")


def blocks() -> list[tuple[int, str, str | None]]:
    """(line number, commands, why it is not run or None) of every ```sh block."""
    out = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            skip = SKIP.match(lines[i - 1].strip()) if i else None
            start = i + 1
            i += 1
            while lines[i].strip() != "```":
                i += 1
            out.append((start + 1, "\n".join(lines[start:i]), skip.group(1) if skip else None))
        i += 1
    return out


def fresh_copy(dest: Path) -> Path:
    """The files git tracks, as a clone has them, with this checkout's venv beside them."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        elif src.is_file():
            shutil.copy2(src, target)
    (dest / ".venv").symlink_to(Path(sys.prefix))
    return dest


def test_the_readme_has_command_blocks_and_says_why_any_is_not_run() -> None:
    found = blocks()
    run = [b for b in found if b[2] is None]
    assert len(run) >= 2, "the README's usage examples are gone"
    text = "\n".join(b[1] for b in run)
    for needed in ("pca scenario", "pca log verify", "pca log tail", "--format csv",
                   "--format fhir", "--format hl7", "pca report", "pca rx", "pca pin"):
        assert needed in text, needed
    assert len([b for b in found if b[2] is not None]) <= 2  # the make targets, the Pi


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, str | None]]:
    """Every runnable block, in order, in one fresh copy (later blocks use what earlier ones
    made, as a reader's shell would): line -> None when it ran, else what failed."""
    copy = fresh_copy(tmp_path_factory.mktemp("readme") / "clone")
    results: dict[int, str | None] = {}
    for line, commands, why in blocks():
        if why is not None:
            continue
        if re.search(r"^\s*(make|sudo|systemctl)\b", commands, re.M):
            # never from a test: make test would run this test again, sudo needs a Pi
            results[line] = "runs make, sudo or systemctl: mark it <!-- readme-test: not run -->"
            continue
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=copy,
                              capture_output=True, text=True, timeout=600)
        results[line] = None if done.returncode == 0 else \
            f"exit {done.returncode}:\n{commands}\n{done.stderr[-2000:]}"
    return copy, results


@pytest.mark.parametrize("line", [b[0] for b in blocks() if b[2] is None],
                         ids=lambda v: f"README line {v}")
def test_each_command_block_runs_in_a_fresh_copy(
        line: int, readme_run: tuple[Path, dict[int, str | None]]) -> None:
    copy, results = readme_run
    assert results[line] is None, f"README line {line}: {results[line]}"
    commands = next(b[1] for b in blocks() if b[0] == line)
    if "pca report" in commands:  # what the README says the commands make is there
        assert (copy / "report.html").stat().st_size > 0 and (copy / "report.pdf").exists()


def test_the_blocks_that_are_not_run_name_what_exists() -> None:
    for line, commands, why in blocks():
        if why is None:
            continue
        for target in re.findall(r"^make (\S+)", commands, re.M):
            dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True,
                                 text=True, timeout=60)
            assert dry.returncode == 0, f"README line {line}: make {target}: {dry.stderr}"
        for script in re.findall(r"(systemd/\S+\.sh)", commands):
            assert (ROOT / script).is_file(), script


def test_no_document_points_outside_the_checkout() -> None:
    for doc in [README, *sorted((ROOT / "docs").glob("*.md"))]:
        assert "../shared" not in doc.read_text(encoding="utf-8"), doc.name
