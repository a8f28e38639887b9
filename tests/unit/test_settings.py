"""Settings: .env.sample and docs/settings.md list every setting (and nothing else), each field in one domain, the
ADP_ names kept; bad settings fail clearly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from adpipeline.settings import DOMAINS, ENV_PREFIX, Settings, get_settings
from adpipeline.settings.base import Domain

ENV_SAMPLE = Path(__file__).resolve().parents[2] / ".env.sample"
KEPT_NAMES = Path(__file__).with_name("settings_env_names.txt")


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


def test_settings_page_is_generated_from_settings() -> None:
    from adpipeline.settings import reference

    assert reference.PAGE.read_text() == reference.render_docs(), "run: .venv/bin/python scripts/gen_env_sample.py"


def test_settings_page_lists_every_setting_under_its_domain() -> None:
    from adpipeline.settings import reference

    sections = reference.render_docs().split("\n## ")[1:]
    assert [section.splitlines()[0] for section in sections] == [domain.title for domain in DOMAINS]
    for domain, section in zip(DOMAINS, sections, strict=True):
        rows = re.findall(rf"^\| `({ENV_PREFIX}[A-Z0-9_]+)` \|", section, flags=re.MULTILINE)
        assert rows == [f"{ENV_PREFIX}{name}".upper() for name in domain.model_fields]


def test_every_field_belongs_to_exactly_one_domain() -> None:
    owners: dict[str, list[str]] = {}
    for domain in DOMAINS:
        for name in domain.model_fields:
            owners.setdefault(name, []).append(domain.__name__)
    assert {name: where for name, where in owners.items() if len(where) > 1} == {}
    assert set(owners) == set(Settings.model_fields), "Settings declares a field outside the domain classes"
    composed = [cls for cls in Settings.__mro__[1:] if issubclass(cls, Domain) and cls is not Domain]
    assert composed[::-1] == list(DOMAINS), "Settings' bases must be DOMAINS in reverse (fields then run in order)"
    assert list(Settings.model_fields) == [name for domain in DOMAINS for name in domain.model_fields]


def test_domain_fields_read_as_settings_attributes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every domain's fields come from ADP_ variables and read flat on Settings, whatever the domain."""
    monkeypatch.setenv("ADP_OCR_THREADS", "3")
    monkeypatch.setenv("ADP_FACE_DETECTOR", "hog")
    monkeypatch.setenv("ADP_SOURCE_CLICKS_COLUMN", "taps")
    monkeypatch.setenv("ADP_FETCH_ALLOWLIST", '["10.0.0.0/8"]')
    s = Settings()
    assert (s.ocr_threads, s.face_detector, s.source_clicks_column, s.fetch_allowlist) == (
        3,
        "hog",
        "taps",
        ["10.0.0.0/8"],
    )
    get_settings.cache_clear()
    try:
        assert get_settings().ocr_threads == 3 and get_settings() is get_settings()
    finally:
        get_settings.cache_clear()


def test_adp_names_are_kept() -> None:
    """Renaming a setting breaks operators' .env files (an old name is rejected as unknown): only on purpose."""
    kept = [line for line in KEPT_NAMES.read_text().splitlines() if line and not line.startswith("#")]
    names = {f"{ENV_PREFIX}{name}".upper() for name in Settings.model_fields}
    assert sorted(set(kept) - names) == [], f"no longer a setting; if meant, remove from {KEPT_NAMES.name}"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ADP_FEATURE_PROVIDER": "gemini"}, "needs ADP_GEMINI_API_KEY"),
        ({"ADP_FEATURE_PROVIDER": "langchain"}, "needs ADP_LANGCHAIN_MODEL"),
        ({"ADP_FACE_BACKEND": "insightface"}, "needs ADP_INSIGHTFACE_MODEL_DIR"),
        ({"ADP_BQ_DATASET": "my-dataset"}, "bq_dataset may hold only"),
    ],
)
def test_domain_checks_run_on_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_derived_paths_span_domains(tmp_path: Path) -> None:
    s = Settings(_env_file=None, home=tmp_path)
    assert s.resolved_duckdb_path == tmp_path / "warehouse.duckdb"
    assert s.resolved_bucket_url == str((tmp_path / "bucket").resolve())
    assert s.resolved_local_media_roots == [(tmp_path / "sample").resolve()]


def test_domain_readme_settings_tables_name_real_settings() -> None:
    """The hand-written settings tables of the domain READMEs (units, backend defaults) name settings that exist."""
    root = ENV_SAMPLE.parent
    named: dict[str, list[str]] = {}
    for readme in sorted(root.glob("adpipeline/*/README.md")):
        for section in re.split(r"^#+ ", readme.read_text(), flags=re.MULTILINE):
            if section.startswith("Settings"):
                rows = re.findall(r"^\| `([a-z0-9_]+)` \|", section, flags=re.MULTILINE)
                named[str(readme.relative_to(root))] = rows
    assert len(named) >= 3 and all(named.values()), named
    unknown = {path: [n for n in rows if n not in Settings.model_fields] for path, rows in named.items()}
    assert {path: rows for path, rows in unknown.items() if rows} == {}
