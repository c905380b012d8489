"""The page's JSON API: handlers are plain functions of (store, params) returning data.

A feature module lists its handlers in `ROUTES` (path under `/api/`, function). Every route is
GET-only (the page never changes anything), runs in the server's thread pool, and answers JSON
encoded with orjson (datetimes as ISO 8601 in UTC). Errors map to one status and one sentence:
a bad parameter or filter is 400, a missing record 404, anything else logpipe knows 500 with its
message; an unexpected exception is 500 "internal error" (the server log has the traceback).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from logpipe.errors import LogpipeError, UsageError
from logpipe.read.store import Store

if TYPE_CHECKING:
    from logpipe.read.filters import Filter

log = logging.getLogger("logpipe.ui")

MAX_LIMIT: Final = 10_000
_T = TypeVar("_T")


class ClientGone(Exception):
    """The request's client went away: its handler stops where it is (nobody reads the answer)."""

    def __init__(self, done: int) -> None:
        super().__init__(f"the client went away after {done:,} records")
        self.done = done


@dataclass(frozen=True, slots=True)
class Params:
    """The request's query string, read with checked conversions (every failure is a 400).

    `gone` is set by the server when the request's client disconnects; a handler whose work
    grows with the records reads them through `while_connected`, so that work stops with it.
    """

    values: Mapping[str, str]
    now: datetime
    gone: threading.Event = field(default_factory=threading.Event, compare=False)

    def while_connected(self, items: Iterable[_T]) -> Iterator[_T]:
        """`items` one by one while the client is connected; `ClientGone` once it is not."""
        for done, item in enumerate(items):
            if self.gone.is_set():
                raise ClientGone(done)
            yield item

    def text(self, name: str, default: str = "") -> str:
        return self.values.get(name, default).strip()

    def optional(self, name: str) -> str | None:
        value = self.values.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, low: int = 0, high: int = MAX_LIMIT) -> int:
        raw = self.values.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise UsageError(f"{name} must be a whole number, not {raw!r}") from None
        if not low <= value <= high:
            raise UsageError(f"{name} must be between {low} and {high}, not {value}")
        return value

    def time(self, name: str) -> datetime | None:
        """`from`/`to`-style times: ISO 8601, epoch milliseconds (the page's zoom) or `1h`/`now`."""
        from logpipe.read.timeexpr import PAGE_EARLIEST, PAGE_LATEST, from_epoch_ms, parse_time

        raw = self.values.get(name, "").strip()
        if not raw:
            return None
        try:
            if raw.isdigit():
                return from_epoch_ms(int(raw), raw)
            return parse_time(raw, now=self.now, earliest=PAGE_EARLIEST, latest=PAGE_LATEST)
        except UsageError as exc:
            raise UsageError(f"{name}: {exc}") from None

    def filter_terms(self) -> Sequence[str]:
        """The search box (`q`, one line of the filter language) as one filter text."""
        q = self.text("q")
        return [q] if q else []

    def filter(self, since: str = "from", until: str = "to") -> Filter:
        """The search box and the time range (`from` inclusive, `to` exclusive) as one filter."""
        from logpipe.read.archive_search import window
        from logpipe.read.filters import parse_filters

        return parse_filters(self.filter_terms(), now=self.now) & window(self.time(since), self.time(until))


Handler = Callable[[Store, Params], Any]


def encode(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value, default=_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC)


def _default(value: Any) -> Any:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot encode {type(value).__name__}")


def status_of(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and the one sentence the page shows for a failed handler."""
    from logpipe.read.archive_search import NoSuchRecordError

    if isinstance(exc, UsageError):
        return 400, str(exc)
    if isinstance(exc, ClientGone):
        return 499, str(exc)  # nginx's "client closed request": nobody is there to read it
    if isinstance(exc, NoSuchRecordError):
        return 404, str(exc)
    if isinstance(exc, LogpipeError):
        return 500, str(exc)
    return 500, "internal error (see the server's log)"
