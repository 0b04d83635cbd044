"""The episode model every export reads, and the numbers the charts draw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from review_testkit import example_log, journal_totals_ml, rows_of

from pca.review import charts
from pca.review.episode import Change, JournalEntry, build_episode
from pca.review.report import build_report, render_html

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_deliveries_account_for_every_ml_of_the_journal(episode_db: Path) -> None:
    rows = rows_of(episode_db)
    ep = build_episode(rows)
    by_source: dict[str, float] = {}
    for item in ep.deliveries:
        by_source[item.source] = by_source.get(item.source, 0.0) + item.delivered_ml
    log = journal_totals_ml(rows)
    for source, ml in log.items():
        assert by_source.get(source, 0.0) == pytest.approx(ml, abs=1e-9)
    assert ep.totals_ml() == pytest.approx({s: log.get(s, 0.0) for s in ep.totals_ml()})


def test_doses_match_what_the_log_says_they_gave(episode_db: Path) -> None:
    ep = build_episode(rows_of(episode_db))
    for dose in (d for d in ep.deliveries if d.is_dose and d.ending is not None):
        assert dose.logged_ml == pytest.approx(dose.delivered_ml, abs=1e-6)


def test_a_delivery_cut_by_a_crash_ends_when_the_pump_died(tmp_path: Path) -> None:
    rows = rows_of(example_log(tmp_path, "restart_during_dose"))
    ep = build_episode(rows)
    cut = [d for d in ep.deliveries if d.ending == "restart"]
    assert len(cut) == 1 and cut[0].upper_bound and cut[0].source == "pca"
    restart = next(r for r in rows if r["type"] == "restarted")
    assert cut[0].end is not None and cut[0].end < datetime.fromisoformat(
        restart["wall"].replace("Z", "+00:00"))
    assert ep.restarts[0].fields["outage_s"] > 0


def _row(seq: int, minutes: float, kind: str, **fields: Any) -> dict[str, Any]:
    wall = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"seq": seq, "t_s": minutes * 60, "wall": wall, "type": kind,
            "actor": "clinician" if kind.startswith("prescription") else "system", **fields}


def test_prescription_changes_are_listed_field_by_field() -> None:
    first = {"drug": "morphine", "drug_unit": "mg", "dose_unit": "mg",
             "concentration_per_ml": 1.0, "basal_rate_per_h": 0.5, "pca_dose": 1.0,
             "lockout_min": 10.0, "max_pca_per_h": 4, "dose_limit": 8.0,
             "dose_limit_window_h": 4, "overrides": []}
    second = {**first, "pca_dose": 1.5, "lockout_min": 12.0, "overrides": ["pca_dose"]}
    ep = build_episode([_row(1, 0, "prescription_activated", **first),
                        _row(2, 60, "prescription_activated", **second)])
    assert ep.prescriptions[0].changes == []
    assert ep.prescriptions[1].changes == [Change("pca_dose", 1.0, 1.5),
                                           Change("lockout_min", 10.0, 12.0),
                                           Change("overrides", [], ["pca_dose"])]


def test_the_report_shows_a_changed_prescription(tmp_path: Path) -> None:
    # A real log, with a second programming whose PCA dose differs (written as a new row:
    # scenarios activate one [prescription] only).
    from pca.review import report as review_report

    rows = rows_of(example_log(tmp_path, "postop_morphine"))
    rx = next(r for r in rows if r["type"] == "prescription_activated")
    changed = {**rx, "seq": rows[-1]["seq"] + 1, "wall": rows[-1]["wall"], "pca_dose": 2.0,
               "pca_dose_ml": 2.0}
    ep = build_episode([*rows, changed])
    window = charts.Window(ep.start or T0, (ep.end or T0) + timedelta(seconds=1))
    section = review_report._prescriptions(ep, window)
    assert section.tables[0].rows[-1][-1] == "pca_dose: 1.5 → 2"


def brute_force(journal: list[JournalEntry], at: datetime) -> float:
    """Sum over (at - W, at] by definition (SR-2's half-open window)."""
    return sum(e.drug_amount or 0.0 for e in journal
               if e.source in ("basal", "pca", "loading") and e.window_h is not None
               and at - timedelta(hours=e.window_h) < e.wall <= at)


def test_rolling_dose_is_the_half_open_window_sum(episode_db: Path) -> None:
    ep = build_episode(rows_of(episode_db))
    assert ep.start is not None and ep.end is not None
    window = charts.Window(ep.start, ep.end)
    x, y = charts.rolling_dose(ep.journal, window)
    assert len(x) > 100
    points = charts.mdates.num2date(x)
    for i in range(0, len(x), max(1, len(x) // 150)):
        assert y[i] == pytest.approx(brute_force(ep.journal, points[i]), abs=1e-6)
    rx = ep.prescriptions[0]
    limit_ml, conc = rx.dose_limit_ml, rx.concentration_per_ml
    assert limit_ml is not None and conc is not None
    assert y.max() <= limit_ml * conc + 1e-3  # SR-2 held, as the log tells it


def test_charts_render_headless_even_for_an_empty_period(tmp_path: Path) -> None:
    ep = build_episode(rows_of(example_log(tmp_path, "fentanyl_pca_no_basal")))
    assert ep.start is not None and ep.end is not None
    empty = charts.Window(ep.start - timedelta(days=2), ep.start - timedelta(days=1))
    for window in (charts.Window(ep.start, ep.end + timedelta(seconds=1)), empty):
        figures = [charts.attempts_chart(ep.requests, ep.prescriptions, window),
                   charts.dose_chart(ep, ep.journal, ep.deliveries, window),
                   charts.alarms_chart(ep.alarms, [r.wall for r in ep.restarts], window)]
        for fig in figures:
            assert charts.png(fig, dpi=40).startswith(b"\x89PNG")


def test_report_of_a_period_before_the_log_is_still_a_report(tmp_path: Path) -> None:
    db = example_log(tmp_path, "postop_morphine")
    page = render_html(build_report(db, T0 - timedelta(days=3), T0 - timedelta(days=2)))
    assert "PCA button: 0 requests" in page
    assert "No alarms in this period." in page
