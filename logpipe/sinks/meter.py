"""Where a sink reports its work, so that metrics live in one place and sinks stay free of them.

A sink calls `request` for each request to its server and `retrying` before it waits to send
again; the `Sinks` group calls `flushed` and `flush_failed` around every flush. The default meter
here reports nowhere; `logpipe.observe` hands each sink a real one when `--metrics-addr` is on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logpipe.model import FlushResult


class SinkMeter:
    """Reports nothing: what a sink has when no one is watching."""

    def request(self, seconds: float, *, ok: bool, reason: str = "") -> None:
        """One request to the server took `seconds`; `ok` when the server took it (2xx, or it
        answered item by item), not ok when nothing answered or it answered 429/5xx."""

    def retrying(self, records: int) -> None:
        """`records` were not delivered by the last attempt and will be sent again."""

    def flushed(self, seconds: float, result: FlushResult) -> None:
        """A flush returned: what it delivered and dead-lettered is durable."""

    def flush_failed(self, exc: BaseException) -> None:
        """A flush raised: nothing it held is acknowledged."""


NULL_METER = SinkMeter()


def meter_of(sink: object) -> SinkMeter:
    """The meter a sink reports to (sinks that make no requests may have none)."""
    meter = getattr(sink, "meter", None)
    return meter if isinstance(meter, SinkMeter) else NULL_METER
