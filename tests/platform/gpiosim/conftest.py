"""Fixtures for the tests run against the kernel's gpio-sim chips (hardware/emulate/gpiosim.sh)."""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from simkit import CONFIGFS, LAYOUTS, Layout, SimChip

IN_GUEST = os.environ.get("PCA_GPIOSIM") == "1"
_names = itertools.count()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        if not CONFIGFS.is_dir():  # the guest promised gpio-sim: its absence is a failure
            raise pytest.UsageError(f"PCA_GPIOSIM=1 but {CONFIGFS} does not exist")
        return
    skip = pytest.mark.skip(reason="needs the gpio-sim guest: make test-platform")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture
def make_chip() -> Iterator[Callable[..., SimChip]]:
    """make_chip(layout="pi4", hogs={offset: consumer}) -> a live gpio-sim chip, removed after."""
    made: list[SimChip] = []

    def make(layout: str | Layout = "pi4", hogs: dict[int, str] | None = None) -> SimChip:
        lay = LAYOUTS[layout] if isinstance(layout, str) else layout
        chip = SimChip(f"pca{os.getpid()}x{next(_names)}", lay, hogs)
        made.append(chip)
        return chip

    yield make
    for chip in reversed(made):
        chip.close()
