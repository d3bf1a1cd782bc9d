"""Object storage: the protocol, local disk, and the choice between it and S3 (shared/storage_s3.py).

Keys are relative POSIX paths that Veil builds itself (never from a client's file name). A reader never sees
half an object: local writes land in a temporary file and are renamed into place; S3 objects appear whole.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from shared.settings import Settings, StorageBackend

CHUNK = 1024 * 1024


class ObjectTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"object exceeds {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    head: bytes  # the first bytes, for sniffing the type by content


class Storage(Protocol):
    def put_stream(self, key: str, source: BinaryIO, *, max_bytes: int | None = None) -> StoredObject: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def local_file(self, key: str) -> AbstractContextManager[Path]:
        """The object as a file on this machine for the `with` block (read it, never write it); a backend
        that keeps objects elsewhere downloads a temporary copy and deletes it afterwards."""
        ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool:
        """Remove the object for good (with every stored version); False if there was none."""
        ...
    def list(self, prefix: str) -> Iterator[str]:
        """Keys under the folder `prefix`, including any that only older versions still hold."""
        ...
    def check(self) -> None: ...


class StreamTally:
    """Reads a stream in chunks while counting, hashing and keeping its head, and refuses it past `max_bytes`
    as soon as the limit is crossed, so no backend ever holds or writes more than the limit."""

    HEAD_BYTES = 64

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""
        self._digest = hashlib.sha256()

    def chunks(self, source: BinaryIO) -> Iterator[bytes]:
        while chunk := source.read(CHUNK):
            self.size += len(chunk)
            if self.max_bytes is not None and self.size > self.max_bytes:
                raise ObjectTooLarge(self.max_bytes)
            if len(self.head) < self.HEAD_BYTES:
                self.head += chunk[: self.HEAD_BYTES - len(self.head)]
            self._digest.update(chunk)
            yield chunk

    def stored(self, key: str) -> StoredObject:
        return StoredObject(key=key, size=self.size, sha256=self._digest.hexdigest(), head=self.head)


def _validate_key(key: str) -> PurePosixPath:
    path = PurePosixPath(key)
    if path.is_absolute() or ".." in path.parts or not path.parts or key.endswith("/"):
        raise ValueError("invalid storage key")
    return path


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._tmp = self.root / ".tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_validate_key(key).parts)

    def _temp(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    def _commit(self, temp: Path, key: str) -> None:
        final = self._path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)

    def put_stream(self, key: str, source: BinaryIO, *, max_bytes: int | None = None) -> StoredObject:
        temp, tally = self._temp(), StreamTally(max_bytes)
        try:
            with temp.open("wb") as out:
                for chunk in tally.chunks(source):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            self._commit(temp, key)
        finally:
            temp.unlink(missing_ok=True)
        return tally.stored(key)

    def put_file(self, key: str, path: Path) -> None:
        temp = self._temp()
        try:
            shutil.copyfile(path, temp)
            self._commit(temp, key)
        finally:
            temp.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError("no such object")
        return path

    def local_file(self, key: str) -> AbstractContextManager[Path]:
        return nullcontext(self.local_path(key))

    def open(self, key: str) -> BinaryIO:
        return self.local_path(key).open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> bool:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Drop empty per-job folders so a listing shows what is really held.
        for parent in path.parents:
            if parent == self.root:
                break
            try:
                parent.rmdir()
            except OSError:
                break
        return True

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root.joinpath(*_validate_key(prefix.rstrip("/")).parts) if prefix.strip("/") else self.root
        if not base.exists():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and self._tmp not in path.parents:
                yield path.relative_to(self.root).as_posix()

    def check(self) -> None:
        probe = self._temp()
        probe.write_bytes(b"ok")
        probe.unlink()


def make_storage(settings: Settings) -> Storage:
    if settings.storage_backend is StorageBackend.s3:
        from shared.storage_s3 import s3_storage  # boto3 is imported only by deployments that use it

        return s3_storage(settings)
    return LocalStorage(settings.resolved_storage_root)


def input_key(job_id: str) -> str:
    return f"inputs/{job_id}/original"


def output_key(job_id: str, attempt_token: str, extension: str) -> str:
    """`extension` includes its dot, e.g. ".jpg"."""
    # One key per attempt: two deliveries of one job never write the same object, and the
    # loser of the finalize compare-and-set deletes only its own.
    return f"outputs/{job_id}/{attempt_token}{extension}"
