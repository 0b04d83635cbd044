"""SR-12 schedule: the pure PIB timing rules, at their boundaries (pump time in ns)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pca.therapy.intermittent import Give, PibPlan, PibSchedule, Skip

MIN = 60 * 1_000_000_000
PLAN = PibPlan(dose_steps=1000, interval_ns=60 * MIN, first_ns=30 * MIN, reset_on_pca=False)


def running(s: PibSchedule, t: int, *, allowance: int | None = None, dose: bool = False):
    return s.decide(t, running=True, in_alarm=False, dose_running=dose, allowance_steps=allowance)


def test_sr12_first_pib_not_sooner_than_first_min_after_start() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(5 * MIN)
    assert running(s, 35 * MIN - 1) is None
    assert running(s, 35 * MIN) == Give(0)


def test_sr12_interval_from_start_to_start() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    s.pib_started(30 * MIN)
    assert running(s, 90 * MIN - 1) is None
    assert running(s, 90 * MIN) == Give(0)


def test_sr12_due_while_dose_runs_waits_and_reports_delay() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    assert running(s, 30 * MIN, dose=True) == "wait"
    assert running(s, 32 * MIN) == Give(2 * MIN)
    s.pib_started(32 * MIN)
    # the next is an interval after the delayed start, never closer
    assert running(s, 92 * MIN - 1) is None
    assert running(s, 92 * MIN) == Give(0)


@pytest.mark.parametrize(("kw", "reason"), [
    ({"running": False, "in_alarm": False}, "not_running"),
    ({"running": False, "in_alarm": True}, "alarm"),
])
def test_sr12_due_while_stopped_or_in_alarm_is_skipped_not_made_up(kw, reason) -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    d = s.decide(30 * MIN, dose_running=False, allowance_steps=None, **kw)
    assert d == Skip(30 * MIN, reason)
    s.pib_skipped(30 * MIN)
    assert s.decide(31 * MIN, dose_running=False, allowance_steps=None, **kw) is None
    assert s.due_ns == 90 * MIN


def test_sr12_skipped_when_no_room_under_dose_limit() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    assert running(s, 30 * MIN, allowance=0) == Skip(30 * MIN, "dose_limit")
    assert running(s, 30 * MIN, allowance=1) == Give(0)  # some room: given, cut at the limit


def test_sr12_stop_start_never_brings_the_next_closer_than_interval() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    s.pib_started(30 * MIN)
    s.delivery_started(40 * MIN)  # stopped and started again 10 min after a PIB
    assert s.due_ns == 90 * MIN  # 40 + 30 would be 70: the interval wins
    s.delivery_started(80 * MIN)
    assert s.due_ns == 110 * MIN  # now first_min after start is the later


def test_sr12_reprogramming_keeps_the_last_start() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    s.pib_started(30 * MIN)
    longer = PibPlan(dose_steps=1000, interval_ns=120 * MIN, first_ns=0, reset_on_pca=False)
    s.reprogram(longer)
    s.delivery_started(40 * MIN)
    assert s.due_ns == 150 * MIN


def test_sr12_reset_on_pca_pushes_next() -> None:
    plan = PibPlan(dose_steps=1000, interval_ns=60 * MIN, first_ns=60 * MIN, reset_on_pca=True)
    s = PibSchedule(plan)
    s.delivery_started(0)
    s.pca_started(50 * MIN)
    assert s.due_ns == 110 * MIN
    off = PibSchedule(PLAN)
    off.delivery_started(0)
    off.pca_started(20 * MIN)
    assert off.due_ns == 30 * MIN


def test_sr12_outage_drops_missed_due_times() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    s.pib_started(30 * MIN)
    s.powered_up(200 * MIN)  # due at 90, 150 passed while off
    assert s.due_ns == 210 * MIN


def test_new_patient_forgets_history() -> None:
    s = PibSchedule(PLAN)
    s.delivery_started(0)
    s.pib_started(30 * MIN)
    s.new_patient()
    s.delivery_started(31 * MIN)
    assert s.due_ns == 61 * MIN


EVENTS = st.lists(st.tuples(
    st.sampled_from(["start", "pca", "tick", "tick", "tick", "reprogram", "outage"]),
    st.integers(min_value=0, max_value=50).map(lambda m: m * MIN),
    st.sampled_from([True, True, True, False]),  # running
    st.booleans(),  # in alarm (when not running)
    st.sampled_from([False, False, False, True]),  # another dose running
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(EVENTS, st.booleans())
def test_sr12_two_starts_never_closer_than_interval(events, reset) -> None:
    plan = PibPlan(dose_steps=10, interval_ns=45 * MIN, first_ns=15 * MIN, reset_on_pca=reset)
    s = PibSchedule(plan)
    t = 0
    starts: list[int] = []
    since_start: list[int] = []  # each PIB's distance from the delivery start before it
    last_start: int | None = None
    for kind, gap, a, b, c in events:
        t += gap
        if kind == "start":
            s.delivery_started(t)
            last_start = t
        elif kind == "pca":
            s.pca_started(t)
        elif kind == "reprogram":
            s.reprogram(plan)
        elif kind == "outage":
            s.powered_up(t)
        else:
            d = s.decide(t, running=a, in_alarm=b and not a, dose_running=c,
                         allowance_steps=None)
            if isinstance(d, Give):
                s.pib_started(t)
                starts.append(t)
                assert last_start is not None
                since_start.append(t - last_start)
            elif isinstance(d, Skip):
                s.pib_skipped(d.due_ns)
    for x, y in itertools.pairwise(starts):
        assert y - x >= plan.interval_ns
    assert all(d >= plan.first_ns for d in since_start)
