"""A python-json-logger formatter whose field names are the ones logpipe reads with no configuration.

One JSON object per line:

    {"timestamp": "2026-11-27T10:00:00.123456Z", "level": "INFO", "logger": "shop.web",
     "module": "views", "function": "checkout", "line": 42, "message": "...",
     "service": "shop", "request_id": "...", "user_id": "...", "session_id": "...",
     ...extra fields..., "exc_info": "Traceback (most recent call last): ..."}

These are the keys of logpipe's default `python-json-logger` profile (logpipe/parse/profiles.py):
`timestamp` (ISO 8601, UTC), `level`, `logger`, `message`, `service`, the request context, the
access fields `method`/`path`/`status`/`duration_ms` when a record carries them, and `exc_info`
for the traceback (which becomes the canonical `error`). Everything else lands in `attrs`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter as _PJLFormatter

from logpipe.logging.context import CONTEXT_FIELDS, current

# LogRecord attributes written on every line, renamed to logpipe's canonical keys.
_RECORD_FIELDS = ("levelname", "name", "module", "funcName", "lineno", "message")
_RENAMES = {"levelname": "level", "name": "logger", "funcName": "function", "lineno": "line"}

Clock = Callable[[], float]


def iso_utc(seconds: float) -> str:
    """Unix seconds as ISO 8601 in UTC with microseconds and a `Z`."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="microseconds")
    return stamp.removesuffix("+00:00") + "Z"


class JsonFormatter(_PJLFormatter):
    """python-json-logger with logpipe's canonical field names and the current request context.

    `static_fields` (e.g. `{"service": "shop", "env": "prod"}`) go on every line. Request context
    comes from the record when it was passed explicitly (`extra={"request_id": ...}`, or stamped
    by `ContextFilter`), else from the contextvars at formatting time. `clock` replaces the
    record's creation time as the timestamp (unix seconds): for back-dated or simulated logs.
    """

    def __init__(self, static_fields: Mapping[str, Any] | None = None, clock: Clock | None = None) -> None:
        super().__init__(
            list(_RECORD_FIELDS),
            rename_fields=dict(_RENAMES),
            static_fields=dict(static_fields or {}),
            timestamp=False,  # written first, below, from `clock` when there is one
        )
        self._clock = clock

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["timestamp"] = iso_utc(self._clock() if self._clock is not None else record.created)
        super().add_fields(log_data, record, message_dict)
        for name, value in current().items():
            # An explicit value on the record (extra=, ContextFilter) wins over the ambient one.
            if getattr(record, name, None) is None:
                log_data[name] = value
        for name in CONTEXT_FIELDS:
            if log_data.get(name, "") is None:
                del log_data[name]  # a record that names no user says nothing, not null


class ContextFilter(logging.Filter):
    """Stamp the request context onto each record where it is logged.

    Needed only when records are formatted in another thread or task than the one that logged
    them (a `QueueHandler` feeding a `QueueListener`): put this filter on the queue handler.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in current().items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True
