"""S3Storage against a real S3-compatible server (SeaweedFS): streaming multipart uploads with a size limit,
round trips, deletes that destroy every version, listing, and readiness that names what is wrong."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from shared.storage import ObjectTooLarge, make_storage
from shared.storage_s3 import (
    BucketMissing,
    S3Storage,
    StorageAccessDenied,
    StorageUnreachable,
    s3_client,
    s3_storage,
)
from tests.integration.s3.conftest import s3_settings_for
from tests.support.seaweedfs import S3Endpoint, all_versions
from tests.support.services import free_port

pytestmark = pytest.mark.integration

PART = 5 * 1024 * 1024  # the smallest part S3 allows


class Source(io.RawIOBase):
    """Hands out `data` in reads of at most `step` bytes, like a socket; raises once `fail_after` is passed."""

    def __init__(self, data: bytes, step: int = 1024 * 1024, fail_after: int | None = None) -> None:
        self._data, self._pos, self._step, self._fail_after = data, 0, step, fail_after
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._fail_after is not None and self._pos >= self._fail_after:
            raise ConnectionResetError("client went away")
        n = self._step if size < 0 else min(size, self._step)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


def storage_on(s3: S3Endpoint, bucket: str) -> S3Storage:
    return S3Storage(s3.client(), bucket, part_size=PART)


def pending_uploads(s3: S3Endpoint, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def test_round_trip_small_object(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage = storage_on(s3, versioned_bucket)
    data = bytes(range(256)) * 40
    stored = storage.put_stream("inputs/j1/original", Source(data, step=1000))  # type: ignore[arg-type]
    assert (stored.size, stored.sha256, stored.head) == (len(data), hashlib.sha256(data).hexdigest(), data[:64])
    assert storage.exists("inputs/j1/original") and not storage.exists("inputs/j1/other")
    with storage.open("inputs/j1/original") as body:
        assert body.read() == data
    with storage.local_file("inputs/j1/original") as path:
        assert path.read_bytes() == data
        kept = path
    assert not kept.exists() and not kept.parent.exists()  # the temporary copy is gone afterwards


def test_multipart_upload_streams_in_parts(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage = storage_on(s3, versioned_bucket)
    data = os.urandom(2 * PART + 12345)
    stored = storage.put_stream("outputs/j1/a.jpg", Source(data))  # type: ignore[arg-type]
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    head = s3.client().head_object(Bucket=versioned_bucket, Key="outputs/j1/a.jpg")
    assert head["ContentLength"] == len(data)
    assert head["ETag"].strip('"').endswith("-3")  # three parts: it was a multipart upload
    with storage.open("outputs/j1/a.jpg") as body:
        assert hashlib.sha256(body.read()).hexdigest() == stored.sha256
    assert pending_uploads(s3, versioned_bucket) == []


@pytest.mark.parametrize("size", [PART // 2, 3 * PART], ids=["within-one-part", "after-two-parts"])
def test_upload_over_the_limit_leaves_nothing(s3: S3Endpoint, versioned_bucket: str, size: int) -> None:
    storage = storage_on(s3, versioned_bucket)
    limit = size - 1
    source = Source(os.urandom(size))
    with pytest.raises(ObjectTooLarge) as refused:
        storage.put_stream("inputs/big/original", source, max_bytes=limit)  # type: ignore[arg-type]
    assert refused.value.limit == limit
    assert not storage.exists("inputs/big/original")
    assert all_versions(s3.client(), versioned_bucket) == []
    assert pending_uploads(s3, versioned_bucket) == []  # the multipart upload was aborted


def test_upload_that_fails_midway_is_aborted(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage = storage_on(s3, versioned_bucket)
    source = Source(os.urandom(3 * PART), fail_after=2 * PART + 1)
    with pytest.raises(ConnectionResetError):
        storage.put_stream("inputs/cut/original", source)  # type: ignore[arg-type]
    assert all_versions(s3.client(), versioned_bucket) == []
    assert pending_uploads(s3, versioned_bucket) == []


def test_put_file_and_limit_exactly_met(s3: S3Endpoint, versioned_bucket: str, tmp_path: Path) -> None:
    storage = storage_on(s3, versioned_bucket)
    path = tmp_path / "out.png"
    path.write_bytes(os.urandom(PART + 7))
    storage.put_file("outputs/j2/x.png", path)
    with storage.local_file("outputs/j2/x.png") as copy:
        assert copy.read_bytes() == path.read_bytes()
    exact = storage.put_stream("inputs/j2/original", Source(b"12345"), max_bytes=5)  # type: ignore[arg-type]
    assert exact.size == 5


def test_missing_object_reads_as_file_not_found(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage = storage_on(s3, versioned_bucket)
    with pytest.raises(FileNotFoundError):
        storage.open("outputs/none/x.jpg")
    with pytest.raises(FileNotFoundError), storage.local_file("outputs/none/x.jpg"):
        pass
    assert storage.delete("outputs/none/x.jpg") is False


def test_delete_removes_every_version_and_delete_marker(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage, client = storage_on(s3, versioned_bucket), s3.client()
    key = "inputs/j3/original"
    for body in (b"first", b"second", b"third"):
        storage.put_stream(key, io.BytesIO(body))
    client.delete_object(Bucket=versioned_bucket, Key=key)  # a plain DELETE: a marker, the data stays
    storage.put_stream(key + "-sibling", io.BytesIO(b"not mine"))  # shares the key as a prefix
    assert len(all_versions(client, versioned_bucket, key)) == 5  # 3 versions + marker + the sibling

    assert storage.delete(key) is True
    assert all_versions(client, versioned_bucket, key) == [(key + "-sibling", all_versions(
        client, versioned_bucket, key + "-sibling")[0][1])]
    assert storage.delete(key) is False


def test_delete_in_an_unversioned_bucket(s3: S3Endpoint, plain_bucket: str) -> None:
    storage = storage_on(s3, plain_bucket)
    storage.put_stream("outputs/j4/a.jpg", io.BytesIO(b"x"))
    assert storage.delete("outputs/j4/a.jpg") is True
    assert all_versions(s3.client(), plain_bucket) == []
    assert not storage.exists("outputs/j4/a.jpg")


def test_list_by_prefix_is_a_folder_and_finds_hidden_versions(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage, client = storage_on(s3, versioned_bucket), s3.client()
    for key in ("outputs/a/1.jpg", "outputs/a/2.jpg", "outputs/ab/1.jpg", "inputs/a/original"):
        storage.put_stream(key, io.BytesIO(b"x"))
    storage.put_stream("outputs/a/2.jpg", io.BytesIO(b"second version"))
    assert list(storage.list("outputs/a")) == ["outputs/a/1.jpg", "outputs/a/2.jpg"]
    assert list(storage.list("outputs/a/")) == ["outputs/a/1.jpg", "outputs/a/2.jpg"]
    assert list(storage.list("")) == ["inputs/a/original", "outputs/a/1.jpg", "outputs/a/2.jpg", "outputs/ab/1.jpg"]

    # Hidden by a plain DELETE, the data is still there: an erasure must still find it.
    client.delete_object(Bucket=versioned_bucket, Key="outputs/a/1.jpg")
    assert not storage.exists("outputs/a/1.jpg")
    assert list(storage.list("outputs/a")) == ["outputs/a/1.jpg", "outputs/a/2.jpg"]
    assert all(storage.delete(key) for key in storage.list("outputs/a"))
    assert list(storage.list("outputs/a")) == [] and all_versions(client, versioned_bucket, "outputs/a/") == []


def test_parts_of_an_unfinished_upload_are_listed_and_deleted(s3: S3Endpoint, versioned_bucket: str) -> None:
    # What a writer killed mid-upload leaves: parts but no object. They hold data, so they must be erasable.
    storage, client = storage_on(s3, versioned_bucket), s3.client()
    key = "outputs/killed/a.jpg"
    upload = client.create_multipart_upload(Bucket=versioned_bucket, Key=key)["UploadId"]
    client.upload_part(Bucket=versioned_bucket, Key=key, UploadId=upload, PartNumber=1, Body=os.urandom(PART))
    assert not storage.exists(key)
    assert list(storage.list("outputs/killed")) == [key]
    assert storage.delete(key) is True
    assert pending_uploads(s3, versioned_bucket) == [] and list(storage.list("outputs/killed")) == []


def test_list_pages_through_many_keys(s3: S3Endpoint, versioned_bucket: str) -> None:
    storage, client = storage_on(s3, versioned_bucket), s3.client()
    keys = [f"outputs/many/{i:04d}.jpg" for i in range(1100)]  # more than one page of 1000
    for key in keys:
        client.put_object(Bucket=versioned_bucket, Key=key, Body=b"x")
    assert list(storage.list("outputs/many")) == keys


@pytest.mark.parametrize("bad_key", ["/etc/passwd", "inputs/../secrets", "inputs/j/", ""])
def test_keys_outside_the_layout_are_refused(s3: S3Endpoint, versioned_bucket: str, bad_key: str) -> None:
    storage = storage_on(s3, versioned_bucket)
    with pytest.raises(ValueError):
        storage.put_stream(bad_key, io.BytesIO(b"x"))
    with pytest.raises(ValueError):
        storage.delete(bad_key)


def test_make_storage_builds_s3_from_settings(s3: S3Endpoint, versioned_bucket: str, settings: Settings) -> None:
    s3s = s3_settings_for(settings, s3, versioned_bucket)
    storage = make_storage(s3s)
    assert isinstance(storage, S3Storage)
    storage.check()
    storage.put_stream("inputs/s/original", io.BytesIO(b"via settings"))
    assert s3.client().get_object(Bucket=versioned_bucket, Key="inputs/s/original")["Body"].read() == b"via settings"
    assert "veil-test" not in repr(s3s) and s3.secret_key not in repr(s3s)  # SecretStr hides the credentials


def test_check_names_a_missing_bucket(s3: S3Endpoint, settings: Settings) -> None:
    with pytest.raises(BucketMissing):
        s3_storage(s3_settings_for(settings, s3, "veil-no-such-bucket")).check()


def test_check_names_an_unreachable_endpoint(s3: S3Endpoint, settings: Settings) -> None:
    nowhere = s3_settings_for(settings, s3, "veil-any", s3_endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(StorageUnreachable):
        s3_storage(nowhere).check()


def test_check_names_refused_credentials(s3: S3Endpoint, versioned_bucket: str, settings: Settings) -> None:
    wrong = s3_settings_for(settings, s3, versioned_bucket, s3_secret_access_key="not-the-secret")
    with pytest.raises(StorageAccessDenied):
        s3_storage(wrong).check()
    # And a request the client signs with them is refused by the server, not silently accepted.
    with pytest.raises(Exception, match="SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
        s3_client(wrong, attempts=1).put_object(Bucket=versioned_bucket, Key="x", Body=b"x")


def test_readiness_reports_the_missing_bucket(s3: S3Endpoint, settings: Settings) -> None:
    with TestClient(create_app(s3_settings_for(settings, s3, "veil-no-such-bucket"))) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "error: BucketMissing"
