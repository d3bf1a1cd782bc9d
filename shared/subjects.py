"""Subject identifiers (driver id, vehicle id...) are stored as keyed hashes, never in clear."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping


def hash_subject_refs(refs: Mapping[str, str], secret: str) -> list[str]:
    """One keyed hash per `name=value` pair, so a request naming one identifier matches without the others."""
    key = secret.encode()
    return sorted(
        hmac.new(key, f"{name.strip().lower()}={value.strip()}".encode(), hashlib.sha256).hexdigest()
        for name, value in refs.items()
    )
