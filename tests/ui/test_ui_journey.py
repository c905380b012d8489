"""The Journey view: `/api/journey` and `/api/journey/users` against DuckDB over the Parquet files, then the page.

A user's journey, computed here: every record in the range that carries the user_id or belongs
to a request one of whose records carries it; a record's session is its own or its request's.
"""

from __future__ import annotations

import itertools
import json
import re
import urllib.parse
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from groupsdata import after, api, iso, middle_window, when
from uihelp import Served, duck, rendered


def expected(
    archive: Path, kind: str, value: str, since: datetime | None = None, until: datetime | None = None
) -> dict[str, Any]:
    """session -> request -> [(ts, event_id, status)] of the subject's records, and the access statuses."""
    column = {"user": "user_id", "session": "session_id", "request": "request_id"}[kind]
    ctx = {
        rid: (user, session)
        for rid, user, session in duck(
            archive,
            "SELECT request_id, max(user_id), max(session_id) FROM logs WHERE request_id IS NOT NULL GROUP BY 1",
        )
    }
    mine = {
        rid
        for (rid,) in duck(
            archive, f"SELECT DISTINCT request_id FROM logs WHERE request_id IS NOT NULL AND {column} = ?", [value]
        )
    }
    rows = duck(
        archive,
        "SELECT ts, event_id, request_id, session_id, user_id, status FROM logs"
        " WHERE ts >= coalesce(?, TIMESTAMPTZ '1970-01-01') AND ts < coalesce(?, TIMESTAMPTZ '2200-01-01')",
        [since, until],
    )
    tree: dict[Any, dict[Any, list[tuple[Any, ...]]]] = defaultdict(lambda: defaultdict(list))
    for ts, eid, rid, session, user, status in rows:
        own = {"user_id": user, "session_id": session, "request_id": rid}[column]
        if rid in mine or own == value:
            tree[session or ctx.get(rid, (None, None))[1]][rid].append((ts, eid, status))
    for requests in tree.values():
        for records in requests.values():
            records.sort()
    return tree


def check(answer: dict[str, Any], tree: dict[Any, dict[Any, list[tuple[Any, ...]]]]) -> None:
    assert tree, "the test needs a subject with records"
    assert answer["count"] == sum(len(r) for q in tree.values() for r in q.values())
    got = {s["session_id"]: {q["request_id"]: q for q in s["requests"]} for s in answer["sessions"]}
    assert set(got) == set(tree)
    for session, requests in tree.items():
        assert set(got[session]) == set(requests), session
        for rid, records in requests.items():
            shown = got[session][rid]
            assert shown["count"] == len(records)
            assert [when(r["ts"]) for r in shown["records"]] == [ts for ts, _, _ in records]
            statuses = [s for _, _, s in records if s is not None]
            assert shown["status"] == (statuses[-1] if statuses else None)
    firsts = [when(s["first"]) for s in answer["sessions"]]
    assert firsts == sorted(firsts)
    indexes = [r["index"] for s in answer["sessions"] for q in s["requests"] for r in q["records"]]
    assert indexes == list(range(answer["count"]))


def busiest(
    archive: Path, since: datetime | None = None, until: datetime | None = None, limit: int = 20
) -> list[tuple[str, int]]:
    return [
        (u, n)
        for u, n in duck(
            archive,
            "SELECT user_id, count(*) AS n FROM logs WHERE user_id IS NOT NULL"
            " AND ts >= coalesce(?, TIMESTAMPTZ '1970-01-01') AND ts < coalesce(?, TIMESTAMPTZ '2200-01-01')"
            " GROUP BY 1 ORDER BY n DESC, 1 LIMIT ?",
            [since, until, limit],
        )
    ]


