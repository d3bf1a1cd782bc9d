"""One log line per request with what operations need: method, route template, status, duration, key id.

Every line logged while a request is handled carries its `request_id`, which the response returns as
`X-Request-ID`. A caller's own `X-Request-ID` is kept only when it is a UUID: a free-form header could carry
anything, names included, into the logs.

No client address, query string, file name or path parameter values: those can identify people. The route
template (`/v1/jobs/{job_id}`) says which endpoint without saying which job.
"""

from __future__ import annotations

import time
import uuid

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("veil.access")

HEADER = "X-Request-ID"


def request_id_from(headers: Headers) -> str:
    presented = headers.get(HEADER)
    if presented:
        try:
            return str(uuid.UUID(presented))
        except ValueError:
            pass
    return str(uuid.uuid4())


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        request_id = request_id_from(Headers(scope=scope))

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        # Context variables set here reach the route, its dependencies and the threads Starlette runs them in.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, capture)
            finally:
                route = scope.get("route")
                state = scope.get("state") or {}
                log.info("request", method=scope["method"], route=getattr(route, "path", "unmatched"),
                         status=status, ms=round((time.perf_counter() - started) * 1000, 1),
                         key_id=state.get("key_id"))
