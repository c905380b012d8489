"""The Discover API (/api/search, histogram, facets, record, context) against plain DuckDB.

Every expected answer is computed here with hand-written SQL over the archive's Parquet files
(`uihelp.duck`), independent of logpipe's filter compiler and reader.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from uihelp import Served, duck

ROUND_STEPS_S = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 10800, 21600, 43200, 86400, 604800, 2592000)
FACETS = (
    "level",
    "service",
    "host",
    "logger",
    "endpoint",
    "path",
    "method",
    "status",
    "user_id",
    "session_id",
    "source",
)
# Filters and the same condition written by hand in SQL (the independent answer).
CASES = [
    ("", "TRUE"),
    ("level>=WARNING service=shop", "level IN ('WARNING', 'ERROR', 'CRITICAL') AND service = 'shop'"),
    ("zanzibar", "message ILIKE '%zanzibar%' OR error ILIKE '%zanzibar%' OR attrs ILIKE '%zanzibar%'"),
    ("status>=500 method=POST", "status >= 500 AND method = 'POST'"),
    (
        "attrs.region=eu level!=DEBUG",
        "json_extract_string(attrs, '$.region') = 'eu' AND level IS DISTINCT FROM 'DEBUG'",
    ),
]
IDS = [c[0] or "everything" for c in CASES]


def get(server: Served, path: str, **params: Any) -> tuple[int, Any]:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return server.get(f"/api/{path}?{query}")


def ok(server: Served, path: str, **params: Any) -> Any:
    status, body = get(server, path, **params)
    assert status == 200, body
    return body


def iso(ts: Any) -> str:
    """A DuckDB timestamp as the API writes it (orjson: microseconds only when not zero)."""
    text = ts.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


def record_json(archive: Path, where: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Records as the API should give them: every column but message_key, ts as ISO with Z."""
    rows = duck(
        archive, f"SELECT * EXCLUDE (message_key, day) FROM logs WHERE {where} ORDER BY ts DESC, event_id DESC", params
    )
    names = [
        r[0] for r in duck(archive, "SELECT column_name FROM (DESCRIBE SELECT * EXCLUDE (message_key, day) FROM logs)")
    ]
    out = []
    for row in rows:
        rec = dict(zip(names, row, strict=True))
        rec["ts"] = iso(rec["ts"])
        out.append(rec)
    return out


@pytest.mark.parametrize(("q", "where"), CASES, ids=IDS)
def test_search_pages_newest_first_and_counts_every_match(
    ui_server: Served, ui_data: dict[str, Any], q: str, where: str
) -> None:
    archive = ui_data["archive"]
    expected = [r[0] for r in duck(archive, f"SELECT event_id FROM logs WHERE {where} ORDER BY ts DESC, event_id DESC")]
    assert expected, f"{q!r} matches nothing: the test would prove nothing"
    got: list[str] = []
    after = None
    pages = 0
    while True:
        # The rows come uncounted (read newest first, only as far as the page needs); with
        # count=1 the same page also carries every match's count.
        body = ok(ui_server, "search", q=q, limit=400, after=after)
        counted = ok(ui_server, "search", q=q, limit=400, after=after, count=1)
        assert "total" not in body and counted["rows"] == body["rows"] and counted["next"] == body["next"]
        assert counted["total"] == len(expected) and counted["total_exact"] is True
        assert len(body["rows"]) <= 400
        got.extend(r["event_id"] for r in body["rows"])
        pages += 1
        after = body["next"]
        if after is None:
            break
    assert got == expected
    assert pages == max(1, -(-len(expected) // 400))


def test_search_rows_are_whole_records(ui_server: Served, ui_data: dict[str, Any]) -> None:
    body = ok(ui_server, "search", q="level=ERROR", limit=50)
    expected = record_json(ui_data["archive"], "level = 'ERROR'")[:50]
    assert body["rows"] == expected
    assert any(r["error"] for r in body["rows"]) and any(r["attrs"] for r in body["rows"])


def test_paging_is_stable_while_newer_records_would_come_first(ui_server: Served, ui_data: dict[str, Any]) -> None:
    # The cursor is (ts, event_id): page 2 starts right after page 1's last row whatever is newer.
    first = ok(ui_server, "search", limit=7)
    second = ok(ui_server, "search", limit=7, after=first["next"])
    both = ok(ui_server, "search", limit=14)
    assert [r["event_id"] for r in first["rows"] + second["rows"]] == [r["event_id"] for r in both["rows"]]
    micros, _, event_id = first["next"].partition("~")
    last = first["rows"][-1]
    assert event_id == last["event_id"]
    assert datetime.fromtimestamp(int(micros) / 1e6, tz=UTC).isoformat()[:23] == last["ts"][:23]


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "ten"}, {"after": "nonsense"}])
def test_search_refuses_bad_paging(ui_server: Served, params: dict[str, str]) -> None:
    status, body = get(ui_server, "search", **params)
    assert status == 400
    assert body["error"] and "\n" not in body["error"]


