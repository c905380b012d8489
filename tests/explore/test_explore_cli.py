"""`logpipe search`, `tail` and `context` through the real CLI on an archive shipped by `ship --once`.

Every answer is compared with plain Python over the objects the test wrote (or, for attrs, a
DuckDB query written here by hand over the archive's Parquet files).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.archive import WHOLE_EVENT_ID
from tests.support.exdata import extras, free_text_hit, generate, logpipe, ts_of, write_log

LINES = 3000
Obj = dict[str, Any]


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("explore")
    objects = generate(LINES)
    offset = 0
    for obj in objects:
        obj["_offset"] = offset
        offset += len((json.dumps({k: v for k, v in obj.items() if k != "_offset"}) + "\n").encode())
    write_log(folder / "app.log", [{k: v for k, v in o.items() if k != "_offset"} for o in objects])
    result = logpipe("ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--no-progress")
    assert result.returncode == 0, result.stderr
    return {"archive": folder / "archive", "objects": objects, "start": ts_of(objects[0])}


def run_json(shipped: dict[str, Any], *args: str) -> list[Obj]:
    result = logpipe(*args, "--archive", str(shipped["archive"]), "--format", "json")
    assert result.returncode == 0, result.stderr
    rows: list[Obj] = json.loads(result.stdout)
    return rows


def key(row: Obj) -> tuple[datetime, str]:
    return datetime.fromisoformat(row["ts"].replace("Z", "+00:00")), row["message"]


def obj_key(obj: Obj) -> tuple[datetime, str]:
    return ts_of(obj), obj["message"]


def newest(objects: list[Obj], keep: Callable[[Obj], bool], limit: int = 10_000) -> list[tuple[datetime, str]]:
    return sorted((obj_key(o) for o in objects if keep(o)), reverse=True)[:limit]


SEVERITY = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
CASES: list[tuple[list[str], Callable[[Obj], bool]]] = [
    (["zanzibar"], lambda o: free_text_hit(o, "zanzibar")),
    (["QUOKKA"], lambda o: free_text_hit(o, "quokka")),  # only in stack traces
    (["narwhal"], lambda o: free_text_hit(o, "narwhal")),  # only in an attrs value
    (
        ["level>=WARNING", "--where", "service=shop"],
        lambda o: SEVERITY.index(o["level"]) >= 3 and o["service"] == "shop",
    ),
    (["status>=500 method=POST"], lambda o: o.get("status", 0) >= 500 and o.get("method") == "POST"),
    (
        ["duration_ms<10.5", "--where", "service!=auth"],
        lambda o: o.get("duration_ms") is not None and o["duration_ms"] < 10.5 and o["service"] != "auth",
    ),
    (["path~^/api/orders/[0-9]+$"], lambda o: o.get("path", "").startswith("/api/orders/")),
    (["level=error", '"handling /health"'], lambda o: o["level"] == "ERROR" and "handling /health" in o["message"]),
    (
        ["attrs.ctx.shard=a", "attrs.ctx.attempt>=2", "attrs.region!~^e"],
        lambda o: o["ctx"]["shard"] == "a" and o["ctx"]["attempt"] >= 2 and not o["region"].startswith("e"),
    ),
    (["request_id=req-00042"], lambda o: o["request_id"] == "req-00042"),
]


@pytest.mark.parametrize(("args", "keep"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_search_matches_plain_python(shipped: dict[str, Any], args: list[str], keep: Callable[[Obj], bool]) -> None:
    want = newest(shipped["objects"], keep)
    assert want, "the case must match something, or it proves nothing"
    rows = run_json(shipped, "search", *args, "--limit", "100000")
    assert [key(r) for r in rows] == want


def test_search_limit_since_until(shipped: dict[str, Any]) -> None:
    since = shipped["start"] + timedelta(minutes=10)
    until = since + timedelta(minutes=15)
    want = newest(shipped["objects"], lambda o: since <= ts_of(o) < until and o["level"] == "INFO", limit=7)
    rows = run_json(
        shipped, "search", "level=INFO", "--since", since.isoformat(), "--until", until.isoformat(), "--limit", "7"
    )
    assert [key(r) for r in rows] == want and len(want) == 7


def test_attrs_filters_agree_with_a_hand_written_duckdb_query(shipped: dict[str, Any]) -> None:
    parts = [str(p) for p in Path(shipped["archive"], "logs").rglob("*.parquet")]
    want = (
        duckdb.connect()
        .execute(
            f"SELECT {WHOLE_EVENT_ID} FROM read_parquet(?) WHERE json_extract_string(attrs, '$.ctx.shard') = 'b' "
            "AND CAST(json_extract(attrs, '$.ctx.attempt') AS INTEGER) < 2 ORDER BY ts DESC",
            [parts],
        )
        .fetchall()
    )
    rows = run_json(shipped, "search", "attrs.ctx.shard=b attrs.ctx.attempt<2", "--limit", "100000")
    assert [r["event_id"] for r in rows] == [w[0] for w in want] and want


NOTHING = "no records match (check the filters, --since and --archive)\n"


def test_empty_results_are_not_errors_and_say_so_on_stderr(shipped: dict[str, Any]) -> None:
    """#20 item 16: nothing on stdout that a script could mistake for records, one line on stderr."""
    archive = str(shipped["archive"])
    as_json = logpipe("search", "no-such-word-anywhere", "--archive", archive, "--format", "json")
    assert (as_json.returncode, json.loads(as_json.stdout), as_json.stderr) == (0, [], NOTHING)
    as_table = logpipe("search", "no-such-word-anywhere", "--archive", archive)
    assert (as_table.returncode, as_table.stdout, as_table.stderr) == (0, "", NOTHING)
    as_csv = logpipe("tail", "no-such-word-anywhere", "--archive", archive, "--format", "csv")
    assert as_csv.returncode == 0 and as_csv.stdout.splitlines()[0].startswith("ts,level,message,")
    assert len(as_csv.stdout.splitlines()) == 1 and as_csv.stderr == NOTHING


