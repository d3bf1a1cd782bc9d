"""One log line per request with what operations need: method, route template, status, duration, key id.

No client address, query string, file name or path parameter values: those can identify people. The route
template (`/v1/jobs/{job_id}`) says which endpoint without saying which job.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("veil.access")


class RequestLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            state = scope.get("state") or {}
            log.info("request", extra={
                "method": scope["method"], "route": getattr(route, "path", "unmatched"), "status": status,
                "ms": round((time.perf_counter() - started) * 1000, 1), "key_id": state.get("key_id"),
            })
