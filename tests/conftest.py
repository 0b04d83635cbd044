"""Shared fixtures: fast PIN hashing and a tiny scenario runner for tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
from pca_testkit import Outcome

from pca.app.scenario import load_scenario, run_scenario
from pca.controller import auth


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="run long checks too")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long check: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production uses N=2**14 (16 MiB); tests use a cheaper cost to stay quick."""
    monkeypatch.setattr(auth, "SCRYPT_N", 2**10)


@pytest.fixture
def scenario(tmp_path: Path) -> Callable[..., Outcome]:
    """Run a scenario given as TOML text; returns summary, events and trace."""
    counter = iter(range(1000))

    def run(text: str, trace_interval_s: float = 1.0) -> Outcome:
        n = next(counter)
        path = tmp_path / f"s{n}.toml"
        path.write_text(text)
        db = tmp_path / f"s{n}.db"
        events, trace = StringIO(), StringIO()
        result = run_scenario(load_scenario(path), db=db, events=events, trace=trace,
                              trace_interval_s=trace_interval_s)
        rows = [json.loads(line) for line in events.getvalue().splitlines()]
        lines = trace.getvalue().splitlines()
        header = lines[0].split(",")
        table = [dict(zip(header, line.split(","), strict=True)) for line in lines[1:]]
        return Outcome(result.summary, rows, table, db)

    return run
