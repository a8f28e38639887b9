"""A features task killed after paid answers and before it wrote their ledger rows: the next task writes them from
the journal in the bucket, so the ledger equals the stub's bill and nothing is paid twice (the answers are cached)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adpipeline.stages import features
from adpipeline.stages.context import StageContext
from adpipeline.testing import GeminiStub
from adpipeline.window import Window
from tests.features.test_model_providers import DAY, N_IMAGES, build_home, gemini_settings, run, table
from tests.features.test_model_providers import video_bytes as video_bytes  # the module fixture


class Killed(BaseException):
    """Stands in for kill -9 at the flush: nothing after it runs, nothing catches it."""


@pytest.fixture()
def gemini() -> Any:
    with GeminiStub() as stub:
        yield stub


def test_a_task_killed_before_its_flush_loses_no_ledger_row(
    gemini: GeminiStub, video_bytes: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini, genai_concurrency=1))

    def killed(self: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(features._Writer, "flush", killed)
        with pytest.raises(Killed):
            run(settings, features.images, "run1")
    paid = gemini.count("generate")
    assert paid == N_IMAGES  # every image answered and paid for ...
    assert table(settings, "genai_usage") == [] and table(settings, "image_features") == []  # ... nothing written
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        assert len(list(ctx.bucket.list(features.LEDGER_JOURNAL))) == N_IMAGES

    retry = run(settings, features.images, "run1")  # the retry of the same run
    assert retry["ledger_rows_recovered"] == N_IMAGES and retry["cached"] == N_IMAGES
    assert gemini.count("generate") == paid  # nothing paid twice
    usage = table(settings, "genai_usage")
    assert len(usage) == N_IMAGES and len({u["call_id"] for u in usage}) == N_IMAGES
    assert all(u["cost_usd"] > 0 and u["run_id"] == "run1" for u in usage)
    assert {r["status"] for r in table(settings, "image_features")} == {"ok"}
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        assert list(ctx.bucket.list(features.LEDGER_JOURNAL)) == []  # the journal is emptied
    assert run(settings, features.images, "run2")["ledger_rows_recovered"] == 0


def test_a_flush_empties_the_journal(gemini: GeminiStub, video_bytes: bytes, tmp_path: Path) -> None:
    settings = build_home(tmp_path, video_bytes, **gemini_settings(gemini))
    assert run(settings, features.images)["statuses"] == {"ok": N_IMAGES}
    assert len(table(settings, "genai_usage")) == N_IMAGES
    with StageContext(settings, Window(DAY, DAY)) as ctx:
        assert list(ctx.bucket.list(features.LEDGER_JOURNAL)) == []
