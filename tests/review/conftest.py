"""Fixtures of the review tests: one multi-day episode made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_testkit import make_log

from pca.review.sample_episode import episode_toml

# Four days reach everything the sample has (loading dose at the limit, clinician bolus,
# occlusion, restart) in a few seconds; the 7-day episode is the benchmark's.
TEST_DAYS = 4


@pytest.fixture(scope="session")
def episode_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_log(tmp_path_factory.mktemp("episode"), episode_toml(TEST_DAYS), "episode")
