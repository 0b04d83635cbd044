"""Debouncing in injected time: a level counts only once it has held steady long enough."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

T = TypeVar("T", bound=Hashable)


class Debouncer(Generic[T]):
    """Commits a sampled value once it has been read unchanged for its hold time.

    Time is an argument (`now_ns`), never read here, so tests replay bounce
    bursts in virtual time. The hold time may differ per value: a safety line
    asserts fast and clears slowly, which is also what stops a flickering line
    from flooding the log (at most one assert/clear pair per clear hold).
    `state` is None until the first value has held (used to recognise a
    button that was already closed at boot).
    """

    def __init__(self, hold_ns: int | Mapping[T, int], *, initial: T | None = None) -> None:
        self._hold_ns = hold_ns
        self.state: T | None = initial
        self._sample: T | None = None
        self._sample_since_ns = 0
        self._sampled = False

    def hold_ns(self, value: T) -> int:
        if isinstance(self._hold_ns, int):
            return self._hold_ns
        return self._hold_ns[value]

    @property
    def sample_since_ns(self) -> int:
        """When the current run of identical samples began."""
        return self._sample_since_ns

    @property
    def settled(self) -> bool:
        """The last sample is the committed state: nothing is waiting for its hold time."""
        return self._sampled and self._sample == self.state

    def update(self, sample: T, now_ns: int) -> bool:
        """Feed one sample; True when the committed state changed."""
        if not self._sampled or sample != self._sample:
            self._sample, self._sample_since_ns, self._sampled = sample, now_ns, True
        if sample == self.state:
            return False
        if now_ns - self._sample_since_ns >= self.hold_ns(sample):
            self.state = sample
            return True
        return False
