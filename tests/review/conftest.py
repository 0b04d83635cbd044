"""Fixtures of the review tests: one multi-day episode made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from review_testkit import make_log

from pca.review.sample_episode import episode_toml

# Two days hold every kind of event the sample has (occlusion, wrong PIN, reprogramming, the
# dose limit, loading and clinician doses, low battery, restart); the 7 days are the benchmark's.
TEST_DAYS = 2


@pytest.fixture(scope="session")
def episode_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_log(tmp_path_factory.mktemp("episode"), episode_toml(TEST_DAYS), "episode")
