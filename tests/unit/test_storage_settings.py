"""Choosing the object store from settings, and the S3 settings' own checks (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import Settings, StorageBackend
from shared.storage import LocalStorage, make_storage


def test_local_disk_is_the_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.storage_backend is StorageBackend.local
    storage = make_storage(settings)
    assert isinstance(storage, LocalStorage) and storage.root == (tmp_path / "storage").resolve()


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(ValidationError, match="VEIL_S3_BUCKET"):
        Settings(storage_backend="s3")


def test_credentials_come_in_pairs() -> None:
    with pytest.raises(ValidationError, match="VEIL_S3_SECRET_ACCESS_KEY"):
        Settings(storage_backend="s3", s3_bucket="veil", s3_access_key_id="AKIAEXAMPLE")


def test_addressing_style_is_checked() -> None:
    with pytest.raises(ValidationError):
        Settings(s3_addressing_style="sideways")


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("VEIL_S3_BUCKET", "veil")
    monkeypatch.setenv("VEIL_S3_ACCESS_KEY_ID", "AKIA-VISIBLE-NOWHERE")
    monkeypatch.setenv("VEIL_S3_SECRET_ACCESS_KEY", "very-secret-value")
    settings = Settings()
    assert settings.s3_secret_access_key is not None
    assert settings.s3_secret_access_key.get_secret_value() == "very-secret-value"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "very-secret-value" not in shown and "AKIA-VISIBLE-NOWHERE" not in shown


def test_s3_storage_is_built_without_contacting_the_store() -> None:
    # Building clients makes no request, so a worker or API starts even while the store is down (readiness says so).
    settings = Settings(storage_backend="s3", s3_bucket="veil", s3_endpoint_url="http://127.0.0.1:9",
                        s3_access_key_id="a", s3_secret_access_key="b")
    storage = make_storage(settings)
    assert type(storage).__name__ == "S3Storage" and storage.bucket == "veil"  # type: ignore[attr-defined]
