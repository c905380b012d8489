"""How every sink decides whether to try a server again, how long it waits, and when it stops."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from logpipe.errors import LogpipeError, TransientError

BASE_BACKOFF_S: Final = 0.2


def transient(exc: BaseException) -> bool:
    """Whether trying again can help, decided by the error's type, never by its text.

    Sinks turn their client's errors into logpipe's (TransientError: down, overloaded, timed
    out; TerminalError: a record or a setting no retry can fix) before they ask. Anything else
    is terminal too: a missing module or a bug does not heal by waiting, and a retry loop that
    swallowed it would look like an outage that never ends.
    """
    return isinstance(exc, LogpipeError) and exc.transient


def backoff_s(attempt: int, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: uniform in [ceiling/4, ceiling], ceiling = min(cap, 0.2 s * 2**attempt).

    The jitter spreads the retries of many agents after an outage, so they do not all hit the
    server in the same instant.
    """
    ceiling = min(cap_s, BASE_BACKOFF_S * (2 ** min(attempt, 30)))
    return (rng or random).uniform(ceiling / 4, ceiling)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long a sink waits between attempts, and whether it ever stops trying on its own.

    The default, and the project's rule, is to try until the server takes the data or the
    agent is stopped (`give_up_after_s` 0): while a sink retries, its flush does not return,
    the pipeline stops reading, and the source (the log file) is the buffer. A bound
    (`retry_for=SECONDS` where a sink offers it) makes the flush raise TransientError after
    that long without progress instead; nothing is acknowledged either way.
    """

    max_backoff_s: float = 10.0
    give_up_after_s: float = 0.0


class Outage:
    """The attempts of one flush against a server that does not take what it is sent.

    `next_wait` says how long to wait before the next attempt (or raises TransientError when
    the agent is stopping, or the policy's bound is passed); `wait` waits on the sink's
    interrupt Event, so `interrupt()` (SIGTERM) ends the wait at once instead of after it.
    `progressed` starts the count again when the server took part of what was sent.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        interrupted: threading.Event,
        target: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self.target = target
        self.attempt = 0
        self._interrupted = interrupted
        self._clock = clock
        self._since = clock()

    def progressed(self) -> None:
        self.attempt, self._since = 0, self._clock()

    def next_wait(self, pending: str, last: str) -> float:
        """Seconds until the next attempt for `pending` (e.g. "12 records not indexed")."""
        if self._interrupted.is_set():
            raise self.stopped(pending, last)
        wait = backoff_s(self.attempt, self.policy.max_backoff_s)
        bound = self.policy.give_up_after_s
        if bound and self._clock() + wait > self._since + bound:
            raise TransientError(
                f"{self.target}: {pending}; nothing succeeded for {bound:g}s of retries (last: {last})"
            )
        return wait

    def wait(self, seconds: float, pending: str, last: str) -> None:
        """Wait `seconds` unless interrupted first (then TransientError: nothing is acknowledged)."""
        if self._interrupted.wait(seconds):
            raise self.stopped(pending, last)
        self.attempt += 1

    def stopped(self, pending: str, last: str) -> TransientError:
        return TransientError(
            f"{self.target}: shutting down with {pending} (last: {last}); "
            "the checkpoint stays before them, their lines will be read again"
        )
