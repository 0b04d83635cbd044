"""Shared fixtures: fast PIN hashing and a tiny scenario runner for tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import pytest

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


HEADER = """
name = "test"
start = "2026-03-01T08:00:00Z"
clinician_pin = "482916"
"""

MORPHINE = """
[prescription]
drug = "morphine"
concentration_per_ml = 1.0
dose_unit = "mg"
basal_rate_per_h = 0.5
pca_dose = 1.0
lockout_min = 10
max_pca_per_h = 4
dose_limit = 6.0
dose_limit_window_h = 1
loading_dose = 2.0
clinician_bolus_max = 2.0
"""


@dataclass
class Outcome:
    summary: dict[str, Any]
    events: list[dict[str, Any]]
    trace: list[dict[str, str]]
    db: Path

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind
                and all(e.get(k) == v for k, v in match.items())]

    def at(self, t_s: float) -> dict[str, str]:
        """The trace row at virtual second t_s."""
        for row in self.trace:
            if float(row["t_s"]) == t_s:
                return row
        raise KeyError(t_s)


def steps(*items: tuple[str, str] | tuple[str, str, dict[str, Any]]) -> str:
    out = []
    for item in items:
        at, do = item[0], item[1]
        extra = item[2] if len(item) > 2 else {}  # type: ignore[misc]
        body = [f'at = "{at}"', f'do = "{do}"']
        body += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
        out.append("[[step]]\n" + "\n".join(body))
    return "\n\n".join(out)


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
