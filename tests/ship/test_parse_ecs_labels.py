"""ECS request context from `labels` (issue #12, item 14).

ECS has no session field, and apps put their own ids in `labels` (ecs-logging:
`extra={"labels": {...}}`). The ECS fields (`http.request.id`, `user.id`, `session.id`) win when a
record has them; `labels.request_id`/`labels.user_id`/`labels.session_id` fill in when it does not.
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import ecs_logging
import pytest
from parse_support import attrs, detect_file, rows, run
from shiphelp import run_logpipe


def _ecs_lines(calls: list[tuple[str, dict[str, Any]]]) -> str:
    """What the real ecs-logging StdlibFormatter writes for these (message, extra) calls."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(ecs_logging.StdlibFormatter())
    log = logging.getLogger("ecs.labels")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    for message, extra in calls:
        log.info(message, extra=extra)
    return buf.getvalue()


LABELLED = [
    ("login", {"labels": {"request_id": "req-1", "user_id": "u1", "session_id": "s1"}}),
    ("cart", {"labels": {"request_id": "req-1"}}),  # later lines of a request name only the request
    ("pay", {"labels": {"request_id": "req-2", "session_id": "s1", "tenant": "acme"}}),
]


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("ecs") / "ecs.log"
    path.write_text(_ecs_lines(LABELLED))
    return {
        "profile": detect_file(path),
        "rows": rows(run(path.read_bytes(), "ecs")),
        "lines": [json.loads(x) for x in path.read_text().splitlines()],
    }


class TestLabels:
    def test_written_nested_under_labels(self, labelled: dict[str, Any]) -> None:
        """The premise: ecs-logging nests the extra ids under `labels` and is detected as ECS."""
        assert labelled["profile"] == "ecs"
        assert labelled["lines"][0]["labels"] == {"request_id": "req-1", "session_id": "s1", "user_id": "u1"}

    def test_ids_read_from_labels(self, labelled: dict[str, Any]) -> None:
        """request, user and session ids come from labels; the request's later line is filled in."""
        got = [(r["request_id"], r["user_id"], r["session_id"]) for r in labelled["rows"]]
        assert got == [("req-1", "u1", "s1"), ("req-1", "u1", "s1"), ("req-2", None, "s1")]

    def test_labels_stay_in_attrs(self, labelled: dict[str, Any]) -> None:
        """Reading a nested key consumes nothing: labels is kept whole in attrs."""
        for row, line in zip(labelled["rows"], labelled["lines"], strict=True):
            assert attrs(row)["labels"] == line["labels"]

    def test_ecs_fields_win(self) -> None:
        """With both, `http.request.id`, `user.id` and `session.id` are read, not the labels."""
        text = _ecs_lines(
            [
                (
                    "m",
                    {
                        "http.request.id": "ecs-req",
                        "user.id": "ecs-user",
                        "session.id": "ecs-sess",
                        "labels": {"request_id": "l-req", "user_id": "l-user", "session_id": "l-sess"},
                    },
                )
            ]
        )
        (row,) = rows(run(text.encode(), "ecs"))
        assert (row["request_id"], row["user_id"], row["session_id"]) == ("ecs-req", "ecs-user", "ecs-sess")

    def test_dotted_label_keys(self) -> None:
        """Writers that flatten ECS (`"labels.user_id": ...`) are read too."""
        line = {
            "@timestamp": "2026-11-20T10:00:00Z",
            "log.level": "info",
            "message": "m",
            "ecs.version": "1.6.0",
            "labels.request_id": "r",
            "labels.user_id": "u",
            "labels.session_id": "s",
        }
        (row,) = rows(run(json.dumps(line).encode() + b"\n", "ecs"))
        assert (row["request_id"], row["user_id"], row["session_id"]) == ("r", "u", "s")


def test_session_journey_through_the_cli(tmp_path: Path) -> None:
    """`logpipe ship --once` auto-detects the ECS file, and `query journey --session s1` finds
    both requests of the session (req-1 through its first line's labels)."""
    log = tmp_path / "ecs.log"
    log.write_text(_ecs_lines(LABELLED))
    archive = tmp_path / "archive"
    shipped = run_logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert shipped.code == 0, shipped.err
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    got = run_logpipe(
        "query", "journey", "--session", "s1", "--since", since, "--archive", str(archive), "--format", "json"
    )
    assert got.code == 0, got.err
    journey = json.loads(got.out)
    assert sorted((r["message"], r["request_id"], r["session_id"]) for r in journey) == [
        ("cart", "req-1", "s1"),
        ("login", "req-1", "s1"),
        ("pay", "req-2", "s1"),
    ]