@pytest.mark.parametrize(
    ("args", "option", "keep"),
    [
        (["search", "level>=WARNING", "--limit", "7"], "--limit 7", lambda o: SEVERITY.index(o["level"]) >= 3),
        (["tail", "service=shop", "-n", "5"], "-n 5", lambda o: o["service"] == "shop"),
        (["search", "zanzibar", "--format", "ndjson", "-n", "3"], "--limit 3", lambda o: free_text_hit(o, "zanzibar")),
    ],
)
def test_a_limited_result_says_n_of_m(
    shipped: dict[str, Any], args: list[str], option: str, keep: Callable[[Obj], bool]
) -> None:
    """#20 item 16: "N of M shown" on stderr when the limit cut the answer, M counted in Python."""
    matching = sum(1 for o in shipped["objects"] if keep(o))
    shown = int(option.split()[-1])
    assert matching > shown
    result = logpipe(*args, "--archive", str(shipped["archive"]))
    assert result.returncode == 0
    assert result.stderr == f"{shown} of {matching:,} matching records shown ({option})\n"
    whole = logpipe(
        *args[:-2], "--limit" if args[0] == "search" else "-n", str(matching), "--archive", str(shipped["archive"])
    )
    assert whole.returncode == 0 and whole.stderr == ""  # nothing cut: nothing to say


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["search", "colour=red"], "error: bad filter 'colour=red': unknown field 'colour'"),
        (["search", "--where", "status>lots"], "error: bad filter 'status>lots': 'lots' is not a number"),
        (["tail", "message~(?=x)"], "error: bad filter 'message~(?=x)': bad regular expression (RE2: "),
        (["search", "--since", "soon"], "error: bad time expression 'soon'"),
        (["context", "no-such-id"], "error: no record with event_id 'no-such-id'"),
    ],
)
def test_bad_input_is_one_red_line(shipped: dict[str, Any], args: list[str], named: str) -> None:
    result = logpipe(*args, "--archive", str(shipped["archive"]))
    assert result.returncode in (1, 2), result
    assert result.stderr.startswith(named) and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_table_fits_80_columns_drops_empty_columns_and_keeps_the_message(shipped: dict[str, Any]) -> None:
    result = logpipe("search", "step", "--archive", str(shipped["archive"]), "--limit", "50", env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 51
    assert all(len(line) <= 80 for line in lines), max(lines, key=len)
    header = lines[0].split()
    assert header[:2] == ["ts", "level"] and header[-1] == "message"
    assert "session_id" not in header and "trace_id" not in header
    want = newest(shipped["objects"], lambda o: "step" in o["message"].lower(), limit=50)
    for line, (ts, message) in zip(lines[1:], want, strict=True):
        assert line.startswith(ts.strftime("%H:%M:%S.") + f"{ts.microsecond // 1000:03d}")
        shown = line.rsplit("  ", 1)[1].rstrip("…")
        assert message.startswith(shown) and len(shown) >= 25
    only_logs = logpipe("search", "level=DEBUG", "--archive", str(shipped["archive"]), "--limit", "20")
    # No record of step > 0 has a status: a search for them shows no status column at all.
    quiet = logpipe("search", '"step 1 "', "--archive", str(shipped["archive"]), "--limit", "20")
    assert (
        "status" not in quiet.stdout.splitlines()[0]
        and "status" in logpipe("search", "--archive", str(shipped["archive"]), '"step 0 "').stdout.splitlines()[0]
    )
    assert only_logs.returncode == 0
    wide = logpipe("search", "zanzibar", "--archive", str(shipped["archive"]), "--wide", "--limit", "3")
    assert "event_id" in wide.stdout.splitlines()[0] and "attrs" in wide.stdout.splitlines()[0]


def test_tail_prints_the_last_matching_records_oldest_first(shipped: dict[str, Any]) -> None:
    want = sorted(obj_key(o) for o in shipped["objects"] if o["service"] == "auth" and o["level"] == "ERROR")[-12:]
    rows = run_json(shipped, "tail", "-n", "12", "service=auth", "level=ERROR")
    assert [key(r) for r in rows] == want


def test_context_shows_the_source_around_and_the_rest_of_the_request(shipped: dict[str, Any]) -> None:
    objects: list[Obj] = shipped["objects"]
    at = next(
        i for i, o in enumerate(objects) if i > 1500 and o["level"] == "ERROR" and o["message"].startswith("step 1")
    )
    target = objects[at]
    event = next(
        r for r in run_json(shipped, "search", f"request_id={target['request_id']}") if key(r) == obj_key(target)
    )
    rows = run_json(shipped, "context", event["event_id"], "-n", "4")
    around = [objects[i] for i in range(at - 4, at + 5)]
    shown = {id(o) for o in around}
    request = sorted((o for o in objects if o["request_id"] == target["request_id"] and id(o) not in shown), key=ts_of)
    want = [("before", o) for o in around[:4]] + [("match", target)] + [("after", o) for o in around[5:]]
    want += [("request", o) for o in request]
    assert [(r["context"], key(r), r["offset"]) for r in rows] == [(m, obj_key(o), o["_offset"]) for m, o in want]
    table = logpipe("context", event["event_id"], "-n", "4", "--archive", str(shipped["archive"]))
    marked = [line for line in table.stdout.splitlines() if line.startswith(">>")]
    assert len(marked) == 1 and target["message"][:20] in marked[0]
    assert f"the rest of request {target['request_id']}: {len(request)} more records" in table.stdout
    assert extras(target)  # the record has attrs: context shows the real record, not a copy
