"""Duplicate keys are last-wins, as JSON.parse, Python's `json` and jq read them (issue #12, item 12).

Python's `json.loads` is the independent parser: a line with repeated keys must normalise exactly
as the object `json.loads` makes of it, canonical fields and `attrs` alike, at every depth the
profile reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from parse_support import attrs, one, raw_batch, rows, transformer
from shiphelp import archive_rows, run_logpipe

T = transformer()
TS = '"timestamp":"2026-11-20T10:00:00Z"'


def _normalised(line: str, fmt: str = "python-json-logger") -> dict[str, Any]:
    """The one record `line` becomes (a fresh request context, so rows do not leak into others)."""
    t = transformer()
    try:
        got = rows(t(raw_batch(line.encode() + b"\n", fmt)))
    finally:
        t.close()
    assert len(got) == 1, got
    return got[0]


def _comparable(row: dict[str, Any]) -> dict[str, Any]:
    """A row with attrs parsed (key order is not part of the JSON value) and no provenance."""
    return {**row, "attrs": json.loads(row["attrs"]), "event_id": None, "offset": None}


class TestCanonicalFields:
    """Every field the profile reads takes the last occurrence of its key."""

    def test_level_and_message(self) -> None:
        """`level` and `message` twice: the second of each is the record's."""
        row = _normalised('{"level":"error","level":"debug","message":"first","message":"second",' + TS + "}")
        assert (row["level"], row["message"]) == ("DEBUG", "second")

    def test_null_then_value(self) -> None:
        """pino child bindings: `"userId":null` then the real id -- the id is kept."""
        row = _normalised('{"userId":null,"message":"m","userId":"u1",' + TS + "}")
        assert row["user_id"] == "u1"

    def test_value_then_null(self) -> None:
        """A later null replaces the value (json.loads gives None), so the field is empty."""
        row = _normalised('{"user_id":"u1","message":"m","user_id":null,' + TS + "}")
        assert row["user_id"] is None
        assert attrs(row) == {"user_id": None}  # what json.loads keeps of the unused key

    def test_escaped_spelling_is_the_same_key(self) -> None:
        """`user_id` and `user\\u005fid` name one key; the later one wins."""
        row = _normalised('{"user_id":"a","user\\u005fid":"b","message":"m",' + TS + "}")
        assert row["user_id"] == "b"

    def test_nested_key_twice(self) -> None:
        """A nested path (ECS `user.id`) given twice inside its object: the last is read."""
        line = '{"@timestamp":"2026-11-20T10:00:00Z","log.level":"info","message":"m","user":{"id":null,"id":"u1"}}'
        assert _normalised(line, "ecs")["user_id"] == "u1"

    def test_parent_object_twice(self) -> None:
        """The parent object itself repeated: only the last object counts, as json.loads has it."""
        base = '"@timestamp":"2026-11-20T10:00:00Z","log.level":"info","message":"m"'
        assert _normalised("{" + base + ',"user":{"id":"old"},"user":{"id":"u1"}}', "ecs")["user_id"] == "u1"
        # The last `user` has no id: the earlier object's id is not resurrected.
        assert _normalised("{" + base + ',"user":{"id":"old"},"user":{}}', "ecs")["user_id"] is None

    def test_loguru_root_twice(self) -> None:
        """A profile rooted in a sub-object (loguru's `record`) reads the last `record`."""
        rec = '{"time":{"timestamp":1767225600.5},"level":{"name":"%s"},"message":"%s","extra":{},"name":"x"}'
        line = '{"text":"t","record":' + rec % ("INFO", "old") + ',"record":' + rec % ("ERROR", "new") + "}"
        row = _normalised(line, "loguru")
        assert (row["level"], row["message"]) == ("ERROR", "new")


class TestAttrs:
    """`attrs` holds each remaining key once, with its last value."""

    def test_free_key_twice(self) -> None:
        """A repeated key no field reads is kept once, with the later value, where it first stood."""
        row = one(b'{"message":"m","timestamp":0,"k":1,"j":true,"k":2}\n')
        assert row["attrs"] == '{"k":2,"j":true}'

    def test_consumed_key_leaves_every_copy(self) -> None:
        """A repeated canonical key: its value is read and no copy stays in attrs."""
        row = one(b'{"level":"error","level":"debug","message":"m","timestamp":0}\n')
        assert row["level"] == "DEBUG" and json.loads(row["attrs"]) == {}

    def test_lifted_key_twice(self) -> None:
        """loguru's `extra` (lifted into attrs) with a repeated key: once, last value."""
        line = (
            '{"text":"t","record":{"time":{"timestamp":1767225600.5},"level":{"name":"INFO"},'
            '"message":"m","name":"x","extra":{"tenant":"a","tenant":"b"}}}'
        )
        row = _normalised(line, "loguru")
        assert attrs(row)["tenant"] == "b" and row["attrs"].count('"tenant"') == 1


