"""Fuzz every file loader (scenario, pharmacy file, drug library, pca.toml): 1,300 hostile
inputs in all, none may end in a traceback or be accepted with a value outside its bounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from input_fuzz import KINDS, Case, cases, judge

PER_LOADER = 325


@pytest.mark.parametrize("kind", KINDS)
def test_sr8_no_loader_crashes_or_accepts_a_value_outside_its_bounds(
        kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp(f"fuzz-{kind}")
    seen: list[str] = []

    @settings(max_examples=PER_LOADER, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(cases(kind))
    def check(case: Case) -> None:
        verdict = judge(case, Path(workdir))
        seen.append(verdict)
        assert verdict in ("refused", "accepted"), f"{kind}: {case.what}: {verdict}"

    check()
    # The generator reaches both outcomes: a fuzzer that is always refused proves nothing.
    assert len(seen) >= PER_LOADER * 0.9
    assert "accepted" in seen and "refused" in seen
