"""Waiting for an event instead of sleeping a fixed time: as short as the event allows, and a
message naming what never happened when it does not."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(fetch: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 60.0, every_s: float = 0.1) -> T:
    """Call `fetch` until `done` accepts its value or `timeout_s` passes; the last value either way
    (so the caller's assertion shows what there was)."""
    deadline = time.monotonic() + timeout_s
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(every_s)
        value = fetch()
    return value


def wait_until(
    what: str,
    check: Callable[[], T],
    timeout_s: float = 60.0,
    every_s: float = 0.1,
    detail: Callable[[], object] | None = None,
) -> T:
    """Call `check` until it returns something true, and return that; after `timeout_s` an
    AssertionError naming `what` (and what `detail` says about the state then)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            seen = f": {detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{seen}")
        time.sleep(every_s)