# Keys drawn from a small set so that they repeat: canonical ones (with their aliases) and free ones.
KEYS = st.sampled_from(
    [
        "level",
        "levelname",
        "message",
        "msg",
        "user_id",
        "userId",
        "request_id",
        "timestamp",
        "k",
        "j",
        "user\\u005fid",
        "_logpipe",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.text(max_size=6),
    st.sampled_from(["error", "INFO", "2026-11-20T10:00:00Z", "1767225600"]),
)


@st.composite
def member_text(draw: st.DrawFn, depth: int = 0) -> str:
    """One `"key":value` member; a free key's value is sometimes an object that repeats keys too
    (canonical keys get scalars: an object read into a string column keeps its text as written)."""
    key = draw(KEYS)
    if key in ("k", "j") and depth < 2 and draw(st.integers(0, 3)) == 0:
        inner = draw(st.lists(member_text(depth + 1), max_size=4))
        value = "{" + ",".join(inner) + "}"
    else:
        value = json.dumps(draw(SCALARS))
    return f'"{key}":{value}'


class TestProperty:
    """Any object with repeated keys normalises as the object json.loads makes of it."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(member_text(), min_size=1, max_size=12))
    def test_same_as_json_loads(self, members: list[str]) -> None:
        """Columns and attrs of the raw line equal those of `json.dumps(json.loads(line))` (no
        duplicates left, so no reading rule is involved), and attrs is json.loads' minus the
        keys that gave fields."""
        line = "{" + ",".join(members) + "}"
        loaded = json.loads(line)
        got, want = _normalised(line), _normalised(json.dumps(loaded, separators=(",", ":")))
        assert _comparable(got) == _comparable(want), line
        for key, value in json.loads(got["attrs"]).items():
            if key != "_logpipe":
                assert loaded[key] == value, (line, key)
        user = loaded.get("user_id") if loaded.get("user_id") is not None else loaded.get("userId")
        assert got["user_id"] == (
            None if user is None else user if isinstance(user, str) else json.dumps(user, separators=(",", ":"))
        ), line


def _pino_lines(now_ms: int) -> bytes:
    """What pino 9 writes for a child logger bound to `userId: null` whose later lines name the
    user (captured from real pino output: `log.child({reqId, userId: null, sessionId: null})`,
    then `.child({userId: 'u1', sessionId: 's1'})` and `.info({userId: 'u1'}, ...)`)."""
    head = '{"level":30,"time":%d,"pid":4242,"hostname":"web-1","reqId":"req-7","userId":null,"sessionId":null,'
    out = [
        head % now_ms + '"msg":"request received"}',
        head % (now_ms + 1) + '"userId":"u1","sessionId":"s1","cart":3,"msg":"checkout started"}',
        head % (now_ms + 2) + '"userId":"u1","msg":"payment ok"}',
    ]
    return "".join(line + "\n" for line in out).encode()


class TestPinoJourney:
    """Through the real CLI: a pino child logger's user shows up in `logpipe query journey`."""

    def test_journey_finds_the_user(self, tmp_path: Path) -> None:
        """All three lines of the request are in u1's journey, each with user and session."""
        log = tmp_path / "app.log"
        log.write_bytes(_pino_lines(int(time.time() * 1000) - 60_000))
        archive = tmp_path / "archive"
        shipped = run_logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert shipped.code == 0, shipped.err
        stored = sorted(archive_rows(archive, ["offset", "user_id", "session_id", "attrs"]), key=lambda r: r["offset"])
        assert [(r["user_id"], r["session_id"]) for r in stored] == [("u1", "s1")] * 3
        assert json.loads(stored[1]["attrs"]) == {"pid": 4242, "cart": 3}  # no stale `userId: null` copy
        got = run_logpipe("query", "journey", "--user", "u1", "--archive", str(archive), "--format", "json")
        assert got.code == 0, got.err
        journey = json.loads(got.out)
        assert [r["message"] for r in journey] == ["request received", "checkout started", "payment ok"]
        assert {(r["user_id"], r["session_id"], r["request_id"]) for r in journey} == {("u1", "s1", "req-7")}
