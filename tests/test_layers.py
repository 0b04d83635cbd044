"""The layers point inward: therapy knows nothing of ours, the controller knows only
therapy, adapters do not know each other, and nothing below `app` imports `app`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pca

ROOT = Path(pca.__file__).parent
# package -> the packages of ours it may import (besides itself)
ALLOWED = {
    "therapy": set(),
    "controller": {"therapy"},
    "store": {"controller", "therapy"},
    "hw": {"controller", "therapy", "_stepgen"},
    "review": {"store", "controller", "therapy"},
}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        found.update(n.split(".")[1] for n in names if n.startswith("pca."))
    return found


def _violations(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for target in _imports(path) - ALLOWED[package] - {package}:
            bad.append(f"{path.relative_to(ROOT.parent)} imports pca.{target}")
    return bad


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_inward(package: str) -> None:
    assert _violations(package) == []


def test_the_checker_sees_an_arrow_back_up(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text("from pca.app.scenario import run_scenario\nimport pca.therapy.units\n")
    assert _imports(stray) == {"app", "therapy"}
