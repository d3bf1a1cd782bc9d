"""A stored object as an HTTP download: served from the file on local disk, streamed from any other store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi import Response
from fastapi.responses import FileResponse, StreamingResponse

from shared.storage import CHUNK, LocalStorage, Storage


def object_response(storage: Storage, key: str, *, media_type: str, filename: str) -> Response:
    """Raises FileNotFoundError when the object is gone. `filename` is Veil's own (ids), never a client's."""
    if isinstance(storage, LocalStorage):
        # A file on disk: Starlette sends it with its length, sendfile and range support.
        return FileResponse(storage.local_path(key), media_type=media_type, filename=filename)
    body = storage.open(key)  # opened now, so a missing object is an error before the 200 goes out
    return StreamingResponse(_chunks(body), media_type=media_type,
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _chunks(body: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := body.read(CHUNK):
            yield chunk
    finally:
        body.close()
