"""The Errors view: `/api/errors` and its drill-down against DuckDB over the Parquet files, then the page.

Every expected value is computed here from the archive's rows (plain DuckDB, `uihelp.duck`):
groups by `coalesce(message_key, message, '')` of ERROR/CRITICAL records, endpoints from the
record or its request's access line, trends by equal slices of the range.
"""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from groupsdata import after, api, iso, middle_window, when
from uihelp import Served, duck, rendered

US = timedelta(microseconds=1)


def free_text(row: dict[str, Any], needle: str) -> bool:
    return any(needle.lower() in (row[c] or "").lower() for c in ("message", "error", "attrs"))


def error_rows(archive: Path, since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    cols = ["key", "ts", "event_id", "endpoint", "request_id", "service", "error", "message", "attrs", "status"]
    rows = duck(
        archive,
        "SELECT coalesce(message_key, message, ''), ts, event_id, endpoint, request_id, service, error,"
        " message, CAST(attrs AS VARCHAR), status FROM logs WHERE level IN ('ERROR', 'CRITICAL')"
        " AND ts >= coalesce(?, TIMESTAMPTZ '1970-01-01') AND ts < coalesce(?, TIMESTAMPTZ '2200-01-01')",
        [since, until],
    )
    return [dict(zip(cols, r, strict=True)) for r in rows]


def access_lines(archive: Path) -> dict[str, str]:
    """request_id -> the endpoint of its last record (ts, event_id) that has one."""
    rows = duck(
        archive,
        "SELECT request_id, endpoint, ts, event_id FROM logs WHERE endpoint IS NOT NULL AND request_id IS NOT NULL",
    )
    best: dict[str, tuple[Any, ...]] = {}
    for rid, endpoint, ts, eid in rows:
        if rid not in best or (ts, eid) > best[rid][1:]:
            best[rid] = (endpoint, ts, eid)
    return {rid: v[0] for rid, v in best.items()}


def top(counter: Counter[str]) -> list[dict[str, Any]]:
    return [{"value": v, "count": n} for v, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]


def expected(
    archive: Path, rows: list[dict[str, Any]], start: datetime, end: datetime, buckets: int
) -> dict[str, dict[str, Any]]:
    access = access_lines(archive)
    span = (end - start) // US
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        g = out.setdefault(
            r["key"], {"count": 0, "ts": [], "endpoints": Counter(), "services": Counter(), "trend": [0] * buckets}
        )
        g["count"] += 1
        g["ts"].append(r["ts"])
        endpoint = r["endpoint"] or access.get(r["request_id"] or "")
        if endpoint:
            g["endpoints"][endpoint] += 1
        if r["service"]:
            g["services"][r["service"]] += 1
        g["trend"][min((r["ts"] - start) // US * buckets // span, buckets - 1)] += 1
    return out


def check_groups(answer: dict[str, Any], archive: Path, rows: list[dict[str, Any]]) -> None:
    assert rows, "the test needs error records in the window"
    start, end = when(answer["from"]), when(answer["to"])
    want = expected(archive, rows, start, end, answer["buckets"])
    got = {g["key"]: g for g in answer["groups"]}
    assert set(got) == set(want)
    assert answer["total"] == len(rows)
    for key, g in got.items():
        w = want[key]
        assert g["count"] == w["count"], key
        assert when(g["first_seen"]) == min(w["ts"]) and when(g["last_seen"]) == max(w["ts"]), key
        assert g["top_endpoints"] == top(w["endpoints"]), key
        assert g["top_services"] == top(w["services"]), key
        assert g["trend"] == w["trend"], key
    counts = [g["count"] for g in answer["groups"]]
    assert counts == sorted(counts, reverse=True)


def test_groups_are_duckdbs_group_by_over_all_time(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    answer = api(groups_server, "errors")
    rows = error_rows(archive)
    # With no range given, the range is the first error record to just after the last.
    assert when(answer["from"]) == min(r["ts"] for r in rows)
    assert when(answer["to"]) == max(r["ts"] for r in rows) + timedelta(milliseconds=1)
    assert len(answer["groups"]) >= 4
    check_groups(answer, archive, rows)
    assert all(
        g["sample_error"] and "Traceback" in g["sample_error"]
        for g in answer["groups"]
        if g["key"].startswith("payment")
    )


def test_groups_of_a_range_and_a_search(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    since, until = middle_window(archive)
    answer = api(groups_server, "errors", **{"from": iso(since), "to": iso(until), "buckets": 7})
    assert when(answer["from"]) == since and when(answer["to"]) == until and answer["buckets"] == 7
    check_groups(answer, archive, error_rows(archive, since, until))
    for needle in ("timeout", "payment"):
        answer = api(groups_server, "errors", q=needle, **{"from": iso(since), "to": iso(until)})
        rows = [r for r in error_rows(archive, since, until) if free_text(r, needle)]
        check_groups(answer, archive, rows)
    answer = api(groups_server, "errors", q="status>=500")
    check_groups(answer, archive, [r for r in error_rows(archive) if r["status"] is not None and r["status"] >= 500])


def test_a_groups_drill_down_selects_exactly_its_records(groups_server: Served, groups_data: dict[str, Any]) -> None:
    archive = groups_data["archive"]
    since, until = middle_window(archive)
    window = {"from": iso(since), "to": iso(until)}
    for q in (None, "timeout"):
        answer = api(groups_server, "errors", q=q, **window)
        for group in answer["groups"]:
            drill = api(groups_server, "errors/samples", key=group["key"], limit=10000, q=q, **window)
            want = {
                r["event_id"]
                for r in error_rows(archive, since, until)
                if r["key"] == group["key"] and (q is None or free_text(r, q))
            }
            assert drill["count"] == group["count"] == len(want)
            assert {r["event_id"] for r in drill["records"]} == want
            stamps = [(r["ts"], r["event_id"]) for r in drill["records"]]
            assert stamps == sorted(stamps, reverse=True)
    few = api(groups_server, "errors/samples", key=answer["groups"][0]["key"], limit=2, q="timeout", **window)
    assert len(few["records"]) == 2 and few["count"] == answer["groups"][0]["count"]


def test_nothing_found_is_an_empty_answer_and_bad_input_one_sentence(groups_server: Served) -> None:
    answer = api(groups_server, "errors", q="no-such-word-anywhere-zq")
    assert answer["groups"] == [] and answer["total"] == 0
    status, body = groups_server.get("/api/errors?q=" + urllib.parse.quote("bogus=1"))
    assert status == 400 and "unknown field 'bogus'" in body["error"]
    status, body = groups_server.get("/api/errors?q=" + urllib.parse.quote("message~(?=x)"))
    assert status == 400 and "RE2" in body["error"]
    status, body = groups_server.get("/api/errors/samples")
    assert status == 400 and "key" in body["error"]


# --- the page ----------------------------------------------------------------------------------


def shown_groups(page: Any) -> dict[str, int]:
    return {
        row.get_attribute("data-key"): int(row.get_attribute("data-count"))
        for row in page.query_selector_all("tr.error-group")
    }


def test_the_page_shows_the_groups_and_drills_down(
    groups_server: Served, groups_data: dict[str, Any], page: Any
) -> None:
    archive = groups_data["archive"]
    page.goto(groups_server.url + "?view=errors")
    rendered(page, "errors")
    want = Counter(r["key"] for r in error_rows(archive))
    assert shown_groups(page) == dict(want)
    assert int(page.get_attribute("#error-summary", "data-total")) == sum(want.values())
    trend = page.get_attribute("tr.error-group:first-child svg.spark", "data-trend")
    assert sum(int(n) for n in trend.split(",")) == int(page.get_attribute("tr.error-group:first-child", "data-count"))

    # Click the second group: its records, exactly, and the URL names it.
    row = page.query_selector_all("tr.error-group")[1]
    key = row.get_attribute("data-key")
    after(page, lambda: row.click())
    page.wait_for_selector("#error-samples[data-count]")
    rendered(page, "errors")
    assert int(page.get_attribute("#error-samples", "data-count")) == want[key]
    shown = {li.get_attribute("data-event-id") for li in page.query_selector_all("li.error-sample")}
    ids = {r["event_id"] for r in error_rows(archive) if r["key"] == key}
    assert len(shown) == min(want[key], 20) and shown <= ids
    # "show more" until the group is listed whole: exactly its records.
    while page.is_visible("#error-samples button.more"):
        before = page.get_attribute("#error-samples ol", "data-shown")
        page.click("#error-samples button.more")
        page.wait_for_function("b => document.querySelector('#error-samples ol').dataset.shown !== b", arg=before)
    assert {li.get_attribute("data-event-id") for li in page.query_selector_all("li.error-sample")} == ids
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["group"] == [key]

    # The copied URL opens the same state.
    copied = page.url
    page.goto("about:blank")
    page.goto(copied)
    rendered(page, "errors")
    page.wait_for_selector("#error-samples[data-count]")
    assert page.get_attribute("#error-samples", "data-key") == key
    assert int(page.get_attribute("#error-samples", "data-count")) == want[key]
    assert page.get_attribute("tr.error-group.selected", "data-key") == key

    # A sample's stack trace opens; its request goes to Discover with a search for it.
    first = page.query_selector("li.error-sample")
    eid = first.get_attribute("data-event-id")
    first.query_selector("details > summary").click()
    ((rid, stack),) = duck(archive, "SELECT request_id, error FROM logs WHERE event_id = ?", [eid])
    assert stack and stack.splitlines()[-1] in first.inner_text()
    first.query_selector("button.link").click()
    page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'discover'")
    assert urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["q"] == [f"request_id={rid}"]


def test_the_page_searches_and_says_when_there_is_nothing(
    groups_server: Served, groups_data: dict[str, Any], page: Any
) -> None:
    page.goto(groups_server.url + "?view=errors")
    rendered(page, "errors")
    page.fill("#q", "timeout")
    after(page, lambda: page.press("#q", "Enter"))
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'timeout'")
    rendered(page, "errors")
    page.wait_for_selector("#error-summary")
    want = Counter(r["key"] for r in error_rows(groups_data["archive"]) if free_text(r, "timeout"))
    assert shown_groups(page) == dict(want)
    page.goto(groups_server.url + "?view=errors&q=no-such-word-anywhere-zq")
    rendered(page, "errors")
    assert "Nothing here" in page.inner_text(".empty")
    assert page.query_selector_all("tr.error-group") == []


# --- OpenSearch and Elasticsearch: the same answers ----------------------------------


def comparable(answer: dict[str, Any]) -> str:
    return json.dumps(answer, sort_keys=True)


@pytest.mark.slow
def test_the_engine_gives_the_archives_answers(groups_es: dict[str, Any]) -> None:
    archive, engine = groups_es["archive_server"], groups_es["es_server"]
    since, until = middle_window(groups_es["archive"])
    for params in (
        {},
        {"q": "timeout"},
        {"q": "status>=500"},
        {"from": iso(since), "to": iso(until)},
        {"q": "payment", "from": iso(since), "to": iso(until), "buckets": 9},
        # One-sided ranges (Elasticsearch treats a one-sided range on date_nanos apart), a regex.
        {"from": iso(since)},
        {"to": iso(until)},
        {"q": "message~(?i)^payment"},
    ):
        on_archive = api(archive, "errors", **params)
        assert on_archive["groups"], params
        assert comparable(api(engine, "errors", **params)) == comparable(on_archive), params
        key = on_archive["groups"][0]["key"]
        drill = api(archive, "errors/samples", key=key, limit=5, **params)
        assert comparable(api(engine, "errors/samples", key=key, limit=5, **params)) == comparable(drill)
        assert drill["count"] == on_archive["groups"][0]["count"]


@pytest.mark.slow
def test_the_page_on_the_engine(groups_es: dict[str, Any], page: Any) -> None:
    page.goto(groups_es["es_server"].url + "?view=errors")
    rendered(page, "errors")
    want = Counter(r["key"] for r in error_rows(groups_es["archive"]))
    assert shown_groups(page) == dict(want)
    after(page, lambda: page.query_selector("tr.error-group").click())
    page.wait_for_selector("#error-samples[data-count]")
    key = page.get_attribute("#error-samples", "data-key")
    assert int(page.get_attribute("#error-samples", "data-count")) == want[key]


def test_the_same_groups_as_the_cli(groups_server: Served, groups_data: dict[str, Any]) -> None:
    """The view is `logpipe query errors` (the CLI's JSON, same window), plus trends."""
    from tests.support.exdata import logpipe

    since, until = middle_window(groups_data["archive"])
    result = logpipe(
        "query",
        "errors",
        "--since",
        iso(since),
        "--until",
        iso(until),
        "--format",
        "json",
        "--archive",
        str(groups_data["archive"]),
    )
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    answer = api(groups_server, "errors", **{"from": iso(since), "to": iso(until)})
    assert cli and len(answer["groups"]) == len(cli)
    for g, row in zip(answer["groups"], cli, strict=True):
        assert (g["key"], g["count"], g["sample_message"], g["sample_error"]) == (
            row["message_key"],
            row["count"],
            row["sample_message"],
            row["sample_error"],
        )
        assert when(g["first_seen"]) == when(row["first_seen"]) and when(g["last_seen"]) == when(row["last_seen"])
        assert ", ".join(f"{t['value']} ({t['count']})" for t in g["top_endpoints"]) == row["top_endpoints"]
        assert ", ".join(f"{t['value']} ({t['count']})" for t in g["top_services"]) == row["top_services"]
