"""The Patterns view: `/api/patterns` and a pattern's records against the archive's own rows, then the page.

The expected templates come from mining the rows DuckDB reads from the Parquet files (in the
order `logpipe patterns` reads them: ts, then event_id) here in the test, remembering each
record's group: so the counts, the total and the exact event_ids of every pattern are known.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from groupsdata import after, api, iso, middle_window, when
from uihelp import Served, duck, rendered

from logpipe.read.filters import levels_where
from logpipe.read.patterns import PatternMiner, Window


def mined(
    archive: Path, start: datetime, end: datetime, buckets: int, levels: list[str] | None = None
) -> dict[str, Any]:
    """template -> {count, ids, trend} from the archive's rows, mined here."""
    where = f" AND level IN ({', '.join('?' for _ in levels)})" if levels else ""
    rows = duck(
        archive,
        f"SELECT ts, message, event_id FROM logs WHERE ts >= ? AND ts < ?{where} ORDER BY ts, event_id",
        [start, end, *(levels or [])],
    )
    return mine_rows(rows, Window(start, end, buckets))


def newest_mined(
    archive: Path, start: datetime, end: datetime, buckets: int, bound: int, levels: list[str] | None = None
) -> dict[str, Any]:
    """As `mined`, of the range's newest `bound` rows only (ts, event_id), in a window from the
    oldest of them when there are more; `matching` = every row of the range."""
    where = f" AND level IN ({', '.join('?' for _ in levels)})" if levels else ""
    params = [start, end, *(levels or [])]
    ((matching,),) = duck(archive, f"SELECT count(*) FROM logs WHERE ts >= ? AND ts < ?{where}", params)
    newest = duck(
        archive,
        f"SELECT ts, message, event_id FROM logs WHERE ts >= ? AND ts < ?{where}"
        " ORDER BY ts DESC, event_id DESC LIMIT ?",
        [*params, bound],
    )
    rows = newest[::-1]
    window = Window(rows[0][0] if matching > bound else start, end, buckets)
    return {**mine_rows(rows, window), "matching": matching, "from": window.start}


def mine_rows(rows: list[tuple[Any, ...]], window: Window) -> dict[str, Any]:
    miner = PatternMiner(window=window)
    placed = [(miner.add(message, ts), eid) for ts, message, eid in rows]
    ids: dict[str, set[str]] = defaultdict(set)
    for gid, eid in placed:
        ids[miner.template_of(gid)].add(eid)
    return {
        "total": len(rows),
        "patterns": {
            p.template: {"count": p.count, "trend": list(p.trend), "ids": ids[p.template]} for p in miner.patterns()
        },
    }


def check(answer: dict[str, Any], want: dict[str, Any]) -> None:
    assert answer["total"] == want["total"] > 0
    assert sum(p["count"] for p in answer["patterns"]) + answer["others"] == answer["total"]
    got = {p["template"]: p for p in answer["patterns"]}
    assert set(got) == set(want["patterns"])
    for template, p in got.items():
        assert p["count"] == want["patterns"][template]["count"], template
        assert p["trend"] == want["patterns"][template]["trend"], template
        assert abs(p["share"] - p["count"] / answer["total"]) < 1e-9
        assert sum(p["trend"]) == p["count"]


