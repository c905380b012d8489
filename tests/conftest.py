"""Fixtures and markers for every test folder (the helpers themselves live in tests/support)."""

from __future__ import annotations

import pytest

from tests.support.services import FIXTURES, elasticsearch, engine, kafka, opensearch, victorialogs  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `services` every test that uses a real server: through a fixture of tests/support/services
    (the fixture closure includes fixtures of fixtures), or by saying so (`pytestmark`)."""
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)
