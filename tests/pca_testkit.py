"""Scenario text helpers shared by the tests (a plain module, so it never clashes with the
conftest.py files of tests/native and tests/hw)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

# Labour epidural in mL: bupivacaine 0.0625 % + fentanyl; PCEA 5 mL / 10 min; PIB 5 mL
# every 30 min, the first 15 min after start. At 120 mL/h a 5 mL dose takes 150 s.
PUMP_EPIDURAL = """
[pump]
syringe_ml = 100.0
bolus_rate_ml_h = 120.0
"""
EPIDURAL = """
[prescription]
drug = "bupivacaine_fentanyl"
route = "epidural"
concentration_per_ml = 0.625
dose_unit = "ml"
basal_rate_per_h = 0.0
pca_dose = 5.0
lockout_min = 10
max_pca_per_h = 3
dose_limit = 25.0
dose_limit_window_h = 1
pib_dose = 5.0
pib_interval_min = 30
pib_first_min = 15
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

# A one-drug library in the SCENARIOS.md format (no checksum: test input, not a pharmacy file).
LIB_TEXT = """
[[drug]]
name = "morphine"
unit = "mg"
concentrations_per_ml = [1.0]
dose_limit_required = true
[drug.limits]
basal_rate_per_h    = [0.0, 0.0, 2.0, 4.0]
pca_dose            = [0.1, 0.5, 3.0, 5.0]
lockout_min         = [5, 6, 20, 60]
dose_limit_window_h = [1, 1, 4, 12]
max_pca_per_h       = [1, 1, 6, 12]
dose_limit          = [1.0, 5.0, 30.0, 40.0]
loading_dose        = [0.0, 0.0, 5.0, 10.0]
clinician_bolus_max = [0.0, 0.0, 5.0, 10.0]
"""
