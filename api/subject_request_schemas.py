"""Bodies of /v1/subject-requests. Subject identifiers go in and never come out: only their keyed hashes are kept."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonDict, SkipJsonSchema

from api.submissions import MAX_SUBJECT_REFS
from shared.tables import SubjectRequest

MAX_JOB_IDS = 1000
# Whitespace as Python's str.strip() sees it, spelled out: regex engines disagree on `\s` (U+0085, U+001C-1F),
# and the schema, its validator and the strip that follows must agree on what is blank.
_SPACE = r"\t\n\x0b\x0c\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = rf"[^{_SPACE}]"
# Stored text: PostgreSQL cannot hold NUL characters. A reason needs one visible character.
NO_NUL = r"^[^\x00]*$"
VISIBLE_NO_NUL = rf"^[^\x00]*[^\x00{_SPACE}][^\x00]*$"


def _absent_not_null(schema: JsonDict) -> None:
    # Optional fields are absent, never null: the schema says so, and shows no `"default": null` to contradict it.
    properties = schema.get("properties")
    assert isinstance(properties, dict)
    for prop in properties.values():
        if isinstance(prop, dict):
            prop.pop("default", None)


def _subject_schema(schema: JsonDict) -> None:
    _absent_not_null(schema)
    schema["minProperties"] = 1  # at least one criterion, stated where a client (and a fuzzer) can read it


# The same identifier values a job accepts: non-blank strings or numbers, hashed exactly as a job's are.
RefValue = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=NOT_BLANK)] | StrictInt | StrictFloat
RefName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SubjectIn(BaseModel):
    """Who the request is about. Every criterion given must match; at least one is needed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_subject_schema)

    subject_refs: Annotated[dict[RefName, RefValue], Field(min_length=1, max_length=MAX_SUBJECT_REFS)] | \
        SkipJsonSchema[None] = None
    recorded_from: AwareDatetime | SkipJsonSchema[None] = None
    recorded_to: AwareDatetime | SkipJsonSchema[None] = None
    job_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=MAX_JOB_IDS)] | SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _names_someone(self) -> SubjectIn:
        if not (self.subject_refs or self.recorded_from or self.recorded_to or self.job_ids):
            raise ValueError("name the subject: subject_refs, recorded_from/recorded_to or job_ids")
        return self

    def refs(self) -> dict[str, str]:
        return {name: str(value).strip() for name, value in (self.subject_refs or {}).items()}


class SubjectRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_not_null)

    type: Literal["erasure", "access"]
    subject: SubjectIn
    reference: Annotated[str, Field(max_length=200, pattern=NO_NUL,
                                    description="Your own reference, e.g. a ticket number.")] | \
        SkipJsonSchema[None] = None


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    months: Literal[1, 2]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=VISIBLE_NO_NUL)]


class SubjectRequestLinks(BaseModel):
    self: str
    receipt: str
    archive: str | None


class SubjectRequestOut(BaseModel):
    id: uuid.UUID
    type: Literal["erasure", "access"]
    status: Literal["received", "in_progress", "sweeping", "completed", "failed"]
    reference: str | None
    received_at: datetime
    due_at: datetime
    extension_months: int
    extension_reason: str | None
    extended_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error_code: str | None
    result: dict[str, Any] | None
    archive_expires_at: datetime | None
    links: SubjectRequestLinks

    @classmethod
    def of(cls, request: SubjectRequest) -> SubjectRequestOut:
        base = f"/v1/subject-requests/{request.id}"
        return cls.model_validate({
            "id": request.id, "type": request.type, "status": request.status, "reference": request.reference,
            "received_at": request.received_at, "due_at": request.due_at,
            "extension_months": request.extension_months, "extension_reason": request.extension_reason,
            "extended_at": request.extended_at, "started_at": request.started_at,
            "completed_at": request.completed_at, "error_code": request.error_code, "result": request.result,
            "archive_expires_at": request.archive_expires_at if request.type == "access" else None,
            "links": {"self": base, "receipt": f"{base}/receipt",
                      "archive": f"{base}/archive" if request.type == "access" else None},
        })


class SubjectRequestList(BaseModel):
    items: list[SubjectRequestOut]


class ReceiptOut(BaseModel):
    receipt: dict[str, Any]
    sha256: str
