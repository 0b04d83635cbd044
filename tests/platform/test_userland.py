"""Checks that the emulated-userland run (hardware/emulate/userland.sh) tests what it claims."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

EXPECTED = os.environ.get("PCA_PLATFORM_EXPECT_MACHINE")
needs_emulated_root = pytest.mark.skipif(
    EXPECTED is None, reason="only inside hardware/emulate/userland.sh's root"
)


@needs_emulated_root
def test_python_runs_on_the_pi_cpu_architecture() -> None:
    assert platform.machine() == EXPECTED


@needs_emulated_root
def test_the_installed_package_is_under_test_not_the_source_tree() -> None:
    import pca

    assert Path(pca.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())


def test_the_native_extension_is_built_for_this_cpu() -> None:
    from pca import _stepgen

    suffix = Path(_stepgen.__file__).name
    assert platform.machine().replace("_", "-") in suffix or platform.machine() in suffix
