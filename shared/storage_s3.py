"""Object storage in an S3 bucket (AWS S3, or a compatible store such as SeaweedFS, MinIO or Ceph).

Uploads stream through multipart uploads: at most one part is held in memory, and a refused or failed upload
is aborted, so no object and no stray parts remain. Deletes remove every version and delete marker of the
key: in a versioned bucket a plain DELETE only hides an object, and Veil's deletes (erasure, retention, the
original once its job is done) must destroy the data, as must the parts of an upload whose writer was killed.
Listing likewise shows keys that only older versions or such parts still hold, so an erasure finds and
verifies them too.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    EndpointConnectionError,
    NoCredentialsError,
)

from shared.settings import Settings
from shared.storage import StoredObject, StreamTally, _validate_key

log = logging.getLogger("veil.storage")

# S3 parts must be at least 5 MiB (all but the last). This is also the most an upload holds in memory.
PART_SIZE = 8 * 1024 * 1024
DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchVersion"}


class StorageNotReady(Exception):
    """The store cannot be used; the subclass's name is what readiness reports."""


class BucketMissing(StorageNotReady):
    pass


class StorageUnreachable(StorageNotReady):
    pass


class StorageAccessDenied(StorageNotReady):
    pass


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _not_found(exc: ClientError) -> bool:
    return _code(exc) in _NOT_FOUND


@contextmanager
def _missing_as_file_not_found() -> Iterator[None]:
    """S3's "no such key" as the FileNotFoundError the Storage protocol promises; other errors pass."""
    try:
        yield
    except ClientError as exc:
        if _not_found(exc):
            raise FileNotFoundError("no such object") from None
        raise


class S3Storage:
    def __init__(self, client: Any, bucket: str, *, probe_client: Any | None = None,
                 part_size: int = PART_SIZE) -> None:
        self._s3 = client
        self._probe = probe_client or client
        self.bucket = bucket
        self.part_size = part_size
        self._transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                        max_concurrency=4)

    def put_stream(self, key: str, source: BinaryIO, *, max_bytes: int | None = None) -> StoredObject:
        _validate_key(key)
        tally = StreamTally(max_bytes)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in tally.chunks(source):
                buffer += chunk
                while len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = self._s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer[:self.part_size])))
                    del buffer[:self.part_size]
            if upload_id is None:  # smaller than one part: one plain PUT
                self._s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
            else:
                if buffer:
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                self._s3.complete_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id,
                                                   MultipartUpload={"Parts": parts})
        except BaseException:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise
        return tally.stored(key)

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        answer = self._s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # the original error matters more; a bucket lifecycle rule sweeps the rest
            log.warning("multipart upload not aborted", extra={"error": type(exc).__name__})

    def put_file(self, key: str, path: Path) -> None:
        _validate_key(key)
        # boto3's managed transfer: multipart above one part, aborted by it on failure.
        self._s3.upload_file(str(path), self.bucket, key, Config=self._transfer)

    @contextmanager
    def local_file(self, key: str) -> Iterator[Path]:
        _validate_key(key)
        with tempfile.TemporaryDirectory(prefix="veil-s3-") as tmp:
            path = Path(tmp) / "object"
            with _missing_as_file_not_found():
                self._s3.download_file(self.bucket, key, str(path), Config=self._transfer)
            yield path

    def open(self, key: str) -> BinaryIO:
        _validate_key(key)
        with _missing_as_file_not_found():
            body: BinaryIO = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        return body

    def exists(self, key: str) -> bool:
        _validate_key(key)
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _not_found(exc):
                return False
            raise
        return True

    def delete(self, key: str) -> bool:
        _validate_key(key)
        held, doomed = False, []
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for version in page.get("Versions", []):
                if version["Key"] == key:  # the prefix also matches longer keys
                    held = True
                    doomed.append({"Key": key, "VersionId": version["VersionId"]})
            doomed += [{"Key": key, "VersionId": marker["VersionId"]}
                       for marker in page.get("DeleteMarkers", []) if marker["Key"] == key]
        for start in range(0, len(doomed), DELETE_BATCH):
            answer = self._s3.delete_objects(Bucket=self.bucket,
                                             Delete={"Objects": doomed[start:start + DELETE_BATCH], "Quiet": True})
            if answer.get("Errors"):
                codes = sorted({str(e.get("Code")) for e in answer["Errors"]})
                raise OSError(f"{len(answer['Errors'])} object versions not deleted: {', '.join(codes)}")
        # Parts of an upload whose writer was killed hold the data too, until aborted.
        for upload_key, upload_id in self._pending_uploads(key):
            if upload_key == key:
                held = True
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        return held

    def list(self, prefix: str) -> Iterator[str]:
        folder = prefix.strip("/")
        if folder:
            _validate_key(folder)
        below = f"{folder}/" if folder else ""
        keys: set[str] = set()
        for page in self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=below):
            # Any version counts, so a key whose only versions are old ones is listed too.
            keys.update(version["Key"] for version in page.get("Versions", []))
        keys.update(key for key, _ in self._pending_uploads(below))
        yield from sorted(keys)

    def _pending_uploads(self, prefix: str) -> Iterator[tuple[str, str]]:
        for page in self._s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                yield upload["Key"], upload["UploadId"]

    def check(self) -> None:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _code(exc)
            if code in ("404", "NoSuchBucket"):
                raise BucketMissing(f"bucket {self.bucket} does not exist") from None
            if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise StorageAccessDenied(f"access to bucket {self.bucket} is denied") from None
            raise
        except NoCredentialsError:
            raise StorageAccessDenied("no S3 credentials configured or found") from None
        except (EndpointConnectionError, ConnectionError) as exc:
            raise StorageUnreachable(f"S3 endpoint unreachable ({type(exc).__name__})") from None
        except BotoCoreError as exc:
            raise StorageUnreachable(f"S3 endpoint not answering ({type(exc).__name__})") from None


def s3_client(settings: Settings, *, connect_timeout: float = 5, read_timeout: float = 60, attempts: int = 3) -> Any:
    key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
    config = Config(
        s3={"addressing_style": settings.s3_addressing_style},
        connect_timeout=connect_timeout, read_timeout=read_timeout,
        retries={"max_attempts": attempts, "mode": "standard"},
        # botocore >= 1.36 adds CRC checksums to every upload by default, which several S3-compatible
        # stores refuse; send them only where the API requires one.
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    # A session of its own: boto3's default session is shared module state and not thread-safe.
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
        aws_access_key_id=key_id.get_secret_value() if key_id else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=config,
    )


def s3_storage(settings: Settings) -> S3Storage:
    assert settings.s3_bucket is not None  # Settings refuses the s3 backend without a bucket
    # Readiness gets a client that fails fast: a probe waiting out retries would outlast the prober.
    probe = s3_client(settings, connect_timeout=2, read_timeout=5, attempts=1)
    return S3Storage(s3_client(settings), settings.s3_bucket, probe_client=probe)
