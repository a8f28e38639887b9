"""Under CI=true a missing locked dependency or browser fails the run; elsewhere it skips."""

from __future__ import annotations

import pytest

from tests.locked import locked_import, require_or_skip


def test_missing_locked_dependency_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="requirements/lock.txt"):
        locked_import("adpipeline_no_such_module")
    with pytest.raises(pytest.fail.Exception, match="no Chromium"):
        require_or_skip(False, "no Chromium found")
    require_or_skip(True, "never raised")
    assert locked_import("json").dumps([]) == "[]"


def test_missing_dependency_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        locked_import("adpipeline_no_such_module")
    with pytest.raises(pytest.skip.Exception):
        require_or_skip(False, "no Chromium found")
