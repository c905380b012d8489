"""The real servers of scripts/services (OpenSearch, Elasticsearch, VictoriaLogs, Kafka).

A fixture asks `scripts/services up NAME`, which returns at once when the server already runs
and otherwise starts it and waits until it is healthy; what a fixture started, it stops. A server
that cannot start fails the test with the reason, never skips it. Every test that uses one of
these fixtures is marked `services` (tests/conftest.py), so `pytest -m 'not services'` needs none.
"""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.cli import ROOT

SERVICES = ROOT / "scripts" / "services"
ENGINES = ("opensearch", "elasticsearch")
# The fixtures below: a test using any of them (directly or through another fixture) needs servers.
FIXTURES = frozenset({"opensearch", "elasticsearch", "engine", "victorialogs", "kafka"})


def services(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run scripts/services; fail the test with its output on error (unless not `check`)."""
    result = subprocess.run([str(SERVICES), *args], capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        pytest.fail(f"scripts/services {' '.join(args)} failed (required, never skipped):\n{result.stderr[-3000:]}")
    return result


@functools.cache
def service_env() -> dict[str, str]:
    """Where scripts/services puts each server: LOGPIPE_TEST_OPENSEARCH=http://127.0.0.1:19200, ...
    (its ports follow LOGPIPE_*_PORT)."""
    out = services("env").stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def url(name: str) -> str:
    """The address of a server: `url("opensearch-tiny")` reads LOGPIPE_TEST_OPENSEARCH_TINY."""
    return service_env()["LOGPIPE_TEST_" + name.upper().replace("-", "_")]


def running(name: str) -> bool:
    return any(line.startswith(name + " ") and " running " in line for line in services("status").stdout.splitlines())


def service(name: str) -> Iterator[str]:
    """A fixture's body: the server's address while the fixture lives; stopped after if it started it."""
    started = not running(name)
    services("up", name)
    yield url(name)
    if started:
        services("down", name, check=False)


@pytest.fixture(scope="session")
def opensearch() -> Iterator[str]:
    yield from service("opensearch")


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[str]:
    yield from service("elasticsearch")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(name, URL) of each real engine in turn."""
    yield request.param, request.getfixturevalue(request.param)


@pytest.fixture(scope="session")
def victorialogs() -> Iterator[str]:
    """VictoriaLogs' HTTP address (it takes the Loki push protocol)."""
    yield from service("victorialogs")


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The Kafka broker's bootstrap address (127.0.0.1 only)."""
    yield from service("kafka")
