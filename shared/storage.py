"""Object storage. Local disk now; an S3 backend can implement the same protocol.

Keys are relative POSIX paths that Veil builds itself (never from a client's file name). Every write lands
in a temporary file first and is renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

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
    def local_path(self, key: str) -> Path: ...
    def open(self, key: str) -> BinaryIO: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> bool: ...
    def list(self, prefix: str) -> Iterator[str]: ...
    def check(self) -> None: ...


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
        temp, digest, size, head = self._temp(), hashlib.sha256(), 0, b""
        try:
            with temp.open("wb") as out:
                while chunk := source.read(CHUNK):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ObjectTooLarge(max_bytes)
                    if len(head) < 64:
                        head += chunk[: 64 - len(head)]
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            self._commit(temp, key)
        finally:
            temp.unlink(missing_ok=True)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest(), head=head)

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


def make_storage(root: Path) -> Storage:
    return LocalStorage(root)


def input_key(job_id: str) -> str:
    return f"inputs/{job_id}/original"


def output_key(job_id: str, attempt_token: str, extension: str) -> str:
    """`extension` includes its dot, e.g. ".jpg"."""
    # One key per attempt: two deliveries of one job never write the same object, and the
    # loser of the finalize compare-and-set deletes only its own.
    return f"outputs/{job_id}/{attempt_token}{extension}"
