"""One JSON line per log record, from structlog and from the standard library alike.

Our own code logs with structlog (`structlog.get_logger(...)`, fields as keyword arguments) or with stdlib
`logging` and `extra={...}`; libraries (Celery, uvicorn, SQLAlchemy) log with stdlib `logging`. Both go
through the root handler's `JsonFormatter`, which adds what is bound in context variables: the API binds
`request_id` per request, the worker `job_id` (or the request or delivery id) per task.

Callers pass ids and counts only: file names, subject identifiers and exception texts stay out.
"""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Leading keys, in this order, so a line reads the same whichever side produced it.
_HEAD = ("ts", "level", "logger", "msg")
# Attributes every LogRecord has, plus those other formatters leave on a record (`message` once pytest's or
# any other handler formatted it first; uvicorn's `color_message`): none of them is an `extra` field.
_NOT_EXTRA = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName", "color_message", "_record", "_from_structlog", "_logger", "_name"}


def _extra_fields(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if record is not None:
        event.update({k: v for k, v in vars(record).items() if k not in _NOT_EXTRA})
    return event


def _timestamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # A stdlib record knows when it was made; a structlog event is formatted as it is made.
    if "ts" in event:
        return event
    record = event.get("_record")
    created = record.created if record is not None else time.time()
    event["ts"] = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return event


def _exception_type_only(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    # Exception messages and tracebacks can quote paths, file contents or identifiers: keep the type only.
    exc_info = event.pop("exc_info", None)
    event.pop("stack_info", None)
    event.pop("exception", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        event["exc_type"] = type(exc_info).__name__
    elif isinstance(exc_info, tuple) and exc_info[0] is not None:
        event["exc_type"] = exc_info[0].__name__
    return event


def _head_first(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return {**{k: event.pop(k) for k in _HEAD if k in event}, **event}


# Run on every stdlib record (a library's, or ours with `extra`) before the shared chain below.
_FOREIGN_PRE_CHAIN: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    _extra_fields,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamp,
]

# Run on every structlog event before it is handed to stdlib logging (and so to the root handler).
_STRUCTLOG_CHAIN: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.PositionalArgumentsFormatter(),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]


class JsonFormatter(structlog.stdlib.ProcessorFormatter):
    """A stdlib formatter that renders any record, structlog's or a library's, as one JSON object."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=_FOREIGN_PRE_CHAIN,
            processors=[
                _timestamp,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _exception_type_only,
                structlog.processors.EventRenamer("msg"),
                _head_first,
                structlog.processors.JSONRenderer(default=str),
            ],
        )


def configure_logging(level: str = "INFO") -> None:
    """Route structlog through stdlib logging and put one JSON handler on the root logger (idempotent)."""
    structlog.configure(
        processors=_STRUCTLOG_CHAIN,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())

