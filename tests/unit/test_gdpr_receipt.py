"""shared/gdpr/receipt.py: a canonical, hashed receipt that holds no personal data."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from shared.gdpr.receipt import build_receipt, canonical_json, verify_receipt
from shared.tables import SubjectRequest

RECEIVED = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
PLACES = ("store:outputs", "table:job")


def request(**values: object) -> SubjectRequest:
    job = uuid.UUID("6d1f7f0e-0000-4000-8000-000000000001")
    base: dict[str, object] = dict(
        id=uuid.UUID("0c0ffee0-0000-4000-8000-000000000000"), tenant_id="acme", type="erasure",
        reference="TICKET-4711 Jane Doe", subject_ref_hashes=["a" * 64], job_ids=[str(job)],
        recorded_from=RECEIVED - timedelta(hours=2), received_at=RECEIVED, started_at=RECEIVED,
        due_at=datetime(2026, 4, 3, 9, 0, tzinfo=UTC), matched_job_ids=[str(job)])
    return SubjectRequest(**{**base, **values})


def receipt(req: SubjectRequest | None = None, now: datetime = RECEIVED + timedelta(minutes=5),
            erased: int = 1, late: int = 0) -> tuple[dict, str]:
    verification = {p: {"method": "re-list" if p.startswith("store") else "re-query", "remaining": 0} for p in PLACES}
    return build_receipt(req or request(), dict.fromkeys(PLACES, erased), verification, dict.fromkeys(PLACES, late),
                         now)


def test_hash_is_stable_and_verifies() -> None:
    first, digest = receipt()
    again, digest_again = receipt()
    assert digest == digest_again and len(digest) == 64
    assert verify_receipt(first, digest)
    # Stored as JSON and read back (a JSON column), it still verifies.
    assert verify_receipt(json.loads(json.dumps(first)), digest)
    assert canonical_json(first) == json.dumps(first, sort_keys=True, separators=(",", ":")).encode()


def test_hash_changes_with_content() -> None:
    body, digest = receipt()
    assert receipt(erased=2)[1] != digest
    assert receipt(late=1)[1] != digest
    assert receipt(request(id=uuid.uuid4()))[1] != digest
    tampered = {**body, "erased": {**body["erased"], "table:job": 0}}
    assert not verify_receipt(tampered, digest)


def test_no_personal_data_and_no_job_ids() -> None:
    req = request()
    text = canonical_json(receipt(req)[0]).decode()
    for secret in ("TICKET", "Jane", "a" * 64, *req.job_ids, *req.matched_job_ids, "recorded"):
        assert secret not in text
    body = receipt(req)[0]
    assert body["jobs_matched"] == 1 and body["type"] == "erasure" and body["request_id"] == str(req.id)
    assert body["verification"]["table:job"] == {"method": "re-query", "remaining": 0}


def test_deadline_and_changed() -> None:
    on_time, _ = receipt()
    assert on_time["deadline_met"] is True and on_time["changed"] is True
    late, _ = receipt(now=datetime(2026, 4, 3, 9, 0, 1, tzinfo=UTC), erased=0)
    assert late["deadline_met"] is False and late["changed"] is False
    extended, _ = receipt(request(extension_months=2, due_at=datetime(2026, 6, 3, 9, 0, tzinfo=UTC)),
                          now=datetime(2026, 5, 1, tzinfo=UTC))
    assert extended["deadline_met"] is True and extended["extension_months"] == 2
    assert extended["due_at"] == "2026-06-03T09:00:00+00:00"
    nothing_left, _ = receipt(erased=0, late=0)
    assert nothing_left["changed"] is False and set(nothing_left["erased"].values()) == {0}
