"""The OpenAPI description of `POST /v1/jobs`' multipart body.

The route parses the form itself (to stream the file and to refuse oversize bodies while they arrive), so
FastAPI cannot infer this; it is written out here, with the JSON parts described as the objects they are.
"""

from __future__ import annotations

from typing import Any

from api.subject_request_schemas import NOT_BLANK as _NOT_BLANK
from shared.job_options import JobOptions


def _inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """Replace pydantic's local `$defs` references, which mean nothing inside an OpenAPI document."""
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def upload_openapi(max_subject_refs: int) -> dict[str, Any]:
    identifier = {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 256, "pattern": _NOT_BLANK},
                            {"type": "number"}]}
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {
                "schema": {
                    "type": "object", "required": ["file"], "additionalProperties": False,
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "JPEG, PNG, WebP, MP4, MOV, MKV or AVI, judged by content."},
                        "options": _inline_defs(JobOptions.model_json_schema()),
                        "subject_refs": {
                            "type": "object", "maxProperties": max_subject_refs,
                            "propertyNames": {"minLength": 1, "pattern": _NOT_BLANK},
                            "additionalProperties": identifier,
                            "description": "Identifiers such as a driver or vehicle id, for data-subject "
                                           "requests; stored only as keyed hashes.",
                        },
                        "recorded_at": {"type": "string", "format": "date-time",
                                        "description": "When the footage was recorded (ISO 8601 with offset)."},
                        "callback_url": {"type": "string", "format": "uri", "maxLength": 2048,
                                         "description": "http(s) URL for signed status changes; loopback "
                                                        "and private addresses are refused."},
                    },
                },
                "encoding": {"options": {"contentType": "application/json"},
                             "subject_refs": {"contentType": "application/json"}},
            }},
        }
    }