def test_patterns_add_up_to_duckdbs_total(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    answer = api(groups_server, "patterns")
    ((first, last),) = duck(archive, "SELECT min(ts), max(ts) FROM logs")
    assert when(answer["from"]) == first and when(answer["to"]) == last + timedelta(milliseconds=1)
    assert answer["total"] == groups_data["total"]
    check(answer, mined(archive, first, last + timedelta(milliseconds=1), answer["buckets"]))
    assert len(answer["patterns"]) >= 5


def test_patterns_of_a_range_and_level(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    since, until = middle_window(archive)
    answer = api(groups_server, "patterns", q="level>=WARNING", buckets=6, **{"from": iso(since), "to": iso(until)})
    check(answer, mined(archive, since, until, 6, levels_where(">=", "WARNING")))
    limited = api(groups_server, "patterns", limit=2)
    assert len(limited["patterns"]) == 2 and limited["others"] > 0
    assert sum(p["count"] for p in limited["patterns"]) + limited["others"] == limited["total"] == groups_data["total"]


def test_a_patterns_records_are_exactly_its_records(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    since, until = middle_window(archive)
    window = {"from": iso(since), "to": iso(until)}
    answer = api(groups_server, "patterns", q="level>=WARNING", **window)
    want = mined(archive, since, until, answer["buckets"], levels_where(">=", "WARNING"))
    for p in answer["patterns"]:
        drill = api(groups_server, "patterns/records", id=p["id"], q="level>=WARNING", limit=10000, **window)
        assert drill["template"] == p["template"]
        assert drill["count"] == p["count"] == len(drill["records"])
        assert {r["event_id"] for r in drill["records"]} == want["patterns"][p["template"]]["ids"]
    # All levels: the biggest pattern's newest records, and its count.
    everything = api(groups_server, "patterns")
    big = everything["patterns"][0]
    drill = api(groups_server, "patterns/records", id=big["id"], limit=5)
    assert drill["count"] == big["count"] and len(drill["records"]) == 5
    stamps = [(r["ts"], r["event_id"]) for r in drill["records"]]
    assert stamps == sorted(stamps, reverse=True)
    status, body = groups_server.get("/api/patterns/records?id=0000000000000000")
    assert status == 400 and "no pattern" in body["error"]


def test_nothing_found(groups_server: Served) -> None:
    answer = api(groups_server, "patterns", q="no-such-word-anywhere-zq")
    assert answer["patterns"] == [] and answer["total"] == 0


# --- the page ----------------------------------------------------------------------------------


def test_the_page_shows_patterns_and_drills_down(groups_server: Served, groups_data: dict[str, Any], page: Any) -> None:
    archive = groups_data["archive"]
    page.goto(groups_server.url + "?view=patterns&q=" + urllib.parse.quote("level>=WARNING"))
    rendered(page, "patterns")
    ((first, last),) = duck(
        archive, "SELECT min(ts), max(ts) FROM logs WHERE level IN ('WARNING', 'ERROR', 'CRITICAL')"
    )
    want = mined(archive, first, last + timedelta(milliseconds=1), 24, levels_where(">=", "WARNING"))
    rows = page.query_selector_all("tr.pattern")
    shown = {r.get_attribute("data-template"): int(r.get_attribute("data-count")) for r in rows}
    assert shown == {t: p["count"] for t, p in want["patterns"].items()}
    assert int(page.get_attribute("#pattern-summary", "data-total")) == want["total"] == sum(shown.values())

    pick = rows[1]
    template = pick.get_attribute("data-template")
    after(page, lambda: pick.click())
    page.wait_for_selector("#pattern-records[data-count]")
    rendered(page, "patterns")
    assert int(page.get_attribute("#pattern-records", "data-count")) == want["patterns"][template]["count"]
    ids = {li.get_attribute("data-event-id") for li in page.query_selector_all("li.pattern-record")}
    assert len(ids) == min(20, want["patterns"][template]["count"]) and ids <= want["patterns"][template]["ids"]
    while page.is_visible("#pattern-records button.more"):
        before = page.get_attribute("#pattern-records ol", "data-shown")
        page.click("#pattern-records button.more")
        page.wait_for_function("b => document.querySelector('#pattern-records ol').dataset.shown !== b", arg=before)
    shown = {li.get_attribute("data-event-id") for li in page.query_selector_all("li.pattern-record")}
    assert shown == want["patterns"][template]["ids"]

    copied = page.url
    assert urllib.parse.parse_qs(urllib.parse.urlparse(copied).query)["pattern"] == [pick.get_attribute("data-id")]
    page.goto("about:blank")
    page.goto(copied)
    rendered(page, "patterns")
    page.wait_for_selector("#pattern-records[data-count]")
    assert page.get_attribute("tr.pattern.selected", "data-template") == template
    assert int(page.get_attribute("#pattern-records", "data-count")) == want["patterns"][template]["count"]
    assert page.input_value("#q") == "level>=WARNING"

    page.goto(groups_server.url + "?view=patterns&q=no-such-word-anywhere-zq")
    rendered(page, "patterns")
    assert "Nothing here" in page.inner_text(".empty")


# --- OpenSearch and Elasticsearch: the same answers ----------------------------------


@pytest.mark.slow
def test_the_engine_gives_the_archives_patterns(groups_es: dict[str, Any], page: Any) -> None:
    archive, engine = groups_es["archive_server"], groups_es["es_server"]
    since, until = middle_window(groups_es["archive"])
    for params in (
        {},
        {"q": "level>=WARNING"},
        {"q": "timeout", "from": iso(since), "to": iso(until), "buckets": 5},
        {"from": iso(since)},
        {"to": iso(until), "q": "endpoint~^/api/"},
    ):
        on_archive = api(archive, "patterns", **params)
        assert on_archive["patterns"], params
        assert json.dumps(api(engine, "patterns", **params)) == json.dumps(on_archive), params
        pid = on_archive["patterns"][-1]["id"]
        drill = api(archive, "patterns/records", id=pid, limit=20, **params)
        assert json.dumps(api(engine, "patterns/records", id=pid, limit=20, **params)) == json.dumps(drill)
    page.goto(engine.url + "?view=patterns&q=" + urllib.parse.quote("level>=ERROR"))
    rendered(page, "patterns")
    want = api(archive, "patterns", q="level>=ERROR")
    rows = page.query_selector_all("tr.pattern")
    assert [(r.get_attribute("data-id"), int(r.get_attribute("data-count"))) for r in rows] == [
        (p["id"], p["count"]) for p in want["patterns"]
    ]
    after(page, lambda: rows[0].click())
    page.wait_for_selector("#pattern-records[data-count]")
    assert int(page.get_attribute("#pattern-records", "data-count")) == want["patterns"][0]["count"]


def test_the_same_patterns_as_the_cli(groups_server: Served, groups_data: dict[str, Any]) -> None:
    """The view is `logpipe patterns` (the CLI's JSON, same window, filter and buckets)."""
    from tests.support.exdata import logpipe

    since, until = middle_window(groups_data["archive"])
    result = logpipe(
        "patterns",
        "--since",
        iso(since),
        "--until",
        iso(until),
        "--where",
        "level>=INFO",
        "--limit",
        "0",
        "--buckets",
        "8",
        "--format",
        "json",
        "--archive",
        str(groups_data["archive"]),
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    answer = api(groups_server, "patterns", q="level>=INFO", buckets=8, **{"from": iso(since), "to": iso(until)})
    assert cli and len(answer["patterns"]) == len(cli)
    for p, row in zip(answer["patterns"], cli, strict=True):
        assert (p["template"], p["count"], p["trend"], p["examples"]) == (
            row["template"],
            row["count"],
            row["trend"],
            row["examples"],
        )
        assert when(p["first_seen"]) == when(row["first_seen"]) and when(p["last_seen"]) == when(row["last_seen"])


# --- the bound: only the newest N matching records are mined ------------------------------------

BOUND = 700  # of the demo log's 5,000 records: most searches select more


@pytest.fixture(scope="module")
def bounded_server(groups_data: dict[str, Any], serve: Any) -> Served:
    return serve("--archive", str(groups_data["archive"]), env={"LOGPIPE_UI_PATTERN_RECORDS": str(BOUND)})


def bounded_cases(archive: Path) -> list[tuple[dict[str, Any], datetime, datetime, list[str] | None]]:
    """(params, start, end, levels): the whole archive, a range and a level, a range (more than
    the bound each), and only errors (fewer)."""
    ((first, last),) = duck(archive, "SELECT min(ts), max(ts) FROM logs")
    since, until = middle_window(archive)
    end = last + timedelta(milliseconds=1)
    ranged = {"from": iso(since), "to": iso(until)}
    return [
        ({}, first, end, None),
        ({"q": "level>=INFO", "buckets": 6, **ranged}, since, until, levels_where(">=", "INFO")),
        (ranged, since, until, None),
        ({"q": "level>=ERROR", **ranged}, since, until, levels_where(">=", "ERROR")),
    ]


def test_patterns_mine_the_newest_records_of_a_bigger_selection(
    bounded_server: Served, groups_data: dict[str, Any]
) -> None:
    archive = groups_data["archive"]
    bigger = 0
    for params, start, end, levels in bounded_cases(archive):
        answer = api(bounded_server, "patterns", **params)
        want = newest_mined(archive, start, end, answer["buckets"], BOUND, levels)
        check(answer, want)
        assert answer["matching"] == want["matching"] and answer["bound"] == BOUND, params
        assert when(answer["from"]) == want["from"] and when(answer["to"]) == end, params
        assert when(answer["range_from"]) == start, params
        assert answer["total"] == min(BOUND, want["matching"]), params
        bigger += want["matching"] > BOUND
        # The drill-down mines the same records: a pattern's records are exactly its own among them.
        for p in answer["patterns"][:4]:
            drill = api(bounded_server, "patterns/records", id=p["id"], limit=10000, **params)
            assert drill["count"] == p["count"] == len(drill["records"])
            assert {r["event_id"] for r in drill["records"]} == want["patterns"][p["template"]]["ids"]
    assert bigger == 3  # and the errors of the range are fewer: all mined, from the range's start
    whole = api(bounded_server, "patterns")
    assert whole["matching"] == groups_data["total"] > BOUND == whole["total"]


def test_the_page_says_only_the_newest_were_mined(
    bounded_server: Served, groups_data: dict[str, Any], page: Any
) -> None:
    archive = groups_data["archive"]
    page.goto(bounded_server.url + "?view=patterns")
    rendered(page, "patterns")
    ((first, last),) = duck(archive, "SELECT min(ts), max(ts) FROM logs")
    want = newest_mined(archive, first, last + timedelta(milliseconds=1), 24, BOUND)
    note = page.wait_for_selector("#pattern-bound")
    assert (
        int(note.get_attribute("data-mined")) == BOUND and int(note.get_attribute("data-matching")) == want["matching"]
    )
    text = note.inner_text()
    oldest = want["from"].strftime("%Y-%m-%d %H:%M:%S")
    assert re.search(
        rf"Patterns of the newest {BOUND:,} of {want['matching']:,} matching records "
        rf"\(since {oldest}(\.\d{{3}})? UTC\)",
        text,
    ), text
    assert "narrow the range or the search to mine them all" in text
    shown = {
        r.get_attribute("data-template"): int(r.get_attribute("data-count"))
        for r in page.query_selector_all("tr.pattern")
    }
    assert shown == {t: p["count"] for t, p in want["patterns"].items()}
    assert sum(shown.values()) == BOUND == int(page.get_attribute("#pattern-summary", "data-total"))
    # A search that selects fewer than the bound: every record mined, no sentence.
    after(page, lambda: (page.fill("#q", "level>=ERROR"), page.press("#q", "Enter")))
    rendered(page, "patterns")
    assert page.query_selector("#pattern-bound") is None
    ((errors,),) = duck(archive, "SELECT count(*) FROM logs WHERE level IN ('ERROR', 'CRITICAL')")
    assert int(page.get_attribute("#pattern-summary", "data-total")) == errors < BOUND


def test_the_bound_must_be_a_number(groups_data: dict[str, Any], serve: Any) -> None:
    served = serve("--archive", str(groups_data["archive"]), env={"LOGPIPE_UI_PATTERN_RECORDS": "lots"})
    status, body = served.get("/api/patterns")
    assert status == 400 and "LOGPIPE_UI_PATTERN_RECORDS" in body["error"]


@pytest.mark.slow
def test_the_engine_mines_the_same_newest_records(groups_es: dict[str, Any], serve: Any) -> None:
    env = {"LOGPIPE_UI_PATTERN_RECORDS": str(BOUND)}
    archive = serve("--archive", str(groups_es["archive"]), env=env)
    engine = serve("--backend", "es", "--es", groups_es["to"], env=env)
    since, until = middle_window(groups_es["archive"])
    ranged = {"from": iso(since), "to": iso(until)}
    # level>=INFO: the engine counts the hits; `cache` (free text, more than the bound): it checks each record.
    for params in ({}, {"q": "level>=INFO", **ranged}, {"q": "cache"}, {"q": "timeout"}, {"q": "level>=ERROR"}):
        on_archive = api(archive, "patterns", **params)
        assert on_archive["patterns"], params
        assert json.dumps(api(engine, "patterns", **params)) == json.dumps(on_archive), params
        pid = on_archive["patterns"][0]["id"]
        drill = api(archive, "patterns/records", id=pid, limit=20, **params)
        assert json.dumps(api(engine, "patterns/records", id=pid, limit=20, **params)) == json.dumps(drill), params
    assert api(archive, "patterns")["matching"] > BOUND and api(archive, "patterns", q="cache")["matching"] > BOUND
