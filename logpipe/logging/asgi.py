"""Pure ASGI middleware: a request id and request context per request, and one access record.

Works with any ASGI framework (Starlette, FastAPI, Django, Quart, a bare callable) because it only
speaks the ASGI protocol; it imports no framework.

Per HTTP request it:
- takes the request id from the incoming `x-request-id` header when it is a sane token (printable
  ASCII, at most 200 characters), or makes a new uuid4, and echoes it in the response headers;
- opens a `request_context` so every record logged while handling the request carries the id
  (and the user/session the application names with `set_user`), and resets it afterwards;
- logs one access record with `method`, `path`, `status` and `duration_ms` (the fields logpipe
  reads into its canonical columns; the endpoint template is derived from `path` by logpipe).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from logpipe.logging.context import request_context

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# What an incoming id may look like: anything else (control characters, quotes-and-newlines log
# injection, a megabyte of header) is replaced by a fresh id.
_SANE_ID: Final = re.compile(r"[!-~]{1,200}")


def _incoming_id(scope: Scope, header: bytes) -> str | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == header:
            text = value.decode("latin-1")
            return text if _SANE_ID.fullmatch(text) else None
    return None


class RequestContextMiddleware:
    """Wrap an ASGI app: `app = RequestContextMiddleware(app, logger="shop.access")`.

    `clock` (seconds, monotonic) measures `duration_ms`; `new_id` makes request ids.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger: logging.Logger | str = "access",
        header: str = "x-request-id",
        clock: Callable[[], float] = time.perf_counter,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.app = app
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.header = header.lower().encode("latin-1")
        self.clock = clock
        self.new_id = new_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan, websocket: nothing to log per request
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope, self.header) or self.new_id()
        status: list[int] = []  # set by the response start; empty if the app never sent one

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                headers = [(k, v) for k, v in message.get("headers") or () if k.lower() != self.header]
                message = {**message, "headers": [*headers, (self.header, request_id.encode("latin-1"))]}
            await send(message)

        with request_context(request_id=request_id):
            start = self.clock()
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                self._access(scope, status[0] if status else 500, start, failed=True)
                raise
            # An app that returns without a response gets a 500 from the server.
            self._access(scope, status[0] if status else 500, start, failed=False)

    def _access(self, scope: Scope, status: int, start: float, *, failed: bool) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        fields = {
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": round((self.clock() - start) * 1000, 3),
        }
        if failed:
            self.logger.error("%s %s -> %d (unhandled exception)", method, path, status, exc_info=True, extra=fields)
        else:
            self.logger.info("%s %s -> %d", method, path, status, extra=fields)
