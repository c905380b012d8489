"""Fixtures for the Loki sink: the in-process LokiDouble (real VictoriaLogs, which takes the Loki
push protocol, is the `victorialogs` fixture of tests/support/services.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.loki_double import DoubleServer, LokiDouble


@pytest.fixture
def double() -> Iterator[DoubleServer]:
    server = LokiDouble().serve()
    yield server
    server.stop()
