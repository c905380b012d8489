"""How every sink decides whether to try a server again, and how long it waits before it does."""

from __future__ import annotations

import random
from typing import Final

from logpipe.errors import LogpipeError

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
