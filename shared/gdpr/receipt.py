"""The erasure receipt: what was erased where, how it was verified, when, and by which software.

It holds no personal data: no reference, no subject hashes, no recorded-at range, no job ids, only counts,
place names, timestamps and the request's own id. Its SHA-256 is taken over canonical JSON (sorted keys,
no whitespace, ASCII), so anyone holding the receipt can recompute the hash and see it was not altered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.tables import SubjectRequest
from shared.version import software_version

RECEIPT_VERSION = 1


def canonical_json(receipt: Mapping[str, Any]) -> bytes:
    return json.dumps(receipt, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def receipt_sha256(receipt: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(receipt)).hexdigest()


def verify_receipt(receipt: Mapping[str, Any], sha256: str) -> bool:
    """True when `sha256` is the hash of exactly this receipt."""
    return hmac.compare_digest(receipt_sha256(receipt), sha256.lower())


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def build_receipt(request: SubjectRequest, counts: Mapping[str, int], verification: Mapping[str, Mapping[str, Any]],
                  late_writes: Mapping[str, int], now: datetime, *, jobs_cancelled: int = 0
                  ) -> tuple[dict[str, Any], str]:
    """The receipt of a completed erasure and its hash. `counts`: what the first pass erased per place;
    `late_writes`: what the later sweeps found and erased; `verification`: {place: {method, remaining}}."""
    erased = {place: int(n) for place, n in sorted(counts.items())}
    late = {place: int(n) for place, n in sorted(late_writes.items())}
    receipt: dict[str, Any] = {
        "receipt_version": RECEIPT_VERSION,
        "type": "erasure",
        "request_id": str(request.id),
        "tenant_id": request.tenant_id,
        "received_at": _iso(request.received_at),
        "started_at": _iso(request.started_at),
        "completed_at": _iso(now),
        "due_at": _iso(request.due_at),  # includes any recorded extension
        "extension_months": request.extension_months,
        "deadline_met": now <= request.due_at,
        "jobs_matched": len(request.matched_job_ids),
        "jobs_cancelled": int(jobs_cancelled),
        "erased": erased,
        "late_writes": late,
        "verification": {place: {"method": str(v["method"]), "remaining": int(v["remaining"])}
                         for place, v in sorted(verification.items())},
        "changed": any(erased.values()) or any(late.values()) or jobs_cancelled > 0,
        "software_version": software_version(),
    }
    return receipt, receipt_sha256(receipt)
