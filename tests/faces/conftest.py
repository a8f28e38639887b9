"""Fixtures for the faces tests: one dlib engine per session and small composited videos (face_synth)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import face_synth  # noqa: E402


@pytest.fixture(scope="session")
def dlib_engine():
    from adpipeline.faces.engine import DlibEngine

    return DlibEngine()


@pytest.fixture(scope="session")
def hog_engine():
    """The dlib engine with its former detector, HOG (``face_detector=hog``)."""
    from adpipeline.faces.engine import DlibEngine

    return DlibEngine(detector="hog")


@pytest.fixture
def face_settings():
    """Settings for the faces stage, independent of the environment."""
    from adpipeline.settings import Settings

    def make(**values: object) -> Settings:
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]

    return make


@pytest.fixture(scope="session")
def synth():
    return face_synth


@pytest.fixture(scope="session")
def two_people_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[face_synth.Appearance]]:
    """6 s, 640x360: Obama throughout (moving), Grace Hopper for 3 s, then Biden in her place (a cut)."""
    apps = [
        face_synth.Appearance("obama", "obama/obama.jpg", 0, 6, (160, 180), (200, 170), 120),
        face_synth.Appearance("grace_hopper", "grace_hopper/grace_hopper.jpg", 0, 3, (460, 180), (460, 180), 110),
        face_synth.Appearance("biden", "biden/biden.jpg", 3, 6, (460, 180), (460, 180), 110),
    ]
    path = tmp_path_factory.mktemp("faces") / "two_people.mp4"
    face_synth.write_video(path, apps, 6.0, (640, 360), fps=10)
    return path, apps
