"""Fixtures for tests/es (the engines themselves are tests/support/services.py's fixtures)."""

from __future__ import annotations

import pytest

from tests.support.engines import make_prefix


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """An index prefix of this test's own."""
    return make_prefix(request.node.nodeid)
