"""Guards for what the lock and CI provide: a skip on a developer's machine, a failure under ``CI=true``.

A locked dependency (``requirements/lock.txt``) or the Chromium that ``scripts/test.sh`` installs missing in CI means
the set-up is broken; skipping there would let the run go green without the tests that need it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """``CI=true`` (what GitHub Actions, GitLab and most CI services set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def locked_import(name: str) -> ModuleType:
    """Import a dependency the lock installs: skip the test without it, except under CI, where it fails."""
    if in_ci():
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            pytest.fail(f"{name} is in requirements/lock.txt but cannot be imported under CI: {exc}")
    return pytest.importorskip(name)


def require_or_skip(found: bool, reason: str) -> None:
    """Skip when ``found`` is false, except under CI, where it fails with ``reason``."""
    if found:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing requirement fails instead of skipping)")
    pytest.skip(reason)