def test_time_range_is_from_inclusive_to_exclusive(ui_server: Served, ui_data: dict[str, Any]) -> None:
    archive = ui_data["archive"]
    ((lo, hi),) = duck(
        archive, "SELECT epoch_us(quantile_disc(ts, 0.25)) // 1000, epoch_us(quantile_disc(ts, 0.5)) // 1000 FROM logs"
    )
    # Epoch-ms bounds, as the page's zoom sends them: ts >= from and ts < to, to the microsecond.
    ((exact,),) = duck(
        archive,
        "SELECT count(*) FROM logs WHERE ts >= make_timestamptz(? * 1000) AND ts < make_timestamptz(? * 1000)",
        [lo, hi],
    )
    body = ok(ui_server, "search", **{"from": lo, "to": hi, "limit": 1, "count": 1})
    assert body["total"] == exact
    assert exact > 100


def histogram_expected(archive: Path, where: str, step_ms: int, lo_ms: int, hi_ms: int) -> dict[int, dict[str, int]]:
    rows = duck(
        archive,
        f"SELECT epoch_us(ts) // 1000 // ? * ? AS t, coalesce(level, '(none)'), count(*) FROM logs "
        f"WHERE ({where}) AND ts >= make_timestamptz(? * 1000) AND ts < make_timestamptz(? * 1000) GROUP BY ALL",
        [step_ms, step_ms, lo_ms, hi_ms],
    )
    out: dict[int, dict[str, int]] = {}
    for t, level, n in rows:
        out.setdefault(int(t), {})[level] = int(n)
    return out


