"""Traffic on the archive: /api/traffic and the view in Chromium.

The error-rate timeline, the requests by endpoint and every one of the 168 heatmap cells are
compared with plain DuckDB GROUP BYs over the Parquet files, and with the generator's own
records (its incident hours, its users).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import trafficdata
from trafficdata import INCIDENT_HOURS, START, query, template_of
from trafficdata import iso as iso_of
from uihelp import Served, drawn, duck, redrawn, rendered

traffic_data = trafficdata.traffic_data
traffic_server = trafficdata.traffic_server
HOUR_MS = 3_600_000
CLASS_SQL = "CASE WHEN status >= 200 AND status < 600 THEN (status // 100)::VARCHAR || 'xx' ELSE 'other' END"


def duck_timeline(
    archive: Any, width_ms: int, where: str = "TRUE", params: list[Any] | None = None
) -> dict[int, tuple[int, ...]]:
    rows = duck(
        archive,
        "SELECT epoch_ms(ts) // ? * ?, count(*), count(*) FILTER (WHERE level IN ('ERROR', 'CRITICAL')), "
        f"count(status), count(*) FILTER (WHERE status >= 500) FROM logs WHERE {where} GROUP BY 1",
        [width_ms, width_ms, *(params or [])],
    )
    return {r[0]: r[1:] for r in rows}


def duck_endpoints(
    archive: Any, where: str = "TRUE", params: list[Any] | None = None
) -> dict[str | None, Counter[str]]:
    rows = duck(
        archive,
        f"SELECT method || ' ' || endpoint, {CLASS_SQL}, count(*) FROM logs "
        f"WHERE status IS NOT NULL AND ({where}) GROUP BY ALL",
        params,
    )
    out: dict[str | None, Counter[str]] = defaultdict(Counter)
    for key, cls, n in rows:
        out[key][cls] += n
    return out


def duck_cells(
    archive: Any, where: str = "TRUE", params: list[Any] | None = None
) -> dict[tuple[int, int], tuple[Any, ...]]:
    rows = duck(
        archive,
        "SELECT isodow(ts), hour(ts), count(*), count(DISTINCT user_id), max(date_trunc('hour', ts)) "
        f"FROM logs WHERE {where} GROUP BY ALL",
        params,
    )
    return {(d, h): (n, u, last) for d, h, n, u, last in rows}


def assert_timeline(timeline: list[dict[str, Any]], width: int, expected: dict[int, tuple[int, ...]]) -> None:
    assert expected
    shown = {b["start_ms"]: b for b in timeline}
    assert set(expected) <= set(shown)
    for start, b in shown.items():
        records, errors, requests, server = expected.get(start, (0, 0, 0, 0))
        assert (b["records"], b["errors"], b["requests"], b["server_errors"]) == (records, errors, requests, server), (
            start
        )
        assert b["error_rate"] == (errors / records if records else None)
    starts = sorted(shown)
    assert starts == list(range(starts[0], starts[-1] + width, width))


def assert_endpoints(answer: dict[str, Any], expected: dict[str | None, Counter[str]]) -> None:
    named = sorted(((k, c) for k, c in expected.items() if k is not None), key=lambda kc: (-sum(kc[1].values()), kc[0]))
    top = answer["top"]
    assert [r["key"] for r in answer["rows"]] == [k for k, _ in named[:top]]
    for r, (_, c) in zip(answer["rows"], named, strict=False):
        assert r["count"] == sum(c.values())
        assert {k: v for k, v in r["classes"].items() if v} == dict(c)
    other: Counter[str] = Counter()
    for _, c in named[top:]:
        other.update(c)
    other.update(expected.get(None, Counter()))
    assert answer["other"]["count"] == sum(other.values())
    assert {k: v for k, v in answer["other"]["classes"].items() if v} == dict(other)
    assert answer["requests"] == sum(sum(c.values()) for c in expected.values())


def assert_cells(heatmap: dict[str, Any], expected: dict[tuple[int, int], tuple[Any, ...]]) -> None:
    cells = heatmap["cells"]
    assert len(cells) == 7 * 24
    assert [(c["dow"], c["hour"]) for c in cells] == [(d, h) for d in range(1, 8) for h in range(24)]
    for c in cells:
        records, users, last = expected.get((c["dow"], c["hour"]), (0, 0, None))
        assert (c["records"], c["users"]) == (records, users), (c["dow"], c["hour"])
        assert c["last"] == (iso_of(last) if last else None)
    assert heatmap["max_records"] == max(v[0] for v in expected.values())
    assert heatmap["max_users"] == max(v[1] for v in expected.values())


class TestTrafficApi:
    def test_all_time_equals_duckdb(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        status, body = traffic_server.get(query("traffic"))
        assert status == 200, body
        archive = traffic_data["archive"]
        assert_timeline(body["timeline"], body["width_ms"], duck_timeline(archive, body["width_ms"]))
        assert_endpoints(body["endpoints"], duck_endpoints(archive))
        assert_cells(body["heatmap"], duck_cells(archive))
        assert sum(b["records"] for b in body["timeline"]) == len(traffic_data["objects"])

    def test_search_range_and_top(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        since, until = START + timedelta(days=1, hours=5), START + timedelta(days=6, hours=7, minutes=30)
        window = {"from": iso_of(since), "to": iso_of(until)}
        status, body = traffic_server.get(query("traffic", q="service!=auth", top=2, buckets=48, **window))
        assert status == 200, body
        where, params = "service IS DISTINCT FROM 'auth' AND ts >= ? AND ts < ?", [since, until]
        archive = traffic_data["archive"]
        assert len(body["timeline"]) <= 48
        assert (
            body["timeline"][0]["start_ms"]
            <= since.timestamp() * 1000
            < body["timeline"][0]["start_ms"] + body["width_ms"]
        )
        assert_timeline(body["timeline"], body["width_ms"], duck_timeline(archive, body["width_ms"], where, params))
        assert_endpoints(body["endpoints"], duck_endpoints(archive, where, params))
        assert body["endpoints"]["other"]["count"] > 0 and len(body["endpoints"]["rows"]) == 2
        assert_cells(body["heatmap"], duck_cells(archive, where, params))

    def test_the_incident_hours_stand_out(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        # Against the generator: with hourly buckets over the incident's day, the worst error rate
        # is the incident's hour, and its heatmap cell has the most records of its weekday.
        day, hour = INCIDENT_HOURS[0]
        since = START + timedelta(days=day)
        _, body = traffic_server.get(
            query("traffic", buckets=24, **{"from": iso_of(since), "to": iso_of(since + timedelta(days=1))})
        )
        assert body["width_ms"] == HOUR_MS and len(body["timeline"]) == 24
        worst = max(body["timeline"], key=lambda b: b["error_rate"] or 0)
        assert worst["start_ms"] == (since + timedelta(hours=hour)).timestamp() * 1000
        written = [o for o in traffic_data["objects"] if _ts(o).date() == since.date() and _ts(o).hour == hour]
        assert worst["records"] == len(written)
        assert worst["errors"] == sum(o["level"] == "ERROR" for o in written)
        _, everything = traffic_server.get(query("traffic"))
        cells = {(c["dow"], c["hour"]): c for c in everything["heatmap"]["cells"]}
        dow = since.isoweekday()
        assert max(range(24), key=lambda h: cells[(dow, h)]["records"]) == hour
        users = {
            o["user_id"]
            for o in traffic_data["objects"]
            if "user_id" in o and _ts(o).isoweekday() == dow and _ts(o).hour == hour
        }
        assert cells[(dow, hour)]["users"] == len(users)

    def test_endpoint_counts_equal_the_generators(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        _, body = traffic_server.get(query("traffic", top=100))
        written = Counter(f"{o['method']} {template_of(o)}" for o in traffic_data["objects"] if "status" in o)
        assert {r["key"]: r["count"] for r in body["endpoints"]["rows"]} == dict(written)
        assert body["endpoints"]["other"]["count"] == 0

    def test_nothing_matching_is_an_empty_answer(self, traffic_server: Served) -> None:
        status, body = traffic_server.get(query("traffic", q="no-such-word-anywhere"))
        assert status == 200
        assert body["timeline"] == [] and body["endpoints"]["rows"] == [] and body["endpoints"]["requests"] == 0
        assert all(c["records"] == 0 for c in body["heatmap"]["cells"])

    def test_bad_parameters_are_one_sentence(self, traffic_server: Served) -> None:
        status, body = traffic_server.get(query("traffic", top=0))
        assert status == 400 and "top must be between" in body["error"]
        status, body = traffic_server.get(query("traffic", q="nosuchfield=1"))
        assert status == 400 and "unknown field" in body["error"]


def _ts(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["timestamp"].replace("Z", "+00:00"))


# --- the page ------------------------------------------------------------------------------


def shown(page: Any, selector: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(selector, "els => els.map(e => ({...e.dataset}))")


def state_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def page_numbers(page: Any) -> dict[str, Any]:
    """Everything the three charts show, read from the DOM's data-* attributes."""
    width = int(page.get_attribute("#tr-errors", "data-width-ms"))
    timeline = {
        int(b["startMs"]): (int(b["records"]), int(b["errors"]), int(b["requests"]), int(b["serverErrors"]))
        for b in shown(page, "rect.er-bucket")
    }
    bars = [
        (b["key"], int(b["count"]), {c: int(b[f"c{c}"]) for c in ("2xx", "3xx", "4xx", "5xx", "other")})
        for b in shown(page, "g.ep-bar")
    ]
    cells = {
        (int(c["dow"]), int(c["hour"])): (int(c["records"]), int(c["users"]), int(c["last"]) if c["last"] else None)
        for c in shown(page, "rect.hm-cell")
    }
    return {"width": width, "timeline": timeline, "bars": bars, "cells": cells}


