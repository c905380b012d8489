"""A full disk is an outage of the local disk: a following agent waits for space and loses nothing.

    space = DiskSpace(wait=True)
    space.retrying("archive", "120 records not written", lambda: write_part(...))

`retrying` runs a write that leaves nothing behind when it fails (an atomic part, an atomic
checkpoint file) and, when it fails for want of space (ENOSPC, EDQUOT), waits with the sinks'
capped backoff and jitter (`logpipe.sinks.retry`) and runs it again, until it succeeds or the
agent is stopped (`interrupt`, SIGTERM: then TransientError, and nothing is acknowledged). So a
flush does not return while the disk is full, the pipeline stops reading, and the log files are
the buffer, as when a server is down. Meanwhile the agent is not ready (`/ready` names the
store), `logpipe_disk_full{store}` is 1 and `logpipe_disk_full_retries_total{store}` counts the
attempts; one `disk_full` log event when a store fills, one `disk_space_back` when it is written
again.

`wait=False` (a run that ends, `ship --once`): the error is raised at once, for the person who
ran it to read.

Stores, a bounded label: `archive` (parts and dead letters) and `state` (checkpoints).
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from logpipe.sinks.retry import Outage, RetryPolicy

__all__ = ["FULL_ERRNOS", "STORES", "DiskSpace", "Full", "Store", "out_of_space"]

log = logging.getLogger("logpipe.diskspace")

Store = Literal["archive", "state"]
STORES: Final[tuple[Store, ...]] = ("archive", "state")
FULL_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
# Waits top out at 10 s, as for a sink that is down: space freed is used within seconds.
POLICY: Final = RetryPolicy(max_backoff_s=10.0)

T = TypeVar("T")


def out_of_space(exc: BaseException) -> bool:
    """Whether a write failed for want of space (or quota), by its errno, never by its text."""
    return isinstance(exc, OSError) and exc.errno in FULL_ERRNOS


@dataclass(frozen=True, slots=True)
class Full:
    """A store whose writes wait for space: since when (monotonic), and the last error."""

    since: float
    reason: str


def _reason(exc: OSError) -> str:
    import os

    what = os.strerror(exc.errno) if exc.errno is not None else str(exc)
    return f"{what.lower()} writing {exc.filename}" if exc.filename else what.lower()


class DiskSpace:
    """The local writes of one agent (archive and state), waiting out a full disk together."""

    def __init__(self, *, wait: bool, policy: RetryPolicy = POLICY) -> None:
        self.wait = wait
        self.policy = policy
        self._interrupted = threading.Event()
        self._lock = threading.Lock()
        self._full: dict[Store, Full] = {}
        self._retries: dict[str, int] = dict.fromkeys(STORES, 0)

    def interrupt(self) -> None:
        """Stopping: a write waiting for space gives up (TransientError), acknowledging nothing."""
        self._interrupted.set()

    def full(self) -> dict[Store, Full]:
        """The stores waiting for space now (a copy: the HTTP thread reads it)."""
        with self._lock:
            return dict(self._full)

    def retries(self) -> dict[str, int]:
        """Attempts that found the disk full, by store, since the start."""
        with self._lock:
            return dict(self._retries)

    def retrying(self, store: Store, pending: str, write: Callable[[], T]) -> T:
        """`write()`, again and again while it fails for want of space (see the module docstring).

        `write` must leave nothing behind when it fails (no half file where a reader looks), so
        that running it again is safe. `pending` says what waits ("120 records not written").
        """
        outage: Outage | None = None
        while True:
            try:
                result = write()
            except OSError as exc:
                if not self.wait or not out_of_space(exc):
                    raise
                reason = _reason(exc)
                if outage is None:
                    outage = Outage(self.policy, self._interrupted, f"{store} on a full disk")
                self._filled(store, reason)
                seconds = outage.next_wait(pending, reason)
                outage.wait(seconds, pending, reason)
                continue
            if outage is not None:
                self._freed(store)
            return result

    def _filled(self, store: Store, reason: str) -> None:
        with self._lock:
            self._retries[store] += 1
            first = store not in self._full
            self._full[store] = Full(self._full[store].since if not first else time.monotonic(), reason)
        if first:
            log.warning(
                "disk full: waiting for space",
                extra={"event": "disk_full", "store": store, "reason": reason},
            )
        else:
            log.debug("still no space", extra={"event": "disk_full_retry", "store": store, "reason": reason})

    def _freed(self, store: Store) -> None:
        with self._lock:
            full = self._full.pop(store, None)
        if full is not None:
            log.info(
                "disk space back",
                extra={"event": "disk_space_back", "store": store, "full_s": round(time.monotonic() - full.since, 3)},
            )
