"""Fixtures for retention: archives built by the real `logpipe ship --once`, real OpenSearch
(and Elasticsearch for the "no _delete_by_query" message: tests/support/services.py), and the
Loki double of tests/support.

Every test runs the real CLI (`python -m logpipe retention …`) with `--now` fixed, so the
same data is young or old depending on the day the test pretends it is.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import cli
from tests.support.cli import ROOT, run_cli
from tests.support.engines import http
from tests.support.loki_double import DoubleServer, LokiDouble
from tests.support.services import ENGINES, url

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# The day every test pretends it is (noon UTC: far from midnight, so the skew margin is visible
# only where a test moves the clock on purpose).
TODAY = date(2026, 11, 27)
NOW = "2026-11-27T12:00:00Z"


@dataclass(frozen=True)
class Run(cli.Run):
    def audit(self) -> list[dict[str, Any]]:
        """The JSON audit lines this run wrote on stderr."""
        return [json.loads(line) for line in self.err.splitlines() if line.startswith("{")]


def logpipe(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300) -> Run:
    run = run_cli(*args, cwd=cwd, env=env, timeout=timeout, columns=250)
    return Run(run.code, run.out, run.err)


def retention(*args: str, policy: Path, now: str = NOW, env: dict[str, str] | None = None) -> Run:
    command, *rest = args
    extra = ["--now", now] if command in ("plan", "apply") else []
    return logpipe("retention", command, "--policy", str(policy), *extra, *rest, env=env)


def write_policy(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# -------------------------------------------------------------------------------- archive


def log_lines(days: int, *, per_level: int = 2, services: tuple[str, ...] = ("shop",)) -> list[str]:
    """python-json-logger lines: `per_level` records of every level on each of the last `days`
    days before TODAY (and TODAY itself), at 00:30 and 23:30 so each day's edges are covered."""
    lines = []
    for back in range(days + 1):
        day = TODAY - timedelta(days=back)
        for level in LEVELS:
            for i in range(per_level):
                hour = 0 if i % 2 == 0 else 23
                ts = datetime(day.year, day.month, day.day, hour, 30, i % 60, tzinfo=UTC)
                for service in services:
                    lines.append(
                        json.dumps(
                            {
                                "asctime": ts.isoformat(),
                                "levelname": level,
                                "name": "shop.web",
                                "message": f"{level} {i} of {day}",
                                "service": service,
                            }
                        )
                    )
    return lines


def build_archive(tmp: Path, days: int, **kw: Any) -> Path:
    """An archive written by the real agent (`logpipe ship --once`) from backdated lines."""
    log = tmp / "app.log"
    log.write_text("\n".join(log_lines(days, **kw)) + "\n")
    archive = tmp / "archive"
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.code == 0, run.err
    return archive


def partitions(archive: Path) -> set[tuple[str, str]]:
    """(day, level) of every partition folder holding at least one finished part."""
    out = set()
    for part in (archive / "logs").glob("day=*/level=*/*.parquet"):
        out.add((part.parent.parent.name[4:], part.parent.name[6:]))
    return out


@pytest.fixture(scope="session")
def shipped_100_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One archive of 100 days of every level, shipped once; tests take copies of it."""
    return build_archive(tmp_path_factory.mktemp("retention"), 100)


@pytest.fixture
def archive_policy(tmp_path: Path, shipped_100_days: Path) -> Iterator[tuple[Path, Path]]:
    """(a copy of the archive with 100 days of every level, a policy enforcing the defaults on it)."""
    archive = tmp_path / "archive"
    shutil.copytree(shipped_100_days, archive, symlinks=True)
    policy = write_policy(
        tmp_path / "policy.yaml",
        {
            "version": 1,
            "enforce": ["archive"],
            "archive": {"path": str(archive)},
            "audit": {"path": str(tmp_path / "audit.jsonl")},
        },
    )
    yield archive, policy


# ------------------------------------------------------------------------------- engines


def make_prefix(name: str) -> str:
    import hashlib

    return f"t-ret-{hashlib.sha1(name.encode()).hexdigest()[:8]}-"


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    value = make_prefix(request.node.nodeid)
    yield value
    for engine in ENGINES:
        try:
            status, rows = http("GET", f"{url(engine)}/_cat/indices/{value}*?format=json")
        except OSError:
            continue
        for row in rows or [] if status == 200 else []:
            http("DELETE", f"{url(engine)}/{row['index']}")


def create_index(url: str, name: str, docs: list[dict[str, Any]]) -> None:
    """An index with the fields the sink maps (keyword level/service, date ts) and `docs`."""
    status, body = http(
        "PUT",
        f"{url}/{name}",
        {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {
                    "ts": {"type": "date_nanos"},
                    "level": {"type": "keyword"},
                    "service": {"type": "keyword"},
                    "message": {"type": "text"},
                }
            },
        },
    )
    assert status == 200, body
    if docs:
        lines = "".join(json.dumps({"index": {}}) + "\n" + json.dumps(d) + "\n" for d in docs)
        status, body = http("POST", f"{url}/{name}/_bulk?refresh=true", ndjson=lines)
        assert status == 200 and not body["errors"], body


def index_names(url: str, prefix: str) -> set[str]:
    status, rows = http("GET", f"{url}/_cat/indices/{prefix}*?format=json")
    assert status == 200, rows
    return {r["index"] for r in rows}


def doc_count(url: str, index: str, query: dict[str, Any] | None = None) -> int:
    http("POST", f"{url}/{index}/_refresh")
    status, body = http("POST", f"{url}/{index}/_count", {"query": query or {"match_all": {}}})
    assert status == 200, body
    return int(body["count"])


# ---------------------------------------------------------------------------------- loki


@pytest.fixture
def loki() -> Iterator[DoubleServer]:
    server = LokiDouble().serve()
    yield server
    server.stop()
