"""Slow endpoints on the archive: /api/slow and /api/slow/timeline, and the view in Chromium.

Every number is checked against an independent answer: plain DuckDB's `quantile_cont` over the
Parquet files, and (for the counts and percentiles) the generator's own records with the
textbook linear-interpolation percentile.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import trafficdata
from trafficdata import START, quantile_inclusive, query, template_of
from trafficdata import iso as iso_of
from uihelp import Served, drawn, duck, redrawn, rendered

# The generated nine days, shipped once for this module, and `logpipe ui` serving them.
traffic_data = trafficdata.traffic_data
traffic_server = trafficdata.traffic_server

WIDTHS_S = (1, 5, 10, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


def duck_groups(
    archive: Any, by: str, where: str = "TRUE", params: list[Any] | None = None
) -> dict[str, tuple[Any, ...]]:
    """key -> (count, p50, p95, p99, max, share of 5xx) by plain DuckDB."""
    cols = "service" if by == "service" else "method || ' ' || endpoint"
    present = "service" if by == "service" else "endpoint"
    rows = duck(
        archive,
        f"SELECT {cols}, count(*), quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95), "
        f"quantile_cont(duration_ms, 0.99), max(duration_ms), avg(CASE WHEN status >= 500 THEN 1.0 ELSE 0.0 END) "
        f"FROM logs WHERE duration_ms IS NOT NULL AND {present} IS NOT NULL AND ({where}) GROUP BY 1",
        params,
    )
    return {r[0]: r[1:] for r in rows}


def assert_groups(groups: list[dict[str, Any]], expected: dict[str, tuple[Any, ...]]) -> None:
    assert expected, "DuckDB found nothing: the comparison would prove nothing"
    assert {g["key"] for g in groups} == set(expected)
    for g in groups:
        count, p50, p95, p99, top, rate = expected[g["key"]]
        assert g["count"] == count, g["key"]
        assert g["p50_ms"] == pytest.approx(p50, rel=1e-12, abs=1e-9), g["key"]
        assert g["p95_ms"] == pytest.approx(p95, rel=1e-12, abs=1e-9), g["key"]
        assert g["p99_ms"] == pytest.approx(p99, rel=1e-12, abs=1e-9), g["key"]
        assert g["max_ms"] == pytest.approx(top), g["key"]
        assert g["error_rate"] == pytest.approx(float(rate)), g["key"]
    p95s = [g["p95_ms"] for g in groups]
    assert p95s == sorted(p95s, reverse=True), "slowest p95 first"


class TestSlowApi:
    def test_per_endpoint_equals_duckdb_quantile_cont(
        self, traffic_server: Served, traffic_data: dict[str, Any]
    ) -> None:
        status, body = traffic_server.get(query("slow"))
        assert status == 200, body
        assert body["by"] == "endpoint" and body["threshold_ms"] is None
        assert_groups(body["groups"], duck_groups(traffic_data["archive"], "endpoint"))
        assert body["requests"] == sum(1 for o in traffic_data["objects"] if "duration_ms" in o)

    def test_percentiles_equal_the_generators_records(
        self, traffic_server: Served, traffic_data: dict[str, Any]
    ) -> None:
        durations: dict[str, list[float]] = defaultdict(list)
        for o in traffic_data["objects"]:
            if "duration_ms" in o:
                durations[f"{o['method']} {template_of(o)}"].append(float(o["duration_ms"]))
        _, body = traffic_server.get(query("slow"))
        assert {g["key"]: g["count"] for g in body["groups"]} == {k: len(v) for k, v in durations.items()}
        for g in body["groups"]:
            for p, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
                assert g[name] == pytest.approx(quantile_inclusive(durations[g["key"]], p), rel=1e-12), (g["key"], name)

    def test_by_service_with_search_and_range(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        since, until = START + timedelta(days=1, hours=6), START + timedelta(days=4, hours=20)
        _, body = traffic_server.get(
            query("slow", by="service", q="status<500", **{"from": iso_of(since), "to": iso_of(until)})
        )
        expected = duck_groups(
            traffic_data["archive"], "service", "status < 500 AND ts >= ? AND ts < ?", [since, until]
        )
        assert_groups(body["groups"], expected)
        assert all(g["filter"] == f"service={g['key']}" for g in body["groups"])

    def test_threshold_keeps_groups_whose_p95_is_above_it(
        self, traffic_server: Served, traffic_data: dict[str, Any]
    ) -> None:
        everything = duck_groups(traffic_data["archive"], "endpoint")
        p95s = sorted(v[2] for v in everything.values())
        cut = p95s[len(p95s) // 2]  # exactly one group's p95: it must be left out (strictly above)
        _, body = traffic_server.get(query("slow", threshold=f"{cut}ms"))
        assert body["threshold_ms"] == pytest.approx(cut)
        assert_groups(body["groups"], {k: v for k, v in everything.items() if v[2] > cut})
        assert 0 < len(body["groups"]) < len(everything)
        _, seconds = traffic_server.get(query("slow", threshold="0.2s"))
        assert {g["key"] for g in seconds["groups"]} == {k for k, v in everything.items() if v[2] > 200}

    def test_timeline_per_bucket_equals_duckdb(self, traffic_server: Served, traffic_data: dict[str, Any]) -> None:
        _, slow = traffic_server.get(query("slow"))
        group = next(g for g in slow["groups"] if g["key"] == "POST /api/cart/{id}/checkout")
        status, body = traffic_server.get(query("slow/timeline", q=group["filter"], buckets=30))
        assert status == 200, body
        width = body["width_ms"]
        assert width == min(s for s in WIDTHS_S if _count(traffic_data, s * 1000) <= 30) * 1000
        rows = duck(
            traffic_data["archive"],
            "SELECT epoch_ms(ts) // ? * ?, count(*), quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95), "
            "quantile_cont(duration_ms, 0.99) FROM logs WHERE duration_ms IS NOT NULL AND method = ? AND endpoint = ? GROUP BY 1",
            [width, width, group["method"], group["endpoint"]],
        )
        expected = {r[0]: r[1:] for r in rows}
        shown = {b["start_ms"]: b for b in body["buckets"]}
        assert set(expected) <= set(shown)
        assert sum(b["count"] for b in body["buckets"]) == group["count"]
        for start, b in shown.items():
            if start not in expected:
                assert b["count"] == 0 and b["p95_ms"] is None
                continue
            count, p50, p95, p99 = expected[start]
            assert (b["count"], b["p50_ms"], b["p95_ms"], b["p99_ms"]) == (
                count,
                pytest.approx(p50),
                pytest.approx(p95),
                pytest.approx(p99),
            )
        starts = [b["start_ms"] for b in body["buckets"]]
        assert starts == list(range(starts[0], starts[-1] + width, width)), "contiguous, empty buckets included"

    def test_nothing_matching_is_an_empty_answer(self, traffic_server: Served) -> None:
        status, body = traffic_server.get(query("slow", q="no-such-word-anywhere"))
        assert status == 200 and body["groups"] == [] and body["requests"] == 0
        status, body = traffic_server.get(query("slow/timeline", q="no-such-word-anywhere"))
        assert status == 200 and body["buckets"] == []

    def test_bad_parameters_are_one_sentence(self, traffic_server: Served) -> None:
        status, body = traffic_server.get(query("slow", by="host"))
        assert status == 400 and "by must be endpoint or service" in body["error"]
        status, body = traffic_server.get(query("slow", threshold="fast"))
        assert status == 400 and "bad duration" in body["error"]


def _count(traffic_data: dict[str, Any], width_ms: int) -> int:
    """How many aligned buckets of `width_ms` the checkout's timed records span (first to last)."""
    ((lo, hi),) = duck(
        traffic_data["archive"],
        "SELECT min(epoch_us(ts)), max(epoch_us(ts)) + 1 FROM logs "
        "WHERE duration_ms IS NOT NULL AND method = 'POST' AND endpoint = '/api/cart/{id}/checkout'",
    )
    width = width_ms * 1000
    first = lo // width * width
    return -(-(hi - first) // width)


# --- the page ------------------------------------------------------------------------------


def rows_shown(page: Any, selector: str) -> list[dict[str, str]]:
    return page.eval_on_selector_all(selector, "els => els.map(e => ({...e.dataset}))")


def state_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


class TestSlowPage:
    def test_table_and_chart_show_duckdbs_percentiles(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=slow")
        rendered(page, "slow")
        expected = duck_groups(traffic_data["archive"], "endpoint")
        rows = rows_shown(page, "tr.slow-row")
        bars = rows_shown(page, "g.slow-bar")
        assert [r["key"] for r in rows] == [b["key"] for b in bars]
        assert [r["key"] for r in rows] == sorted(expected, key=lambda k: (-expected[k][2], k))
        for r in rows:
            count, p50, p95, p99, _, _ = expected[r["key"]]
            assert int(r["count"]) == count
            assert (float(r["p50"]), float(r["p95"]), float(r["p99"])) == (
                pytest.approx(p50),
                pytest.approx(p95),
                pytest.approx(p99),
            )
        text = page.inner_text("table.slow-table")
        assert f"{expected[rows[0]['key']][0]:,}" in text
        assert page.is_hidden("#error")

    def test_clicking_a_row_draws_its_latency_over_time_and_the_url_keeps_it(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=slow")
        rendered(page, "slow")
        row = rows_shown(page, "tr.slow-row")[1]
        before = drawn(page)
        page.click(f'tr.slow-row[data-key="{row["key"]}"] td.mono')
        redrawn(page, before, "slow")
        assert state_of(page.url)["slow_sel"] == row["filter"]
        shown = _timeline_shown(page)
        assert page.is_visible(f'tr.slow-row.selected[data-key="{row["key"]}"]')
        method, endpoint = row["filter"].split(" ")
        width = int(page.get_attribute("#slow-timeline", "data-width-ms"))
        expected = duck(
            traffic_data["archive"],
            "SELECT epoch_ms(ts) // ? * ?, count(*), quantile_cont(duration_ms, 0.95) FROM logs "
            "WHERE duration_ms IS NOT NULL AND method = ? AND endpoint = ? GROUP BY 1",
            [width, width, method.split("=", 1)[1], endpoint.split("=", 1)[1]],
        )
        assert expected
        for start, count, p95 in expected:
            assert shown[start][0] == count
            assert shown[start][1] == pytest.approx(p95)
        assert sum(c for c, _ in shown.values()) == int(row["count"])
        # The copied URL opens the same state.
        url = page.url
        page.goto("about:blank")
        page.goto(url)
        rendered(page, "slow")
        page.wait_for_selector("#slow-timeline")
        assert _timeline_shown(page) == shown
        # A bucket of the line zooms the range to it; the group stays selected.
        start = max(shown, key=lambda k: shown[k][0])
        before = drawn(page)
        page.click(f'rect.lt-bucket[data-start-ms="{start}"]', force=True)
        redrawn(page, before, "slow")
        state = state_of(page.url)
        assert (int(state["from"]), int(state["to"]), state["slow_sel"]) == (start, start + width, row["filter"])
        assert int(page.get_attribute(f'tr.slow-row[data-key="{row["key"]}"]', "data-count")) == shown[start][0]

    def test_drill_down_opens_discover_at_p95(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=slow&q=service%3Dshop")
        rendered(page, "slow")
        row = rows_shown(page, "tr.slow-row")[0]
        before = drawn(page)
        page.click(f'tr.slow-row[data-key="{row["key"]}"] a.drill')
        redrawn(page, before, "discover")
        q = state_of(page.url)["q"]
        terms, _, at_least = q.rpartition(" duration_ms>=")
        assert terms == f"service=shop {row['filter']}"
        # The p95 as a person reads it: at most 3 decimals, cut (never rounded up) from the p95 (#20 item 18).
        p95 = float(row["p95"])
        assert len(at_least.partition(".")[2]) <= 3 and p95 - 0.001 < float(at_least) <= p95
        method, endpoint = (t.split("=", 1)[1] for t in row["filter"].split(" "))
        ((n, n_shown, total),) = duck(
            traffic_data["archive"],
            "SELECT count(*) FILTER (WHERE duration_ms >= ?), count(*) FILTER (WHERE duration_ms >= ?), count(*) "
            "FROM logs WHERE service = 'shop' AND method = ? AND endpoint = ? AND duration_ms IS NOT NULL",
            [p95, float(at_least), method, endpoint],
        )
        assert total == int(row["count"]) and 0 < n <= total * 0.05 + 1  # the slowest twentieth
        assert n_shown == n  # every record at or above the p95, and no other

    def test_threshold_box_and_service_switch(
        self, traffic_server: Served, traffic_data: dict[str, Any], page: Any
    ) -> None:
        page.goto(traffic_server.url + "?view=slow")
        rendered(page, "slow")
        page.fill("#slow-threshold", "150ms")
        before = drawn(page)
        page.click("#slow-apply")
        redrawn(page, before, "slow")
        assert state_of(page.url)["slow_thr"] == "150ms"
        expected = duck_groups(traffic_data["archive"], "endpoint")
        assert {r["key"] for r in rows_shown(page, "tr.slow-row")} == {k for k, v in expected.items() if v[2] > 150}
        before = drawn(page)
        page.click("#slow-by-service")
        redrawn(page, before, "slow")
        assert state_of(page.url)["slow_by"] == "service"
        services = duck_groups(traffic_data["archive"], "service")
        assert {r["key"] for r in rows_shown(page, "tr.slow-row")} == {k for k, v in services.items() if v[2] > 150}
        page.reload()
        rendered(page, "slow")
        assert page.input_value("#slow-threshold") == "150ms"
        assert "on" in (page.get_attribute("#slow-by-service", "class") or "")

    def test_nothing_here(self, traffic_server: Served, page: Any) -> None:
        page.goto(traffic_server.url + "?view=slow&q=no-such-word-anywhere")
        rendered(page, "slow")
        assert "Nothing here" in page.inner_text("#slow-empty")
        assert page.is_hidden("#error")
        page.goto(traffic_server.url + "?view=slow&slow_thr=1h")
        rendered(page, "slow")
        assert "above the threshold" in page.inner_text("#slow-empty")


def _timeline_shown(page: Any) -> dict[int, tuple[int, float | None]]:
    out = {}
    for b in rows_shown(page, "rect.lt-bucket"):
        out[int(b["startMs"])] = (int(b["count"]), float(b["p95"]) if b["p95"] else None)
    return out