def test_the_most_active_users_are_duckdbs(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    answer = api(groups_server, "journey/users")
    assert [(u["user_id"], u["records"]) for u in answer["users"]] == busiest(archive)
    since, until = middle_window(archive)
    answer = api(groups_server, "journey/users", limit=5, **{"from": iso(since), "to": iso(until)})
    assert [(u["user_id"], u["records"]) for u in answer["users"]] == busiest(archive, since, until, 5)


def test_a_journey_is_duckdbs_sessions_requests_and_records(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    user = busiest(archive)[0][0]
    answer = api(groups_server, "journey", user=user)
    assert answer["subject"] == {"kind": "user", "value": user}
    tree = expected(archive, "user", user)
    check(answer, tree)
    assert len(answer["sessions"]) >= 2
    # Every record is the user's (its own user_id, or its request's).
    assert {r["user_id"] for s in answer["sessions"] for q in s["requests"] for r in q["records"]} == {user}
    since, until = middle_window(archive)
    check(
        api(groups_server, "journey", user=user, **{"from": iso(since), "to": iso(until)}),
        expected(archive, "user", user, since, until),
    )
    session = answer["sessions"][-1]["session_id"]
    check(api(groups_server, "journey", session=session), expected(archive, "session", session))
    request = answer["sessions"][0]["requests"][0]["request_id"]
    check(api(groups_server, "journey", request=request), expected(archive, "request", request))


def test_no_subject_or_nothing_found(groups_server: Served) -> None:
    status, body = groups_server.get("/api/journey")
    assert status == 400 and "exactly one of user, session or request" in body["error"]
    status, body = groups_server.get("/api/journey?user=a&session=b")
    assert status == 400
    answer = api(groups_server, "journey", user="no-such-user")
    assert answer["count"] == 0 and answer["sessions"] == []


# --- the page ----------------------------------------------------------------------------------


def test_the_page_picks_a_user_and_draws_the_timeline(
    groups_server: Served, groups_data: dict[str, Any], page: Any
) -> None:
    archive = groups_data["archive"]
    page.goto(groups_server.url + "?view=journey")
    rendered(page, "journey")
    listed = [
        (li.get_attribute("data-user"), int(li.get_attribute("data-records")))
        for li in page.query_selector_all("#journey-users li")
    ]
    assert listed == busiest(archive)
    after(page, lambda: page.query_selector("#journey-users li").click())
    page.wait_for_selector("#journey-summary")
    rendered(page, "journey")
    user = listed[0][0]
    tree = expected(archive, "user", user)
    summary = page.query_selector("#journey-summary")
    assert int(summary.get_attribute("data-count")) == sum(len(r) for q in tree.values() for r in q.values())
    assert int(summary.get_attribute("data-sessions")) == len(tree)
    assert int(summary.get_attribute("data-requests")) == sum(len(q) for q in tree.values())
    sessions = {
        s.get_attribute("data-session"): int(s.get_attribute("data-count"))
        for s in page.query_selector_all(".j-session")
    }
    assert sessions == {s or "": sum(len(r) for r in q.values()) for s, q in tree.items()}
    requests = {r.get_attribute("data-request"): r for r in page.query_selector_all(".j-request")}
    flat = {rid: records for q in tree.values() for rid, records in q.items()}
    assert {k: int(v.get_attribute("data-count")) for k, v in requests.items()} == {k: len(v) for k, v in flat.items()}
    assert len(page.query_selector_all(".j-mark")) == sum(len(v) for v in flat.values())

    # A request with more than one record: click it, its records are listed; click one, it shows.
    rid = next(k for k, v in flat.items() if len(v) > 1)
    after(page, lambda: requests[rid].click())
    page.wait_for_selector("ol.j-records")
    rendered(page, "journey")
    lines = page.query_selector_all("ol.j-records li.j-record")
    assert len(lines) == len(flat[rid])
    after(page, lambda: lines[-1].click())
    page.wait_for_selector("#journey-record")
    rendered(page, "journey")
    index = int(page.get_attribute("#journey-record", "data-index"))
    _, eid, _ = flat[rid][-1]
    ((message,),) = duck(archive, "SELECT message FROM logs WHERE event_id = ?", [eid])
    assert message in page.inner_text("#journey-record")
    state = urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)
    assert state["user"] == [user] and state["open"] == [rid] and state["rec"] == [str(index)]

    copied = page.url
    page.goto("about:blank")
    page.goto(copied)
    rendered(page, "journey")
    page.wait_for_selector("#journey-record")
    assert int(page.get_attribute("#journey-record", "data-index")) == index
    assert page.get_attribute(".j-request.selected", "data-request") == rid

    # A mark on the timeline shows its record too; the record's request opens in Discover.
    mark = page.query_selector(f'.j-mark[data-index="{index}"]')
    assert mark is not None
    page.click("#journey-discover")
    page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'discover'")
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"] == [f"request_id={rid}"]


def test_the_page_follows_what_is_typed_and_says_when_there_is_nothing(
    groups_server: Served, groups_data: dict[str, Any], page: Any
) -> None:
    archive = groups_data["archive"]
    page.goto(groups_server.url + "?view=journey")
    rendered(page, "journey")
    ((session,),) = duck(
        archive, "SELECT session_id FROM logs WHERE session_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )
    page.select_option("#journey-kind", "session")
    page.fill("#journey-subject", session)
    after(page, lambda: page.press("#journey-subject", "Enter"))
    page.wait_for_selector("#journey-summary")
    rendered(page, "journey")
    tree = expected(archive, "session", session)
    assert int(page.get_attribute("#journey-summary", "data-count")) == sum(
        len(r) for q in tree.values() for r in q.values()
    )
    # A request's marks may overlap (its records are milliseconds apart): the last is on top.
    mark = page.query_selector(".j-request .j-mark:last-child")
    after(page, lambda: mark.click())
    page.wait_for_selector("#journey-record")
    assert page.get_attribute("#journey-record", "data-index") == mark.get_attribute("data-index")

    # A user's session heading zooms the axis to that session (in the URL), and back.
    user = busiest(archive)[0][0]
    tree = expected(archive, "user", user)
    page.goto(groups_server.url + "?view=journey&user=" + urllib.parse.quote(user))
    rendered(page, "journey")
    heading = page.query_selector_all(".j-session")[1]
    zoom = heading.get_attribute("data-session")
    after(page, lambda: heading.query_selector(".j-row").click())
    page.wait_for_selector(".j-session.zoomed")
    rendered(page, "journey")
    assert [s.get_attribute("data-session") for s in page.query_selector_all(".j-session")] == [zoom]
    assert {r.get_attribute("data-request") for r in page.query_selector_all(".j-request")} == set(tree[zoom])
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["zoom"] == [zoom]
    page.reload()
    rendered(page, "journey")
    page.wait_for_selector(".j-session.zoomed")
    after(page, lambda: page.click("#journey-unzoom"))
    page.wait_for_function("() => !new URLSearchParams(location.search).has('zoom')")
    rendered(page, "journey")
    assert len(page.query_selector_all(".j-session")) == len(tree)

    page.goto(groups_server.url + "?view=journey&user=no-such-user")
    rendered(page, "journey")
    assert "Nothing here" in page.inner_text(".empty")


# --- OpenSearch and Elasticsearch: the same answers ----------------------------------


@pytest.mark.slow
def test_the_engine_gives_the_archives_journeys(groups_es: dict[str, Any], page: Any) -> None:
    archive, engine = groups_es["archive_server"], groups_es["es_server"]
    since, until = middle_window(groups_es["archive"])
    users = api(archive, "journey/users")
    assert users["users"]
    assert json.dumps(api(engine, "journey/users")) == json.dumps(users)
    window = {"from": iso(since), "to": iso(until)}
    # Indexed terms (an aggregation on the engine) and free text (checked on each record).
    for params in (
        {"limit": 7, **window},
        {"q": "level>=WARNING"},
        {"q": "payment", "limit": 50},
        {"from": iso(since)},
        {"to": iso(until), "q": "endpoint~^/api/"},
    ):
        on_archive = api(archive, "journey/users", **params)
        assert on_archive["users"], params
        assert json.dumps(api(engine, "journey/users", **params)) == json.dumps(on_archive), params
    user = users["users"][0]["user_id"]
    journey = api(archive, "journey", user=user)
    session = journey["sessions"][0]["session_id"]
    request = journey["sessions"][0]["requests"][-1]["request_id"]
    for params in (
        {"user": user},
        {"user": user, **window},
        {"session": session},
        {"request": request},
        {"user": user, "from": iso(since)},
        {"user": user, "to": iso(until)},
    ):
        on_archive = api(archive, "journey", **params)
        assert on_archive["count"], params
        assert json.dumps(api(engine, "journey", **params)) == json.dumps(on_archive), params
    page.goto(engine.url + "?view=journey&user=" + urllib.parse.quote(user))
    rendered(page, "journey")
    page.wait_for_selector("#journey-summary")
    assert int(page.get_attribute("#journey-summary", "data-count")) == journey["count"]
    shown = [
        (r.get_attribute("data-request"), int(r.get_attribute("data-count")))
        for r in page.query_selector_all(".j-request")
    ]
    assert shown == [(q["request_id"], q["count"]) for s in journey["sessions"] for q in s["requests"]]


# --- the time axis: round ticks, dated when the journey spans days -----------------------------

# The round steps the axis may use (ms): 1 ms ... 14 days.
ROUND_STEPS = {
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    15_000,
    30_000,
    60_000,
    120_000,
    300_000,
    600_000,
    900_000,
    1_800_000,
    3_600_000,
    7_200_000,
    10_800_000,
    21_600_000,
    43_200_000,
    86_400_000,
    172_800_000,
    604_800_000,
    1_209_600_000,
}
LABELS = ("%m-%d %H:%M:%S.%f", "%m-%d %H:%M:%S", "%m-%d %H:%M", "%H:%M:%S.%f", "%H:%M:%S", "%H:%M")


def week_objects(start: datetime) -> list[dict[str, Any]]:
    """u-week: four sessions over six days (three requests each, records milliseconds apart);
    u-brief: one request of five records 7 ms apart."""
    out: list[dict[str, Any]] = []

    def record(at: datetime, user: str, session: str, rid: str, n: int, last: bool) -> None:
        obj: dict[str, Any] = {
            "timestamp": at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "level": "INFO",
            "name": "shop.web",
            "service": "shop",
            "request_id": rid,
            "user_id": user,
            "session_id": session,
            "message": f"step {n} of {rid}",
        }
        if last:
            obj.update({"method": "GET", "path": "/api/cart", "status": 200, "duration_ms": 12.5})
        out.append(obj)

    for s, (day, hour) in enumerate([(0, 0.0), (1, 5.4), (3, 13.7), (6, 1.1)]):
        first = start + timedelta(days=day, hours=hour)
        for q in range(3):
            at = first + timedelta(minutes=2 * q, milliseconds=37 * q)
            for n in range(3):
                record(at + timedelta(milliseconds=3 * n), "u-week", f"s-week-{s}", f"r-week-{s}-{q}", n, n == 2)
    brief = start + timedelta(days=2, hours=7, milliseconds=123)
    for n in range(5):
        record(brief + timedelta(milliseconds=7 * n), "u-brief", "s-brief", "r-brief", n, n == 4)
    return out


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> dict[str, Any]:
    from uihelp import ship

    start = (datetime.now(UTC) - timedelta(days=8)).replace(hour=19, minute=49, second=39, microsecond=192_000)
    archive = ship(tmp_path_factory.mktemp("journey-week"), week_objects(start))
    return {"archive": archive, "server": serve("--archive", str(archive))}


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def read_axis(page: Any, first: datetime, last: datetime) -> tuple[int, bool]:
    """Check the drawn axis against [first, last] (DuckDB's); its step and whether labels are dated."""
    axis = page.query_selector(".j-axis")
    start, end, step = (int(axis.get_attribute(f"data-{k}")) for k in ("start", "end", "step"))
    assert start == epoch_ms(first) and end == max(epoch_ms(last), start + 1)
    assert step in ROUND_STEPS
    assert page.inner_text("#journey-axis-start") == first.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    ticks = [
        (int(t.get_attribute("data-ms")), t.inner_text(), t.get_attribute("style"))
        for t in page.query_selector_all(".j-axis .tick")
    ]
    assert 2 <= len(ticks) <= 8, ticks
    stamps = [t for t, _, _ in ticks]
    assert all(t % step == 0 for t in stamps) and all(b - a == step for a, b in itertools.pairwise(stamps))
    assert start <= stamps[0] < start + step and end - step < stamps[-1] <= end
    dated = [bool(re.match(r"\d\d-\d\d ", label)) for _, label, _ in ticks]
    assert len(set(dated)) == 1
    seen = []
    for t, label, style in ticks:
        moment = datetime.fromtimestamp(t / 1000, UTC)
        shown = next(datetime.strptime(label, f) for f in LABELS if _parses(label, f))
        # The label is the tick's time (the date, when not shown, is the axis start's).
        base = moment if dated[0] else first
        shown = shown.replace(year=base.year, tzinfo=UTC)
        if not dated[0]:
            shown = shown.replace(month=first.month, day=first.day)
        assert shown == moment, (label, moment)
        left = float(re.search(r"left:\s*([\d.]+)%", style).group(1))
        assert abs(left - (t - start) / (end - start) * 100) < 0.01
        seen.append(shown)
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    return step, dated[0]


def _parses(label: str, fmt: str) -> bool:
    try:
        datetime.strptime(label, fmt)
    except ValueError:
        return False
    return True


def test_the_time_axis_over_days_has_round_dated_ticks(week: dict[str, Any], page: Any) -> None:
    archive, server = week["archive"], week["server"]
    span = {
        user: duck(archive, "SELECT min(ts), max(ts) FROM logs WHERE user_id = ?", [user])[0]
        for user in ("u-week", "u-brief")
    }
    page.goto(server.url + "?view=journey&user=u-week")
    rendered(page, "journey")
    step, dated = read_axis(page, *span["u-week"])
    assert dated and step >= 86_400_000  # six days: whole days, labelled MM-DD 00:00
    assert all(t.inner_text().endswith(" 00:00") for t in page.query_selector_all(".j-axis .tick"))
    # A request's time says its day too when the journey spans days.
    ((first_request,),) = duck(archive, "SELECT min(ts) FROM logs WHERE request_id = 'r-week-2-0'")
    row = page.query_selector('.j-request[data-request="r-week-2-0"] .j-label .mono')
    assert row.inner_text() == first_request.strftime("%m-%d %H:%M:%S.%f")[:18]

    # Zoomed to one session (minutes of one day): minute or second steps, no date on the ticks.
    session = page.query_selector('.j-session[data-session="s-week-2"] .j-row')
    after(page, lambda: session.click())
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["zoom"] == ["s-week-2"]
    ((first, last),) = duck(archive, "SELECT min(ts), max(ts) FROM logs WHERE session_id = 's-week-2'")
    step, dated = read_axis(page, first, last)
    assert not dated and 1_000 <= step <= 3_600_000

    # Records 7 ms apart: millisecond steps, labelled HH:MM:SS.mmm.
    page.goto(server.url + "?view=journey&user=u-brief")
    rendered(page, "journey")
    step, dated = read_axis(page, *span["u-brief"])
    assert not dated and step < 1_000
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", t.inner_text()) for t in page.query_selector_all(".j-axis .tick"))
