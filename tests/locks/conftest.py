"""The `holders` fixture: every lock-holding process a test starts is ended after it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.locks.holders import Holder


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.end()
