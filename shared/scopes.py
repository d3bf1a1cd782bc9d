"""What an API key may do."""

from enum import StrEnum


class Scope(StrEnum):
    jobs_write = "jobs:write"
    jobs_read = "jobs:read"
    subject_requests = "subject-requests"
    admin = "admin"  # every scope, within its own tenant


def grants(held: list[str] | frozenset[str], needed: Scope) -> bool:
    return needed.value in held or Scope.admin.value in held
