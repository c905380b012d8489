"""Failpoints: named places where a test can make the agent pause, to land a kill -9 there.

`LOGPIPE_FAILPOINTS="before-commit=0.3,between-parts=0.1"` makes `pause("before-commit")` sleep
0.3 s. Unset (always, in production), `pause` is a dictionary lookup. The crash tests use them
to hit the narrow windows that matter: after data is durable but before the checkpoint moves.
"""

from __future__ import annotations

import os
import time
from functools import cache


@cache
def _configured() -> dict[str, float]:
    setting = os.environ.get("LOGPIPE_FAILPOINTS", "")
    points: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in setting.split(","))):
        name, _, seconds = item.partition("=")
        points[name] = float(seconds or 0)
    return points


def pause(name: str) -> None:
    seconds = _configured().get(name)
    if seconds:
        time.sleep(seconds)
