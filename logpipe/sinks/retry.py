"""How every sink waits before trying a server again."""

from __future__ import annotations

import random
from typing import Final

BASE_BACKOFF_S: Final = 0.2


def backoff_s(attempt: int, cap_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: uniform in [ceiling/4, ceiling], ceiling = min(cap, 0.2 s * 2**attempt).

    The jitter spreads the retries of many agents after an outage, so they do not all hit the
    server in the same instant.
    """
    ceiling = min(cap_s, BASE_BACKOFF_S * (2 ** min(attempt, 30)))
    return (rng or random).uniform(ceiling / 4, ceiling)