class TestTrafficPage:
    def test_the_charts_show_duckdbs_counts(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=traffic")
        rendered(page, "traffic")
        got = page_numbers(page)
        archive = traffic_data["archive"]
        expected = duck_timeline(archive, got["width"])
        assert {k: v for k, v in got["timeline"].items() if v[0]} == expected
        endpoints = duck_endpoints(archive)
        ranked = sorted(endpoints, key=lambda k: (-sum(endpoints[k].values()), k))
        assert [b[0] for b in got["bars"]] == ranked[:10]
        for key, count, classes in got["bars"]:
            assert count == sum(endpoints[key].values())
            assert {k: v for k, v in classes.items() if v} == dict(endpoints[key])
        cells = duck_cells(archive)
        assert len(got["cells"]) == 168
        for cell, (records, users, last) in got["cells"].items():
            n, u, latest = cells.get(cell, (0, 0, None))
            assert (records, users) == (n, u), cell
            assert last == (int(latest.timestamp() * 1000) if latest else None)
        # The heatmap's scale is distinct users by default; the legend names its top.
        assert page.get_attribute("#tr-heatmap", "data-metric") == "users"
        assert int(page.get_attribute("#tr-heatmap", "data-max")) == max(v[1] for v in cells.values())
        assert f"{max(v[1] for v in cells.values()):,}" in page.inner_text("#tr-hm-legend")
        tip = page.eval_on_selector(
            'rect.er-bucket:not([data-records="0"])', "e => e.querySelector('title').textContent"
        )
        assert "errors /" in tip and "records" in tip
        assert page.is_hidden("#error")

    def test_the_endpoint_summary_counts_in_words(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        """The summary says "top 3 of N endpoints", but "all N endpoints" when the top holds them all, never
        "top 50 of N" with N under 50 (#20 item 18)."""
        total = len(duck_endpoints(traffic_data["archive"]))
        assert 3 < total < 50
        summary = "#tr-endpoints h3 > span.muted"
        page.goto(traffic_server.url + "?view=traffic&tr_top=50")
        rendered(page, "traffic")
        assert f"requests (records with a status), all {total} endpoints;" in page.inner_text(summary)
        page.goto(traffic_server.url + "?view=traffic&tr_top=3")
        rendered(page, "traffic")
        assert f"top 3 of {total} endpoints;" in page.inner_text(summary)

    def test_clicking_a_bar_narrows_the_search(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=traffic&q=level%3DINFO")
        rendered(page, "traffic")
        bar = shown(page, "g.ep-bar")[1]
        before = drawn(page)
        page.click(f'g.ep-bar[data-key="{bar["key"]}"] text.label')
        redrawn(page, before, "traffic")
        assert state_of(page.url)["q"] == f"level=INFO {bar['filter']}"
        method, endpoint = bar["key"].split(" ")
        ((records,),) = duck(
            traffic_data["archive"],
            "SELECT count(*) FROM logs WHERE level = 'INFO' AND method = ? AND endpoint = ?",
            [method, endpoint],
        )
        got = page_numbers(page)
        assert [b[0] for b in got["bars"]] == [bar["key"]]
        assert sum(v[0] for v in got["timeline"].values()) == records
        # A status segment narrows to that class too.
        page.goto(traffic_server.url + "?view=traffic")
        rendered(page, "traffic")
        worst = max(shown(page, "g.ep-bar"), key=lambda b: int(b["c5xx"]))
        before = drawn(page)
        page.click(f'g.ep-bar[data-key="{worst["key"]}"] rect.ep-seg[data-cls="5xx"]')
        redrawn(page, before, "traffic")
        assert state_of(page.url)["q"] == f"{worst['filter']} status>=500 status<600"
        assert page_numbers(page)["bars"] == [
            (worst["key"], int(worst["c5xx"]), {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": int(worst["c5xx"]), "other": 0})
        ]

    def test_clicking_a_cell_opens_its_latest_hour_in_discover(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=traffic")
        rendered(page, "traffic")
        # Monday 10:00 holds two concrete Mondays: the click opens the later one.
        cell = shown(page, 'rect.hm-cell[data-dow="1"][data-hour="10"]')[0]
        latest = START + timedelta(days=7, hours=10)
        assert int(cell["last"]) == latest.timestamp() * 1000
        before = drawn(page)
        page.click('rect.hm-cell[data-dow="1"][data-hour="10"]')
        redrawn(page, before, "discover")
        state = state_of(page.url)
        assert (state["view"], int(state["from"]), int(state["to"])) == (
            "discover",
            int(cell["last"]),
            int(cell["last"]) + HOUR_MS,
        )

    def test_clicking_a_bucket_zooms_and_the_url_reopens_the_state(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=traffic&tr_top=3&tr_hm=records")
        rendered(page, "traffic")
        assert len(shown(page, "g.ep-bar:not(.other)")) == 3 and len(shown(page, "g.ep-bar.other")) == 1
        assert page.get_attribute("#tr-heatmap", "data-metric") == "records"
        assert page.input_value("#tr-top") == "3"
        bucket = next(b for b in shown(page, "rect.er-bucket") if int(b["errors"]))
        width = int(page.get_attribute("#tr-errors", "data-width-ms"))
        before = drawn(page)
        page.click(f'rect.er-bucket[data-start-ms="{bucket["startMs"]}"]', force=True)
        redrawn(page, before, "traffic")
        state = state_of(page.url)
        start = int(bucket["startMs"])
        assert int(state["from"]) == start and state["tr_top"] == "3" and state["tr_hm"] == "records"
        got = page_numbers(page)
        assert int(state["to"]) == start + width
        assert sum(v[0] for v in got["timeline"].values()) == int(bucket["records"])
        assert sum(v[1] for v in got["timeline"].values()) == int(bucket["errors"])
        url = page.url
        page.goto("about:blank")
        page.goto(url)
        rendered(page, "traffic")
        assert page_numbers(page) == got
        assert page.get_attribute("#tr-heatmap", "data-metric") == "records"
        before = drawn(page)
        page.click("#tr-hm-users")
        redrawn(page, before, "traffic")
        assert "tr_hm" not in state_of(page.url) and page.get_attribute("#tr-heatmap", "data-metric") == "users"

    def test_nothing_here(self, traffic_server: Served, page: Any) -> None:
        page.goto(traffic_server.url + "?view=traffic&q=no-such-word-anywhere")
        rendered(page, "traffic")
        assert "Nothing here" in page.inner_text("#tr-empty")
        assert page.is_hidden("#error")
