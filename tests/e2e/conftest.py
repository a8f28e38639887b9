"""Fixtures for end-to-end runs on a small slice of the sample data."""

from __future__ import annotations

import pytest

from tests.e2e.support import START


@pytest.fixture(scope="session")
def small_sample(tmp_path_factory: pytest.TempPathFactory):
    from adpipeline.demo.sample import generate_sample

    return generate_sample(tmp_path_factory.mktemp("sample"), start=START, days=5, n_images=24, n_videos=4)
