"""Producer side: make a Python service write the JSON logs logpipe reads best, with no configuration.

    import logging
    import logpipe.logging as lplog

    lplog.setup(service="shop", level="INFO", env="prod")
    app = lplog.RequestContextMiddleware(app)          # any ASGI app

    async def checkout(...):
        lplog.set_user(user.id, session_id=session.id)
        logging.getLogger("shop.checkout").info("order placed", extra={"order_id": 42})

This package is named like the standard library's `logging`; logpipe's modules import with
absolute imports, so `import logging` anywhere (here too) is always the standard library.
It imports only the standard library and python-json-logger.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Final, TextIO

from logpipe.logging.asgi import RequestContextMiddleware
from logpipe.logging.context import (
    CONTEXT_FIELDS,
    current,
    request_context,
    set_request_id,
    set_user,
)
from logpipe.logging.formatter import Clock, ContextFilter, JsonFormatter

__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "RequestContextMiddleware",
    "current",
    "request_context",
    "set_request_id",
    "set_user",
    "setup",
]

# Keys every line gets from the record or the request: a static field may not shadow them.
_RESERVED: Final = frozenset({"timestamp", "level", "logger", "module", "function", "line", "message", *CONTEXT_FIELDS})


class _SetupHandler(logging.StreamHandler[TextIO]):
    """The handler `setup` installs; a second `setup` replaces it instead of adding another."""


def setup(
    service: str | None = None,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    *,
    clock: Clock | None = None,
    **static_fields: Any,
) -> logging.Handler:
    """Send every log record of the process as one JSON line to `stream` (default: stderr).

    Installs a handler with `JsonFormatter` on the root logger and sets the root level. `service`
    and any other keyword (`env="prod"`, `version="1.4.2"`) are written on every line. Handlers
    added by others stay; calling `setup` again replaces only its own. Returns the handler.
    """
    clash = _RESERVED & static_fields.keys()
    if clash:
        raise ValueError(f"static field {sorted(clash)[0]!r} is written by logpipe.logging itself")
    fields = {"service": service, **static_fields} if service is not None else dict(static_fields)
    handler = _SetupHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(fields, clock=clock))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SetupHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
