"""SR-12 over 72 h of labour-epidural PIEB + PCEA (cassette changes, presses every 2 h), against
an independent model of the contract's rules. Long (3 min on a loaded 2-core machine): run with
`pytest --run-slow tests/test_sr12_long.py`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pca_testkit import EPIDURAL, HEADER, PUMP_EPIDURAL, Outcome

Run = Callable[..., Outcome]
H, MIN = 3600, 60
CHANGES_S = (16 * H + 30 * MIN, 32 * H + 50 * MIN, 48 * H + 10 * MIN, 64 * H + 40 * MIN)
PRESSES_S = tuple(h * H + 20 * MIN for h in range(0, 72, 2))

# The labour regimen of tests/test_sr12.py at 10 mL every 60 min, in 250 mL cassettes, on a pump
# with an RTC (pump time is virtual time).
RX = (PUMP_EPIDURAL.replace("syringe_ml = 100.0", "syringe_ml = 250.0") + "rtc = true\n"
      + EPIDURAL.replace("pib_dose = 5.0", "pib_dose = 10.0")
      .replace("pib_interval_min = 30", "pib_interval_min = 60")
      .replace("pib_first_min = 15", "pib_first_min = 60"))


def scenario_text() -> str:
    steps = [(0, "program", ""), (5, "start", "")]
    steps += [(t, "press", "") for t in PRESSES_S]
    for t in CHANGES_S:
        steps += [(t, "stop", ""), (t, "new_syringe", "syringe_ml = 250.0\n"),
                  (t + 2 * MIN, "start", "")]
    steps.sort(key=lambda s: s[0])
    body = "".join(f'\n[[step]]\nat = "{t}s"\ndo = "{do}"\n{extra}' for t, do, extra in steps)
    return HEADER + 'end = "72h"\n' + RX + body


def oracle() -> dict[str, int]:
    """The rules as SCENARIOS.md and docs/scenarios.md state them, in whole seconds."""
    interval, first, lockout, pib_s, pca_s = 60 * MIN, 60 * MIN, 10 * MIN, 300, 150
    events = sorted([(5, "start")] + [(t, "press") for t in PRESSES_S]
                    + [e for t in CHANGES_S for e in ((t, "stop"), (t + 2 * MIN, "start"))]
                    + [(72 * H, "end")])
    running, due, last_pib, dose_end, last_start = False, None, None, -1, None
    given = skipped = granted = lockout_denied = 0
    for when, what in events:
        while due is not None and due < when:
            if not running:
                skipped += 1
                due += interval
                continue
            start = max(due, dose_end)
            if start >= when:
                break
            given += 1
            last_pib = last_start = start
            dose_end, due = start + pib_s, start + interval
        if what == "start":
            running = True
            due = when + first if last_pib is None else max(when + first, last_pib + interval)
        elif what == "stop":
            running = False
        elif what == "press":
            if last_start is not None and when - last_start < lockout:
                lockout_denied += 1
            else:
                granted += 1
                last_start, dose_end = when, when + pca_s
    return {"pib_given": given, "pib_skipped": skipped, "pca_granted": granted,
            "lockout": lockout_denied}


@pytest.mark.slow
def test_sr12_72_hours_of_labour_epidural_against_the_rules(scenario: Run) -> None:
    expected = oracle()
    out = scenario(scenario_text(), trace_interval_s=60.0)
    s = out.summary
    assert (s["pib_given"], s["pib_skipped"], s["pca_granted"], s["pca_denied"]["lockout"]) == (
        expected["pib_given"], expected["pib_skipped"], expected["pca_granted"],
        expected["lockout"])
    assert s["delivered_ml"]["intermittent"] == pytest.approx(10.0 * expected["pib_given"],
                                                              abs=1e-6)
    assert s["delivered_ml"]["pca"] == pytest.approx(5.0 * expected["pca_granted"], abs=1e-6)
    assert s["alarms"] == [] and s["final_state"] == "running"


def test_the_72_hour_oracle_is_the_figure_in_the_closing_note() -> None:
    assert oracle() == {"pib_given": 70, "pib_skipped": 0, "pca_granted": 28, "lockout": 8}
