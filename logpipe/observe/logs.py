"""logpipe's own log: one JSON object per line on stderr (python-json-logger).

Each line has `timestamp` (ISO 8601, UTC), `level`, `logger` and `message`, the canonical shape
logpipe itself reads with no configuration, plus the event's fields (`event`, `sink`, `path`,
`records`, ...) as keys rather than words in the message. `--log-level` (config `log.level`)
sets the level of logpipe's own loggers; other libraries' loggers speak from WARNING up
(the clients that log every reconnect attempt, aiokafka and the Elasticsearch ones, only at DEBUG).
"""

from __future__ import annotations

import logging
import sys
from typing import Final, TextIO

from logpipe.errors import UsageError

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Clients that log every reconnect attempt, several a second while a server is down. logpipe's
# sinks report each failure themselves (sink_down, sink_retry, with the client's error), so these
# speak only at DEBUG.
CHATTY: Final = ("aiokafka", "elastic_transport", "opensearch", "urllib3")
_MARK: Final = "_logpipe_json"


def parse_level(text: str) -> int:
    """A level name in any case -> its number; anything else is a usage error naming the choices."""
    name = text.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise UsageError(f"log level {text!r} is not one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(name))


def json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="timestamp",
    )


def setup_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every log line to `stream` (stderr) as JSON; logpipe's loggers at `level`.

    Calling it again replaces the handler it installed, so a reload or a test can call it freely.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(json_formatter())
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    set_level(level)


def set_level(level: str | int) -> None:
    """Change the level of logpipe's own loggers (config reload calls this with `log.level`)."""
    number = parse_level(level) if isinstance(level, str) else level
    logging.getLogger("logpipe").setLevel(number)
    for name in CHATTY:
        logging.getLogger(name).setLevel(logging.WARNING if number <= logging.DEBUG else logging.CRITICAL)
