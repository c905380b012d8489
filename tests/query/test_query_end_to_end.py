"""From a JSON log file through the real `logpipe ship --once` to `logpipe query`, as processes.

The expected answers come from the source records in plain Python; ingest's message masking
is re-derived here from its documented rule (numbers become `<*>`), not imported.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import qexpected as expected
from qdata import Generated, Record, iso

from tests.support.cli import Run, run_cli

pytestmark = pytest.mark.slow

_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_LOG_FIELDS = (
    "level",
    "message",
    "logger",
    "service",
    "host",
    "request_id",
    "user_id",
    "session_id",
    "method",
    "path",
    "status",
    "duration_ms",
)


def _logpipe(*args: str) -> Run:
    return run_cli(*args, columns=None)


def _log_line(rec: Record) -> str:
    """One python-json-logger style line; fields the record lacks are left out, as a service would."""
    obj: dict[str, Any] = {"timestamp": rec["ts"].isoformat().replace("+00:00", "Z")}
    obj.update({k: rec[k] for k in _LOG_FIELDS if rec[k] is not None})
    return json.dumps(obj)


@pytest.fixture(scope="module")
def shipped(generated: Generated, tmp_path_factory: pytest.TempPathFactory) -> tuple[Generated, Path, list[Record]]:
    work = tmp_path_factory.mktemp("e2e")
    log = work / "app.log"
    log.write_text("".join(_log_line(r) + "\n" for r in generated.records))
    archive = work / "archive"
    res = _logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert res.returncode == 0, res.stderr
    # What the source records look like once ingest has masked their messages.
    records = [{**r, "message_key": _NUMBER.sub("<*>", r["message"])} for r in generated.records]
    return generated, archive, records


def _json(*args: str) -> list[dict[str, Any]]:
    res = _logpipe(*args, "--format", "json")
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


def test_errors(shipped: tuple[Generated, Path, list[Record]]) -> None:
    gen, archive, records = shipped
    since, until = gen.now - timedelta(hours=48), gen.now
    rows = _json("query", "errors", "--since", iso(since), "--until", iso(until), "--archive", str(archive))
    want = expected.errors(records, since, until)
    assert [(r["message_key"], r["count"]) for r in rows] == [(w["message_key"], w["count"]) for w in want]


def test_journey_of_each_user(shipped: tuple[Generated, Path, list[Record]]) -> None:
    gen, archive, records = shipped
    since, until = gen.now - timedelta(hours=48), gen.now
    for user in ("u1", "u7"):
        rows = _json(
            "query", "journey", "--user", user, "--since", iso(since), "--until", iso(until), "--archive", str(archive)
        )
        want = expected.journey(records, since, until, user=user)
        assert [(r["request_id"], r["session_id"], r["message"]) for r in rows] == [(w[2], w[1], w[10]) for w in want]


def test_slow(shipped: tuple[Generated, Path, list[Record]]) -> None:
    gen, archive, records = shipped
    since, until = gen.now - timedelta(hours=48), gen.now
    rows = _json(
        "query", "slow", "--since", iso(since), "--until", iso(until), "--threshold", "200ms", "--archive", str(archive)
    )
    want = expected.slow(records, since, until, 200.0)
    assert [r["key"] for r in rows] == [w["key"] for w in want]
    assert [r["p95_ms"] for r in rows] == pytest.approx([w["p95_ms"] for w in want])
