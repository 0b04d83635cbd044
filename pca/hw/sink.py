"""Where hardware inputs go: anything with put(item), usually the control loop's queue."""

from __future__ import annotations

import threading
from typing import Protocol

from pca.controller.inputs import Input


class Sink(Protocol):
    """The controller's queue (or a test's list). Devices only put; they never decide."""

    def put(self, item: Input) -> None: ...


class ListSink:
    """A thread-safe list-backed sink for tests, the simulator and the bring-up tool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Input] = []

    def put(self, item: Input) -> None:
        with self._lock:
            self._items.append(item)

    @property
    def items(self) -> list[Input]:
        with self._lock:
            return list(self._items)

    def drain(self) -> list[Input]:
        """Everything put since the last drain, oldest first."""
        with self._lock:
            items, self._items = self._items, []
        return items
