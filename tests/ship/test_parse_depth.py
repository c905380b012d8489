"""Deeply nested JSON (issue #12, item 13): valid records up to MAX_DEPTH (1,000) are records whose
attrs round-trip to what json.loads makes of the line; deeper ones are dead letters with a reason,
however deep (no recursion anywhere to crash)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from parse_support import rows, run
from shiphelp import archive_rows, run_logpipe

from logpipe.limits import MAX_DEPTH

GOOD = b'{"message":"ok","timestamp":"2026-11-20T10:00:00Z"}'


def nested(depth: int, arrays: bool) -> bytes:
    """A record `depth` containers deep in all (the record itself counts 1), under key `deep`."""
    opener, closer = (b"[", b"]") if arrays else (b'{"k":', b"}")
    inner = opener * (depth - 2) + b"{}" + closer * (depth - 2)
    return b'{"message":"m","timestamp":"2026-11-20T10:00:00Z","deep":' + inner + b"}"


@contextlib.contextmanager
def python_recursion(limit: int) -> Iterator[None]:
    """json.loads (the independent parser) recurses once per level: give it room for 1,000."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def same_deep(attrs: str, line: bytes) -> bool:
    """attrs is `{"deep": ...}` of the line, as json.loads reads both (comparing recurses too)."""
    with python_recursion(MAX_DEPTH * 3):
        return bool(json.loads(attrs) == {"deep": json.loads(line)["deep"]})


def test_documented_limit() -> None:
    """At least 1,000 deep (serde_json stops at 128, orjson at 1,024), and the native scanner
    enforces the documented number, not a copy that could drift."""
    from logpipe._native import MAX_DEPTH as NATIVE_MAX_DEPTH

    assert MAX_DEPTH == NATIVE_MAX_DEPTH == 1000


class TestAccepted:
    """Every depth up to the limit is a record whose attrs equal json.loads' `deep`."""

    @pytest.mark.parametrize("arrays", [False, True], ids=["objects", "arrays"])
    @pytest.mark.parametrize("depth", [63, 64, 65, 128, 129, 500, 999, 1000])
    def test_record_and_attrs_round_trip(self, depth: int, arrays: bool) -> None:
        line = nested(depth, arrays)
        batch = run(GOOD + b"\n" + line + b"\n")
        assert batch.rejects == ()
        got = rows(batch)
        assert len(got) == 2
        assert same_deep(got[1]["attrs"], line)

    @pytest.mark.parametrize("arrays", [False, True], ids=["objects", "arrays"])
    def test_one_past_the_limit_is_too_deep(self, arrays: bool) -> None:
        """MAX_DEPTH + 1 is a dead letter naming the depth and the limit; its neighbours are records."""
        batch = run(GOOD + b"\n" + nested(MAX_DEPTH + 1, arrays) + b"\n" + GOOD + b"\n")
        assert [(r.reason, r.detail) for r in batch.rejects] == [
            ("too_deep", f"nesting depth {MAX_DEPTH + 1} > {MAX_DEPTH}")
        ]
        assert batch.records.num_rows == 2


class TestThroughTheCli:
    """`logpipe ship --once` on a real file: deep records archived intact, absurd ones dead-lettered."""

    def test_deep_records_and_absurd_depth(self, tmp_path: Path) -> None:
        """Depth 1,000 is archived with attrs equal to json.loads'; 100,000 deep (objects and
        arrays, ~0.5 MB lines) is a `too_deep` dead letter, the run ends 0 and keeps every other line."""
        deep = nested(1000, arrays=False)
        absurd = [nested(100_000, arrays=False), nested(100_000, arrays=True)]
        log = tmp_path / "deep.log"
        log.write_bytes(b"".join(line + b"\n" for line in (GOOD, deep, absurd[0], GOOD, absurd[1], nested(128, True))))
        archive = tmp_path / "archive"
        res = run_logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert res.code == 0, res.err
        assert "Traceback" not in res.err
        stored = sorted(archive_rows(archive, ["offset", "attrs"]), key=lambda r: r["offset"])
        assert len(stored) == 4
        assert same_deep(stored[1]["attrs"], deep)
        dead = sorted(
            archive_rows(archive, ["offset", "reason", "detail"], table="dead_letters"), key=lambda r: r["offset"]
        )
        assert [(d["reason"], d["detail"]) for d in dead] == [("too_deep", f"nesting depth 100000 > {MAX_DEPTH}")] * 2
        offsets = [0]
        for line in (GOOD, deep, absurd[0], GOOD, absurd[1]):
            offsets.append(offsets[-1] + len(line) + 1)
        assert [d["offset"] for d in dead] == [offsets[2], offsets[4]]


class TestInContainerEnvelopes:
    """A Docker json-file line wrapping a deep record: the same verdicts as a bare line."""

    @staticmethod
    def _docker(inner: bytes) -> bytes:
        return (
            json.dumps({"log": inner.decode() + "\n", "stream": "stdout", "time": "2026-11-20T10:00:00.5Z"}).encode()
            + b"\n"
        )

    def test_deep_inner_record(self) -> None:
        """Depth 1,000 inside the envelope is a record with its attrs intact."""
        inner = nested(1000, arrays=True)
        batch = run(self._docker(inner), "docker")
        (row,) = rows(batch)
        assert batch.rejects == () and same_deep(row["attrs"], inner)

    @pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000])
    def test_too_deep_inner_record_is_a_dead_letter(self, depth: int) -> None:
        """Past the limit (also past orjson's 1,024, which the envelope check uses) it is a
        `too_deep` dead letter, not a plain-text message holding the JSON."""
        batch = run(self._docker(nested(depth, arrays=False)), "docker")
        assert batch.records.num_rows == 0
        assert [(r.reason, r.detail) for r in batch.rejects] == [("too_deep", f"nesting depth {depth} > {MAX_DEPTH}")]
