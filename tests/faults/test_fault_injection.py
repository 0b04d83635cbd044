"""SR-5, SR-7: SIGKILL the real-time pump process (mid-dose, mid-write) and restart it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from harness import check_rules, run_campaign


def test_sr5_sr7_pump_survives_random_kills(tmp_path: Path) -> None:
    report = run_campaign(tmp_path, kills=12, seed=7)
    print(report.line())
    assert report.kills >= 12
    assert report.violations == []
    assert report.doses >= 2  # the campaign exercised doses, not an idle pump


@pytest.mark.slow
def test_sr5_sr7_pump_survives_random_kills_long(tmp_path: Path) -> None:
    report = run_campaign(tmp_path, kills=150, seed=11, fresh_every=25)
    print(report.line())
    assert report.kills >= 150
    assert report.violations == []
    assert report.kills_mid_dose > 0 and report.mid_write_deaths > 0


def test_the_rule_checker_can_fail() -> None:
    """The checker itself must catch a broken lockout, a double end and a limit breach."""
    s = 1_000_000_000
    events = [
        (1, 0, "pca_request", {"outcome": "granted"}, ""),
        (2, 0, "dose_started", {"source": "pca"}, ""),
        (3, 3 * s, "dose_ended", {}, ""),
        (4, 4 * s, "dose_ended", {}, ""),
        (5, 5 * s, "pca_request", {"outcome": "granted"}, ""),
        (6, 6 * s, "delivery", {"source": "basal", "steps": 10_000}, ""),
    ]
    found = " ".join(check_rules(events))
    assert "SR-1 lockout" in found and "ended twice" in found and "SR-2" in found
