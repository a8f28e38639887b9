"""Settings: .env.sample lists every setting (and nothing else); bad settings fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from adpipeline.settings import ENV_PREFIX, Settings

ENV_SAMPLE = Path(__file__).resolve().parents[2] / ".env.sample"


def _sample_keys() -> list[str]:
    keys = []
    for line in ENV_SAMPLE.read_text().splitlines():
        match = re.match(rf"^#?\s*({ENV_PREFIX}[A-Z0-9_]+)=", line)
        if match:
            keys.append(match.group(1))
    return keys


def test_env_sample_lists_every_setting_once() -> None:
    keys = _sample_keys()
    fields = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    assert len(keys) == len(set(keys)), "a setting is listed twice"
    assert set(keys) - fields == set(), "listed in .env.sample but not a setting"
    assert fields - set(keys) == set(), "a setting missing from .env.sample"


def test_env_sample_has_a_comment_per_setting() -> None:
    lines = ENV_SAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(rf"^#?\s*{ENV_PREFIX}[A-Z0-9_]+=", line):
            assert i > 0 and lines[i - 1].startswith("# ") and "=" not in lines[i - 1].split()[1], (
                f"{line!r} needs a comment line above it"
            )


def test_env_sample_values_are_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Uncommented values in .env.sample load as they are."""
    env = tmp_path / ".env"
    env.write_text(ENV_SAMPLE.read_text())
    settings = Settings(_env_file=env)
    assert settings.warehouse_backend == "duckdb"


def test_defaults_are_embedded() -> None:
    s = Settings()
    assert s.warehouse_backend == "duckdb" and s.feature_provider == "offline" and s.face_backend == "dlib"
    assert s.fetch_allowlist == [] and s.allow_local_paths is False


def test_unknown_setting_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADP_WAREHOUSE_BAKEND", "bigquery")
    with pytest.raises(ValidationError, match="unknown setting.*ADP_WAREHOUSE_BAKEND"):
        Settings()


def test_bad_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADP_FETCH_CONCURRENCY", "lots")
    with pytest.raises(ValidationError, match="fetch_concurrency"):
        Settings()


def test_bad_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADP_WAREHOUSE_BACKEND", "snowflake")
    with pytest.raises(ValidationError, match="warehouse_backend"):
        Settings()


def test_bigquery_needs_a_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADP_WAREHOUSE_BACKEND", "bigquery")
    with pytest.raises(ValidationError, match="ADP_BQ_PROJECT"):
        Settings()


def test_secret_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADP_GEMINI_API_KEY", "sk-very-secret")
    s = Settings()
    assert "sk-very-secret" not in repr(s) and "sk-very-secret" not in str(s.model_dump())
    assert s.gemini_api_key is not None and s.gemini_api_key.get_secret_value() == "sk-very-secret"


def test_env_sample_is_generated_from_settings() -> None:
    """Defaults and comments in .env.sample are the model's (regenerate with scripts/gen_env_sample.py)."""
    import runpy

    render = runpy.run_path(str(ENV_SAMPLE.parent / "scripts" / "gen_env_sample.py"))["render"]
    assert ENV_SAMPLE.read_text() == render(), "run: .venv/bin/python scripts/gen_env_sample.py"
