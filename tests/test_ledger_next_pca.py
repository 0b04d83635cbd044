"""The ledger's "when is the next PCA dose available" (for the patient's answer to a press),
against a brute-force search over every instant at which a rule can change its answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pca.therapy.ledger import HOUR_NS, NS_PER_S, DoseLedger, LedgerLimits

MIN = 60 * NS_PER_S


def build(starts: list[int], deliveries: list[tuple[int, int]], cap: int | None,
          limit: int | None) -> DoseLedger:
    ledger = DoseLedger(LedgerLimits(lockout_ns=10 * MIN, window_ns=4 * HOUR_NS,
                                     dose_limit_steps=limit, max_pca_per_h=cap,
                                     pca_dose_steps=200))
    for t in sorted(starts):
        ledger.record_dose_start("pca", t)
    for t, steps in sorted(deliveries):
        ledger.record_delivery("pca", steps, t)
    return ledger


def candidates(ledger: DoseLedger, starts: list[int], deliveries: list[tuple[int, int]],
               now: int) -> list[int]:
    """Every instant at or after now where, with nothing more delivered, a rule's answer
    can change: the lockout's end, a start leaving the hour, a record leaving the window."""
    times = {now, (ledger.lockout_ends_ns() or now)}
    times |= {t + HOUR_NS for t in starts} | {t + 4 * HOUR_NS for t, _ in deliveries}
    return sorted(t for t in times if t >= now)


# Times are offsets back from now: starts within the last 90 min (so the lockout and the
# hour both bind), deliveries within the last 5 h (some in the 4 h window, some gone).
histories = st.tuples(
    st.lists(st.integers(0, 90 * MIN), max_size=8),
    st.lists(st.tuples(st.integers(0, 5 * HOUR_NS), st.integers(1, 400)), max_size=8),
    st.one_of(st.none(), st.integers(1, 4)),
    st.one_of(st.none(), st.integers(200, 2000)),
)


@settings(max_examples=400, deadline=None)
@given(histories)
def test_next_pca_time_is_the_first_instant_a_press_would_be_granted(history) -> None:  # type: ignore[no-untyped-def]
    back_starts, back_deliveries, cap, limit = history
    now = 6 * HOUR_NS
    starts = [now - b for b in back_starts]
    deliveries = [(now - b, steps) for b, steps in back_deliveries]
    ledger = build(starts, deliveries, cap, limit)
    at = ledger.pca_available_at_ns(now)
    seen = [(t, ledger.pca_denial(t, dose_running=False))
            for t in candidates(ledger, starts, deliveries, now)]
    if at is not None:
        assert ledger.pca_denial(at, dose_running=False) is None
        assert all(reason is not None for t, reason in seen if t < at)
        assert at >= now
    else:  # not known from the lockout and the hour: the dose limit says no then
        first = next(reason for _, reason in seen if reason not in ("lockout", "max_per_hour"))
        assert first == "dose_limit"


def test_next_pca_time_counts_the_basal_that_runs_meanwhile() -> None:
    ledger = build([0], [(0, 200)], None, 500)  # 300 steps of room, lockout to 10 min
    assert ledger.pca_available_at_ns(MIN) == 10 * MIN
    # 100 steps an hour of basal for 9 minutes leaves the room for the 200-step dose ...
    assert ledger.pca_available_at_ns(MIN, basal_steps_per_h=100) == 10 * MIN
    # ... but 800 an hour (120 steps by then) does not: no promise is made.
    assert ledger.pca_available_at_ns(MIN, basal_steps_per_h=800) is None


def test_no_prescription_no_time() -> None:
    assert DoseLedger().pca_available_at_ns(0) is None