def check_histogram(body: dict[str, Any], archive: Path, where: str) -> None:
    ((total,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where}")
    assert body["total"] == total == sum(b["n"] for b in body["buckets"])
    step, lo, hi = body["step_ms"], body["from"], body["to"]
    # The smallest round step that gives at most 120 buckets, buckets on multiples of it (UTC).
    assert step // 1000 in ROUND_STEPS_S
    span = hi - lo
    assert -(-span // step) <= 120
    smaller = [s * 1000 for s in ROUND_STEPS_S if s * 1000 < step]
    assert all(-(-span // s) > 120 for s in smaller)
    starts = [b["t"] for b in body["buckets"]]
    assert starts == list(range(lo // step * step, hi, step))
    shown = {b["t"]: b["levels"] for b in body["buckets"] if b["n"]}
    assert shown == histogram_expected(archive, where, step, lo, hi)
    for b in body["buckets"]:
        assert b["n"] == sum(b["levels"].values())


@pytest.mark.parametrize(("q", "where"), CASES, ids=IDS)
def test_histogram_buckets_are_duckdbs(ui_server: Served, ui_data: dict[str, Any], q: str, where: str) -> None:
    archive = ui_data["archive"]
    body = ok(ui_server, "histogram", q=q)
    check_histogram(body, archive, where)
    # Without a range the window is the matches' own first and last record.
    ((first, last),) = duck(
        archive, f"SELECT epoch_us(min(ts)) // 1000, epoch_us(max(ts)) // 1000 FROM logs WHERE {where}"
    )
    assert body["from"] == first and body["to"] == last + 1


def test_histogram_of_a_zoomed_range(ui_server: Served, ui_data: dict[str, Any]) -> None:
    archive = ui_data["archive"]
    ((lo, hi),) = duck(
        archive,
        "SELECT epoch_us(quantile_disc(ts, 0.3)) // 1000 + 123, epoch_us(quantile_disc(ts, 0.4)) // 1000 FROM logs",
    )
    body = ok(ui_server, "histogram", q="service=auth", **{"from": lo, "to": hi})
    assert (body["from"], body["to"]) == (lo, hi)
    where = f"service = 'auth' AND ts >= make_timestamptz({int(lo)} * 1000) AND ts < make_timestamptz({int(hi)} * 1000)"
    check_histogram(body, archive, where)
    assert body["step_ms"] < 30_000  # a tenth of the data's span gets finer buckets than the whole


def facets_expected(archive: Path, where: str, size: int) -> dict[str, Any]:
    ((total,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where}")
    fields = []
    for name in FACETS:
        top = duck(
            archive,
            f'SELECT "{name}", count(*) AS n FROM logs WHERE ({where}) AND "{name}" IS NOT NULL '
            f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
            [size],
        )
        ((missing,),) = duck(archive, f'SELECT count(*) FROM logs WHERE ({where}) AND "{name}" IS NULL')
        if missing == total:
            continue
        shown = sum(n for _, n in top)
        fields.append(
            {
                "field": name,
                "values": [{"value": v, "count": n} for v, n in top],
                "missing": missing,
                "other": total - missing - shown,
            }
        )
    return {"total": total, "fields": fields}


@pytest.mark.parametrize(("q", "where"), CASES, ids=IDS)
def test_facets_are_duckdbs_group_by(ui_server: Served, ui_data: dict[str, Any], q: str, where: str) -> None:
    body = ok(ui_server, "facets", q=q)
    assert body == facets_expected(ui_data["archive"], where, 5)
    assert len(body["fields"]) >= 8


def test_facets_size(ui_server: Served, ui_data: dict[str, Any]) -> None:
    body = ok(ui_server, "facets", q="level>=WARNING", size=12)
    assert body == facets_expected(ui_data["archive"], "level IN ('WARNING', 'ERROR', 'CRITICAL')", 12)
    assert get(ui_server, "facets", size=0)[0] == 400


def a_request_record(archive: Path) -> tuple[str, str]:
    """The event_id and request_id of the middle line of a request with three or more lines."""
    ((rid,),) = duck(
        archive, "SELECT request_id FROM logs GROUP BY 1 HAVING count(*) >= 3 ORDER BY 1 LIMIT 1 OFFSET 50"
    )
    ids = [r[0] for r in duck(archive, "SELECT event_id FROM logs WHERE request_id = ? ORDER BY ts, event_id", [rid])]
    return ids[1], rid


def test_record_is_the_archives_row(ui_server: Served, ui_data: dict[str, Any]) -> None:
    event_id, _ = a_request_record(ui_data["archive"])
    body = ok(ui_server, "record", id=event_id)
    assert body == record_json(ui_data["archive"], "event_id = ?", [event_id])[0]


def test_context_is_the_source_around_it_and_its_request(ui_server: Served, ui_data: dict[str, Any]) -> None:
    archive = ui_data["archive"]
    event_id, rid = a_request_record(archive)
    body = ok(ui_server, "context", id=event_id, n=5)
    ((source, offset),) = duck(archive, 'SELECT source, "offset" FROM logs WHERE event_id = ?', [event_id])
    before = duck(
        archive,
        'SELECT event_id FROM logs WHERE source = ? AND "offset" < ? ORDER BY "offset" DESC LIMIT 5',
        [source, offset],
    )
    after = duck(
        archive,
        'SELECT event_id FROM logs WHERE source = ? AND "offset" > ? ORDER BY "offset" LIMIT 5',
        [source, offset],
    )
    assert body["record"]["event_id"] == event_id
    assert [r["event_id"] for r in body["before"]] == [r[0] for r in reversed(before)]
    assert [r["event_id"] for r in body["after"]] == [r[0] for r in after]
    shown = {event_id, *(r[0] for r in before), *(r[0] for r in after)}
    request = [
        r[0] for r in duck(archive, "SELECT event_id FROM logs WHERE request_id = ? ORDER BY ts, event_id", [rid])
    ]
    assert [r["event_id"] for r in body["request"]] == [i for i in request if i not in shown]
    assert len(body["before"]) == 5 and len(body["after"]) == 5


def test_a_missing_record_is_404(ui_server: Served) -> None:
    for path in ("record", "context"):
        status, body = get(ui_server, path, id="no-such-event")
        assert status == 404
        assert body == {"error": "no record with event_id 'no-such-event'"}
    assert get(ui_server, "record")[0] == 400


@pytest.mark.parametrize("path", ["search", "histogram", "facets"])
@pytest.mark.parametrize("q", ["status>abc", "nosuchfield=1", 'message="open', "path~(", "level=LOUD"])
def test_a_bad_filter_is_400_with_one_sentence(ui_server: Served, path: str, q: str) -> None:
    status, body = get(ui_server, path, q=q)
    assert status == 400
    assert body["error"].startswith("bad filter") and "\n" not in body["error"]


HOSTILE = ["x'; DROP TABLE logs; --", 'a"b', "'", "%", "_", "\\", "') OR 1=1 --"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_just_values(ui_server: Served, ui_data: dict[str, Any], value: str) -> None:
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    for q in (f"service={quoted}", f"attrs.region={quoted}", quoted, f"user_id!={quoted}"):
        body = ok(ui_server, "search", q=q, limit=1, count=1)
        hist = ok(ui_server, "histogram", q=q)
        facets = ok(ui_server, "facets", q=q)
        if q.startswith("user_id!="):
            ((n,),) = duck(ui_data["archive"], "SELECT count(*) FROM logs WHERE user_id IS DISTINCT FROM ?", [value])
        elif q.startswith('"'):
            like = "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            ((n,),) = duck(
                ui_data["archive"],
                "SELECT count(*) FROM logs WHERE message ILIKE ? ESCAPE '\\' "
                "OR error ILIKE ? ESCAPE '\\' OR attrs ILIKE ? ESCAPE '\\'",
                [like] * 3,
            )
        else:
            n = 0
        assert body["total"] == hist["total"] == facets["total"] == n
    # Nothing was dropped or changed: every record is still there.
    assert ok(ui_server, "search", limit=1, count=1)["total"] == len(ui_data["objects"])


def test_an_empty_archive_answers_no_records(serve: Callable[..., Served], tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    server = serve("--archive", str(tmp_path / "archive"))
    assert ok(server, "search") == {"rows": [], "next": None}
    assert ok(server, "search", count=1) == {"rows": [], "total": 0, "total_exact": True, "next": None}
    hist = ok(server, "histogram")
    assert hist["total"] == 0 and hist["buckets"] == []
    assert ok(server, "facets") == {"total": 0, "fields": []}
    hist = ok(server, "histogram", **{"from": "1h"})
    assert hist["total"] == 0 and all(b["n"] == 0 for b in hist["buckets"]) and 60 <= len(hist["buckets"]) <= 120


def test_nothing_matching_is_empty_not_an_error(ui_server: Served) -> None:
    q = "no-such-word-anywhere"
    assert ok(ui_server, "search", q=q)["rows"] == []
    assert ok(ui_server, "histogram", q=q)["buckets"] == []
    assert ok(ui_server, "facets", q=q) == {"total": 0, "fields": []}
    assert (
        json.dumps(
            ok(ui_server, "search", q=q, count=1, **{"from": "2000-01-01T00:00:00Z", "to": "2000-01-02T00:00:00Z"})[
                "total"
            ]
        )
        == "0"
    )


EXTRA = ("attrs.region", "attrs.ctx.shard", "attrs.ctx.attempt", "trace_id", "duration_ms")


def test_extra_facets_by_name_are_duckdbs(ui_server: Served, ui_data: dict[str, Any]) -> None:
    archive = ui_data["archive"]
    where = "level = 'ERROR'"
    body = ok(ui_server, "facets", q="level=ERROR", size=4, fields=",".join(EXTRA))
    assert [f["field"] for f in body["fields"]][: len(body["fields"]) - len(EXTRA)] == [
        f["field"] for f in facets_expected(archive, where, 4)["fields"]
    ]
    extra = {f["field"]: f for f in body["fields"][-len(EXTRA) :]}
    assert list(extra) == list(EXTRA)
    ((total,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where}")
    for name in EXTRA:
        column = "json_extract_string(attrs, ?)" if name.startswith("attrs.") else f'"{name}"'
        path = ["$." + ".".join(f'"{k}"' for k in name.split(".")[1:])] if name.startswith("attrs.") else []
        top = duck(
            archive,
            f"SELECT {column} AS v, count(*) AS n FROM logs WHERE {where} AND v IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT 4",
            path,
        )
        ((missing,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where} AND {column} IS NULL", path)
        assert extra[name] == {
            "field": name,
            "values": [{"value": v, "count": n} for v, n in top],
            "missing": missing,
            "other": total - missing - sum(n for _, n in top),
        }
    assert extra["trace_id"]["missing"] == total  # asked for by name: shown even when no record has it
    assert extra["attrs.region"]["values"] and extra["duration_ms"]["values"]


@pytest.mark.parametrize("fields", ["message", "ts", "attrs", "attrs.a'b", "nosuch", "a,b,c,d,e,f", "attrs.x;DROP"])
def test_extra_facet_names_are_checked(ui_server: Served, fields: str) -> None:
    status, body = get(ui_server, "facets", fields=fields)
    assert status == 400 and body["error"].startswith("fields: ")
