"""Signing webhook bodies, and checking a signature on the receiving side.

Each delivery carries a `Veil-Signature` header:

    Veil-Signature: t=1718000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd

- `t` is the Unix time (seconds) when the request was signed;
- `v1` is the lower-case hex HMAC-SHA256, keyed with the tenant's webhook secret (the whole `whsec_...`
  string, UTF-8), of the bytes `f"{t}."` followed by the raw request body exactly as received.

A receiver recomputes the HMAC over the raw body (before any JSON parsing), compares in constant time, and
rejects a timestamp more than a few minutes away from its clock, so a captured request cannot be replayed
later. The header may carry several `v1=` values (one per secret while a secret is being rotated); one match
is enough. Deliveries are at least once: the `Veil-Delivery` header (the payload's `id`) is the same on
every retry of one event, and receivers should ignore an id they have already processed.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _digest(secret: str | bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> str:
    """The `Veil-Signature` header value for `body` sent at `timestamp` (Unix seconds)."""
    return f"t={timestamp},{SCHEME}={_digest(secret, body, timestamp)}"


def _parse(header: str) -> tuple[int, list[str]] | None:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not value:
            return None
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit():
                return None
            timestamp = int(value)
        elif name == SCHEME:
            signatures.append(value)
        # Unknown schemes are skipped: a later version may add them beside v1.
    if timestamp is None or not signatures:
        return None
    return timestamp, signatures


def verify(secret: str | bytes, body: bytes, header: str | None, *, tolerance_s: int = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """True when `header` is a valid signature of `body` made within `tolerance_s` of `now`.

    False for a malformed header, a timestamp too far in the past or future, or no matching signature."""
    if not header or len(header) > 4096:
        return False
    parsed = _parse(header)
    if parsed is None:
        return False
    timestamp, signatures = parsed
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, body, timestamp).encode()
    # Compare against every candidate without stopping early, in constant time each.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected, candidate.encode(errors="replace"))
    return matched
