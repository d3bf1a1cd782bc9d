"""S3 fixtures: a throwaway SeaweedFS for the session, buckets, and the service pointed at it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.integration.conftest import WorkerProcess, start_worker
from tests.support.seaweedfs import S3Endpoint, empty_bucket, throwaway_seaweedfs


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    with throwaway_seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as endpoint:
        yield endpoint


@pytest.fixture
def versioned_bucket(s3: S3Endpoint) -> str:
    return s3.create_bucket(versioned=True)


@pytest.fixture
def plain_bucket(s3: S3Endpoint) -> str:
    return s3.create_bucket(versioned=False)


def own_redis_database(redis_url: str, number: int) -> str:
    """The same Redis, another database: the suite's local-storage worker never sees these queues."""
    base, _, last = redis_url.rpartition("/")
    return f"{base}/{number}" if re.fullmatch(r"\d+", last) else f"{redis_url.rstrip('/')}/{number}"


def s3_settings_for(settings: Settings, s3: S3Endpoint, bucket: str, **overrides: object) -> Settings:
    assert settings.broker_url is not None
    fields = {**settings.model_dump(), **s3.settings_fields(bucket),
              "broker_url": own_redis_database(settings.broker_url, 7), **overrides}
    return Settings(**fields)


@pytest.fixture(scope="session")
def s3_bucket(s3: S3Endpoint) -> str:
    """The session's versioned bucket for the service under test."""
    return s3.create_bucket(versioned=True)


@pytest.fixture(scope="session")
def s3_settings(settings: Settings, s3: S3Endpoint, s3_bucket: str) -> Settings:
    return s3_settings_for(settings, s3, s3_bucket, erasure_grace_seconds=0)


@pytest.fixture
def clean_bucket(s3: S3Endpoint, s3_bucket: str) -> str:
    empty_bucket(s3.client(), s3_bucket)
    return s3_bucket


@pytest.fixture(scope="session")
def s3_worker(s3_settings: Settings, s3: S3Endpoint, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[WorkerProcess]:
    log: Path = tmp_path_factory.mktemp("s3-worker") / "worker.log"
    worker = start_worker(s3_settings, log, queues="images,videos,maintenance,gdpr", extra_env=s3.env())
    yield worker
    worker.stop()


@pytest.fixture(scope="session")
def s3_client(s3_settings: Settings, api_key: str) -> Iterator[TestClient]:
    with TestClient(create_app(s3_settings), headers={"Authorization": f"Bearer {api_key}"}) as client:
        yield client
