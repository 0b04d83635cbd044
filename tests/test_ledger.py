"""SR-1, SR-2, SR-3 on the pure dose ledger, against a brute-force model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pca.therapy.ledger import HOUR_NS, NS_PER_S, DoseLedger, LedgerLimits

MIN = 60 * NS_PER_S


def limits(**changes: int | None) -> LedgerLimits:
    base: dict[str, int | None] = dict(lockout_ns=10 * MIN, window_ns=HOUR_NS,
                                       dose_limit_steps=1000, max_pca_per_h=3,
                                       pca_dose_steps=200)
    base.update(changes)
    return LedgerLimits(**base)  # type: ignore[arg-type]


def test_sr1_lockout_is_inclusive_at_the_boundary() -> None:
    ledger = DoseLedger(limits())
    ledger.record_dose_start("pca", 0)
    assert ledger.pca_denial(10 * MIN - 1, dose_running=False) == "lockout"
    assert ledger.pca_denial(10 * MIN, dose_running=False) is None


def test_sr1_clinician_and_loading_doses_start_a_lockout_too() -> None:
    for source in ("clinician", "loading"):
        ledger = DoseLedger(limits())
        ledger.record_dose_start(source, 5 * MIN)  # type: ignore[arg-type]
        assert ledger.pca_denial(14 * MIN, dose_running=False) == "lockout"


def test_sr1_never_while_a_dose_is_running() -> None:
    ledger = DoseLedger(limits())
    assert ledger.pca_denial(0, dose_running=True) == "in_progress"


def test_sr2_dose_limit_denies_a_dose_that_would_exceed_it() -> None:
    ledger = DoseLedger(limits(dose_limit_steps=1000, pca_dose_steps=200))
    ledger.record_delivery("basal", 801, 5 * MIN)
    assert ledger.allowance_steps(20 * MIN) == 199
    assert ledger.pca_denial(20 * MIN, dose_running=False) == "dose_limit"
    # The record leaves the window exactly one window later (half-open window).
    assert ledger.allowance_steps(5 * MIN + HOUR_NS - 1) == 199
    assert ledger.allowance_steps(5 * MIN + HOUR_NS) == 1000


def test_sr2_clinician_boluses_and_kvo_do_not_count() -> None:
    ledger = DoseLedger(limits())
    ledger.record_delivery("clinician", 5000, MIN)
    ledger.record_delivery("kvo", 5000, 2 * MIN)
    assert ledger.allowance_steps(3 * MIN) == 1000
    assert ledger.totals["clinician"] == 5000


def test_sr2_room_at_finds_when_old_deliveries_leave_the_window() -> None:
    ledger = DoseLedger(limits(dose_limit_steps=1000))
    ledger.record_delivery("pca", 600, 0)
    ledger.record_delivery("basal", 300, 30 * MIN)
    assert ledger.room_at_ns(40 * MIN, 100) == 40 * MIN
    assert ledger.room_at_ns(40 * MIN, 101) == HOUR_NS
    assert ledger.room_at_ns(40 * MIN, 800) == 30 * MIN + HOUR_NS
    assert ledger.room_at_ns(40 * MIN, 1001) is None


def test_sr3_at_most_max_pca_doses_start_in_any_hour() -> None:
    ledger = DoseLedger(limits(lockout_ns=MIN, max_pca_per_h=3))
    for t in (0, 10 * MIN, 20 * MIN):
        assert ledger.pca_denial(t, dose_running=False) is None
        ledger.record_dose_start("pca", t)
    assert ledger.pca_denial(59 * MIN, dose_running=False) == "max_per_hour"
    assert ledger.pca_denial(HOUR_NS, dose_running=False) is None


def test_sr3_clinician_doses_do_not_use_up_the_hourly_count() -> None:
    ledger = DoseLedger(limits(lockout_ns=MIN, max_pca_per_h=1))
    ledger.record_dose_start("clinician", 0)
    assert ledger.pca_denial(2 * MIN, dose_running=False) is None


events = st.lists(st.tuples(st.integers(0, 3 * HOUR_NS // NS_PER_S),
                            st.sampled_from(["basal", "pca", "loading", "clinician", "kvo"]),
                            st.integers(0, 400)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(events, st.integers(0, 4 * HOUR_NS // NS_PER_S), st.sampled_from([1, 2, 4]))
def test_sr2_counted_steps_match_a_brute_force_window(
        history: list[tuple[int, str, int]], now_s: int, window_h: int) -> None:
    ledger = DoseLedger(limits(window_ns=window_h * HOUR_NS))
    history.sort()
    for t_s, source, steps in history:
        ledger.record_delivery(source, steps, t_s * NS_PER_S)  # type: ignore[arg-type]
    # The ledger is asked about the present: nothing is recorded after now.
    now = max([now_s] + [t for t, _, _ in history]) * NS_PER_S
    expected = sum(steps for t_s, source, steps in history
                   if source in ("basal", "pca", "loading")
                   and now - window_h * HOUR_NS < t_s * NS_PER_S <= now)
    assert ledger.counted_steps(now) == expected
    assert ledger.allowance_steps(now) == max(0, 1000 - expected)
    room = ledger.room_at_ns(now, 200)
    if room is not None:
        assert room >= now
        assert ledger.allowance_steps(room) >= 200 or ledger.counted_steps(room) + 200 <= 1000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2 * HOUR_NS // NS_PER_S),
                          st.sampled_from(["pca", "clinician", "loading"])), max_size=20),
       st.integers(0, 3 * HOUR_NS // NS_PER_S))
def test_sr1_sr3_decision_matches_the_rules(starts: list[tuple[int, str]], now_s: int) -> None:
    lim = limits(lockout_ns=7 * MIN, max_pca_per_h=3, dose_limit_steps=None)
    ledger = DoseLedger(lim)
    starts.sort()
    for t_s, source in starts:
        ledger.record_dose_start(source, t_s * NS_PER_S)  # type: ignore[arg-type]
    now = now_s * NS_PER_S
    past = [(t * NS_PER_S, s) for t, s in starts if t * NS_PER_S <= now]
    expected = None
    if past and now - past[-1][0] < lim.lockout_ns:
        expected = "lockout"
    elif sum(1 for t, s in past if s == "pca" and now - HOUR_NS < t) >= 3:
        expected = "max_per_hour"
    if starts and starts[-1][0] * NS_PER_S > now:
        return  # the ledger is only asked about the present, never the past
    assert ledger.pca_denial(now, dose_running=False) == expected


def test_sr2_a_record_dated_later_in_the_same_tick_still_counts() -> None:
    """Found by the real-time fault campaign: a dose's last steps were recorded a few ms
    after the tick began, and the basal grant in the same tick did not see them."""
    ledger = DoseLedger(limits(dose_limit_steps=1000))
    ledger.record_delivery("pca", 900, 10 * MIN + 5_000_000)  # 5 ms after the tick began
    assert ledger.allowance_steps(10 * MIN) == 100
    assert ledger.pca_denial(10 * MIN + 1, dose_running=False) == "dose_limit"
