"""Real engines for the engine tests, started with scripts/services (make test starts them first).

A fixture asks `scripts/services up NAME`, which returns at once when the server already
runs and otherwise starts it and waits until it is healthy; what a fixture started, it stops.
Every test works on its own index pattern prefix, so tests never see each other's documents.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "scripts" / "services"


def _service_env() -> dict[str, str]:
    """Where scripts/services puts each server (its ports follow LOGPIPE_*_PORT)."""
    out = subprocess.run([str(SERVICES), "env"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


ENV = _service_env()
URLS = {
    "opensearch": ENV["LOGPIPE_TEST_OPENSEARCH"],
    "opensearch-tiny": ENV["LOGPIPE_TEST_OPENSEARCH_TINY"],
    "elasticsearch": ENV["LOGPIPE_TEST_ELASTICSEARCH"],
    "victorialogs": ENV["LOGPIPE_TEST_VICTORIALOGS"],
}
KAFKA_PORT = int(ENV["LOGPIPE_TEST_KAFKA"].rsplit(":", 1)[1])
ENGINES = ("opensearch", "elasticsearch")


def services(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(SERVICES), *args], capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        pytest.fail(f"scripts/services {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def running(name: str) -> bool:
    return f"{name} " in services("status").stdout and any(
        line.startswith(name + " ") and " running " in line for line in services("status").stdout.splitlines()
    )


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request with the standard library (independent of the code under test)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else None


def wipe(url: str, prefix: str) -> None:
    """Delete every index and the template of one test prefix (names resolved first: ES refuses wildcards)."""
    status, indices = http("GET", f"{url}/_cat/indices/{prefix}*?format=json")
    assert status == 200, indices
    for index in indices or []:
        http("DELETE", f"{url}/{index['index']}")
    http("DELETE", f"{url}/_index_template/{prefix}template")


def count(url: str, prefix: str) -> int:
    http("POST", f"{url}/{prefix}*/_refresh")
    status, body = http("GET", f"{url}/{prefix}*/_count")
    assert status == 200, body
    return int(body["count"])


def all_sources(url: str, prefix: str) -> list[dict[str, Any]]:
    """Every document of a prefix, paged with search_after (independent of logpipe's reader)."""
    http("POST", f"{url}/{prefix}*/_refresh")
    out: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 5000, "sort": [{"event_id": "asc"}]}
        if after:
            body["search_after"] = after
        status, page = http("POST", f"{url}/{prefix}*/_search", body)
        assert status == 200, page
        hits = page["hits"]["hits"]
        if not hits:
            return out
        out.extend({"_id": h["_id"], "_index": h["_index"], **h["_source"]} for h in hits)
        after = hits[-1]["sort"]


def target(engine: str, prefix: str, **options: str) -> str:
    """A `--to` URL for `engine` writing indices `PREFIX{service}-{level}-{date}`."""
    host = URLS[engine].split("://", 1)[1]
    query = {"index": prefix + "{service}-{level}-{date}", "template": prefix + "template", "replicas": "0", **options}
    return f"es://{host}?" + "&".join(f"{k}={v}" for k, v in query.items())


def logpipe(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logpipe", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})  # fmt: skip


def _service(name: str) -> Iterator[str]:
    started = not running(name)
    services("up", name)
    yield URLS[name]
    if started:
        services("down", name, check=False)


@pytest.fixture(scope="session")
def opensearch() -> Iterator[str]:
    yield from _service("opensearch")


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[str]:
    yield from _service("elasticsearch")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(name, URL) of each real engine in turn."""
    yield request.param, request.getfixturevalue(request.param)


def make_prefix(name: str) -> str:
    """An index prefix of one test's own: lower-case, and no prefix of another test's (the hash),
    so the per-prefix index templates never overlap."""
    import hashlib

    slug = "".join(c if c.isalnum() else "-" for c in name.lower())[:30].strip("-")
    return f"t-{slug}-{hashlib.sha1(name.encode()).hexdigest()[:6]}-"


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return make_prefix(request.node.nodeid)
