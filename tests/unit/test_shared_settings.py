"""shared/settings.py: environment prefix, URL normalisation, refusals, resolved defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import Environment, Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("VEIL_"):
            monkeypatch.delenv(name)


def test_reads_veil_prefixed_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VEIL_API_PORT", "9123")
    monkeypatch.setenv("VEIL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("VEIL_MAX_ATTEMPTS", "7")
    monkeypatch.setenv("VEIL_BROKER_URL", "redis://broker:6379/0")
    settings = Settings()
    assert settings.api_port == 9123
    assert settings.data_dir == tmp_path
    assert settings.max_attempts == 7
    assert settings.broker_url == "redis://broker:6379/0"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_PORT", "9999")
    assert Settings().api_port == 8000


def test_invalid_env_value_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_JPEG_QUALITY", "101")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db:5432/veil", "postgresql+psycopg://u:p@db:5432/veil"),
        ("postgresql://u:p@db/veil?sslmode=require", "postgresql+psycopg://u:p@db/veil?sslmode=require"),
        ("postgresql+psycopg://u@db/veil", "postgresql+psycopg://u@db/veil"),
        ("sqlite:////tmp/veil.db", "sqlite:////tmp/veil.db"),
    ],
)
def test_database_url_scheme_normalised(given: str, expected: str) -> None:
    assert Settings(database_url=given).database_url == expected
    assert Settings(database_url=given).resolved_database_url == expected


def test_database_url_from_env_is_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_DATABASE_URL", "postgres://u:p@db/veil")
    assert Settings().database_url == "postgresql+psycopg://u:p@db/veil"


def test_production_with_default_subject_key_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="VEIL_SUBJECT_KEY"):
        Settings()


def test_production_with_real_subject_key_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_ENVIRONMENT", "production")
    monkeypatch.setenv("VEIL_SUBJECT_KEY", "a-real-secret")
    settings = Settings()
    assert settings.environment is Environment.production
    assert settings.subject_key == "a-real-secret"


def test_development_with_default_subject_key_accepted() -> None:
    assert Settings().subject_key.startswith("development-only")


def test_visibility_timeout_below_twice_task_limit_refused() -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings(task_time_limit_seconds=600, visibility_timeout_seconds=1199)


def test_visibility_timeout_from_env_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_TASK_TIME_LIMIT_SECONDS", "100")
    monkeypatch.setenv("VEIL_VISIBILITY_TIMEOUT_SECONDS", "150")
    with pytest.raises(ValidationError):
        Settings()


def test_visibility_timeout_must_exceed_twice_the_task_limit() -> None:
    with pytest.raises(ValidationError, match="VISIBILITY_TIMEOUT"):
        Settings(task_time_limit_seconds=600, visibility_timeout_seconds=1200)
    assert Settings(task_time_limit_seconds=600, visibility_timeout_seconds=1201).visibility_timeout_seconds == 1201


def test_resolved_defaults_live_under_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{(tmp_path / 'veil.db').resolve()}"
    assert settings.resolved_broker_url == "filesystem://"
    assert settings.uses_embedded_broker is True
    assert settings.resolved_storage_root == (tmp_path / "storage").resolve()
    assert settings.broker_folder == (tmp_path / "broker").resolve()


def test_relative_data_dir_resolves_to_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings(data_dir=Path("rel"))
    assert settings.resolved_storage_root == tmp_path.resolve() / "rel" / "storage"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'rel' / 'veil.db'}"


def test_explicit_values_override_resolved_defaults(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite:////elsewhere.db",
                        broker_url="redis://r:6379/0", storage_root=tmp_path / "objects")
    assert settings.resolved_database_url == "sqlite:////elsewhere.db"
    assert settings.resolved_broker_url == "redis://r:6379/0"
    assert settings.uses_embedded_broker is False
    assert settings.resolved_storage_root == (tmp_path / "objects").resolve()
