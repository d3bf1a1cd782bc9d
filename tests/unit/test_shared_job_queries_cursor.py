"""shared/job_queries.py: the opaque keyset cursor."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.job_queries import _encode_cursor, decode_cursor
from shared.tables import Job


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_round_trip_of_an_issued_cursor() -> None:
    job_id = uuid.uuid4()
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    job = Job(id=job_id, tenant_id="t", kind="image", input_key="k", created_at=created)
    cursor = _encode_cursor(job)
    assert "=" not in cursor
    assert decode_cursor(cursor) == (created, job_id)


GARBAGE = {
    "not_base64": "!!!not*base64@@",
    "empty": "",
    "b64_of_non_json": b64(b"hello there"),
    "b64_of_json_object": b64(json.dumps({"a": 1}).encode()),
    "b64_of_json_string": b64(json.dumps("2024-01-01T00:00:00+00:00").encode()),
    "b64_of_one_item": b64(json.dumps(["2024-01-01T00:00:00+00:00"]).encode()),
    "b64_of_three_items": b64(json.dumps(["2024-01-01T00:00:00+00:00", str(uuid.uuid4()), 1]).encode()),
    "b64_of_numbers": b64(json.dumps([1, 2]).encode()),
    "bad_date": b64(json.dumps(["yesterday", str(uuid.uuid4())]).encode()),
    "bad_uuid": b64(json.dumps(["2024-01-01T00:00:00+00:00", "not-a-uuid"]).encode()),
    "null_uuid": b64(json.dumps(["2024-01-01T00:00:00+00:00", None]).encode()),
    "not_utf8": b64(b"\xff\xfe\xfd"),
}


@pytest.mark.parametrize("cursor", list(GARBAGE.values()), ids=list(GARBAGE))
def test_garbage_cursor_raises_value_error(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        decode_cursor(cursor)


def test_cursor_with_naive_timestamp_is_refused() -> None:
    cursor = b64(json.dumps(["2024-01-01T00:00:00", str(uuid.uuid4())]).encode())
    with pytest.raises(ValueError):
        decode_cursor(cursor)
