"""Topics for the Kafka tests on the real Kafka 4 broker (KRaft) of scripts/services (the `kafka`
fixture of tests/support/services.py). Every test uses topics of its own, created with the
number of partitions it needs.
"""

from __future__ import annotations

import pytest

from tests.support.kafka import create_topic


@pytest.fixture
def topic_factory(kafka: str) -> object:
    return lambda partitions=1: create_topic(kafka, partitions)
