"""Discover's default range: the last hour of the records (ending at the newest one), all time a click away.

The archive here is old logs over eleven days (sparse), with a busy last five hours that end
days before now, so "the last hour" of the page is not "the last hour before now" (that would be
empty) and not everything either. Every count is compared with plain DuckDB over the Parquet
files (`uihelp.duck`), the window computed there from max(ts).
"""

from __future__ import annotations

import random
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uihelp import Served, duck, rendered, ship

from tests.support.exdata import logpipe, write_log

HOUR_MS = 3_600_000
NEWEST = datetime(2026, 10, 3, 18, 42, 17, 123456, tzinfo=UTC)
SERVICES = ("shop", "auth", "search", "billing")
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")


def generate() -> list[dict[str, Any]]:
    rng = random.Random(13)
    moments = [NEWEST - timedelta(days=11) + timedelta(minutes=rng.randint(0, 11 * 1440 - 6 * 60)) for _ in range(400)]
    moments += [NEWEST - timedelta(seconds=rng.uniform(0, 5 * 3600)) for _ in range(2500)]
    # On the window's edges: `from` (the newest ms + 1 ms - 1 h) is in, one microsecond before is out.
    edge = (
        NEWEST.replace(microsecond=NEWEST.microsecond // 1000 * 1000) + timedelta(milliseconds=1) - timedelta(hours=1)
    )
    moments += [edge, edge - timedelta(microseconds=1), NEWEST]
    return [
        {
            "timestamp": t.isoformat().replace("+00:00", "Z"),
            "level": rng.choice(LEVELS),
            "service": rng.choice(SERVICES),
            "message": f"event {i} of the old log",
            "user_id": f"u{rng.randint(1, 40)}",
        }
        for i, t in enumerate(moments)
    ]


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory, serve: Any) -> dict[str, Any]:
    objects = generate()
    archive = ship(tmp_path_factory.mktemp("latest"), objects)
    return {"archive": archive, "objects": objects, "server": serve("--archive", str(archive))}


def window(archive: Path) -> tuple[int, int]:
    """The last hour of the records, independently: [newest ms + 1 - 1 h, newest ms + 1)."""
    ((newest_ms,),) = duck(archive, "SELECT epoch_ms(max(ts)) FROM logs")
    return int(newest_ms) + 1 - HOUR_MS, int(newest_ms) + 1


def in_window(archive: Path) -> str:
    lo, hi = window(archive)
    return f"ts >= make_timestamptz({lo} * 1000) AND ts < make_timestamptz({hi} * 1000)"


def count(archive: Path, where: str) -> int:
    ((n,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where}")
    return int(n)


def newest_ids(archive: Path, where: str, limit: int = 100) -> list[str]:
    return [
        r[0]
        for r in duck(
            archive, f"SELECT event_id FROM logs WHERE {where} ORDER BY ts DESC, event_id DESC LIMIT {int(limit)}"
        )
    ]


def ok(server: Served, path: str, **params: Any) -> Any:
    status, body = server.get(f"/api/{path}?{urllib.parse.urlencode(params)}")
    assert status == 200, body
    return body


# --- the API -------------------------------------------------------------------------------------


def test_latest_is_the_hour_ending_at_the_newest_record(old: dict[str, Any]) -> None:
    archive, server = old["archive"], old["server"]
    lo, hi = window(archive)
    where = in_window(archive)
    n = count(archive, where)
    assert 0 < n < len(old["objects"])  # neither empty nor everything
    assert count(archive, f"ts >= make_timestamptz({lo} * 1000 - 1) AND ts < make_timestamptz({lo} * 1000)") == 1
    for q, extra in (("", "TRUE"), ("level>=WARNING", "level IN ('WARNING', 'ERROR', 'CRITICAL')")):
        found = ok(server, "search", q=q, latest="1h", limit=50, count=1)
        assert found["window"]["from"] == lo and found["window"]["to"] == hi and found["window"]["latest"] == "1h"
        assert found["total"] == count(archive, f"{where} AND {extra}")
        assert [r["event_id"] for r in found["rows"]] == newest_ids(archive, f"{where} AND {extra}", 50)
        hist = ok(server, "histogram", q=q, latest="1h")
        assert (hist["from"], hist["to"]) == (lo, hi) and hist["window"]["from"] == lo
        step = hist["step_ms"]
        expected = dict(
            duck(
                archive,
                f"SELECT epoch_ms(ts) // ? * ?, count(*) FROM logs WHERE {where} AND {extra} GROUP BY 1",
                [step, step],
            )
        )
        assert {b["t"]: b["n"] for b in hist["buckets"] if b["n"]} == expected
        assert hist["total"] == found["total"]
        facets = ok(server, "facets", q=q, latest="1h")
        assert facets["total"] == found["total"]
        service = next(f for f in facets["fields"] if f["field"] == "service")
        assert [(v["value"], v["count"]) for v in service["values"]] == duck(
            archive,
            f"SELECT service, count(*) AS n FROM logs WHERE {where} AND {extra} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5",
        )


def test_a_given_range_wins_over_latest_and_no_latest_is_all_time(old: dict[str, Any]) -> None:
    archive, server = old["archive"], old["server"]
    found = ok(server, "search", latest="1h", count=1, **{"from": "2026-09-01T00:00:00Z"})
    assert "window" not in found and found["total"] == count(archive, "ts >= TIMESTAMPTZ '2026-09-01 00:00:00+00'")
    everything = ok(server, "search", count=1)
    assert "window" not in everything and everything["total"] == len(old["objects"]) == count(archive, "TRUE")
    assert ok(server, "facets")["total"] == len(old["objects"])


@pytest.mark.parametrize("latest", ["1 hour", "0h", "1y", "-1h", "1h; DROP TABLE logs"])
def test_a_bad_latest_is_400(old: dict[str, Any], latest: str) -> None:
    status, body = old["server"].get(f"/api/search?{urllib.parse.urlencode({'latest': latest})}")
    assert status == 400 and "latest must be a span" in body["error"]


def test_an_empty_archive_has_no_latest_window(serve: Any, tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    server = serve("--archive", str(tmp_path / "archive"))
    found = ok(server, "search", latest="1h", count=1)
    assert found["total"] == 0 and found["rows"] == [] and "window" not in found
    assert ok(server, "histogram", latest="1h")["buckets"] == []


def test_parts_written_later_move_the_window(old: dict[str, Any], serve: Any, tmp_path: Path) -> None:
    """The newest record comes from each part's statistics (cached per part): a new part is seen."""
    objects = generate()
    archive = ship(tmp_path, objects)
    server = serve("--archive", str(archive))
    assert ok(server, "search", latest="1h")["window"]["to"] == window(archive)[1]
    later = NEWEST + timedelta(days=2)
    newer = [
        {
            "timestamp": (later + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "level": "INFO",
            "service": "shop",
            "message": f"later {i}",
        }
        for i in range(7)
    ]
    write_log(tmp_path / "later.log", newer)
    shipped = logpipe("ship", "--once", str(tmp_path / "later.log"), "--archive", str(archive), "--no-progress")
    assert shipped.returncode == 0, shipped.stderr
    lo, hi = window(archive)
    found = ok(server, "search", latest="1h", count=1)
    assert (found["window"]["from"], found["window"]["to"]) == (lo, hi)
    assert found["total"] == 7 == count(archive, in_window(archive))


# --- the page ------------------------------------------------------------------------------------


def shown_count(page: Any) -> int:
    return int(page.get_attribute("#d-count", "data-count"))


def shown_ids(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all("#view .d-list > table.d-records tr.d-row", "els => els.map(e => e.dataset.id)")
    )


def rerendered(page: Any, action: Any) -> None:
    before = page.evaluate("() => document.querySelector('main#view').dataset.rendered || ''")
    action()
    page.wait_for_function(
        "(b) => { const m = document.querySelector('main#view'); return m.dataset.rendered && m.dataset.rendered !== b; }",
        arg=before,
        timeout=30_000,
    )


def test_the_page_opens_on_the_last_hour_of_the_records(old: dict[str, Any], page: Any) -> None:
    archive, server = old["archive"], old["server"]
    lo, hi = window(archive)
    where = in_window(archive)
    page.goto(server.url)
    rendered(page, "discover")
    assert page.input_value("#range") == "latest"
    assert page.locator("#range option:checked").inner_text() == "last hour of the records"
    assert shown_count(page) == count(archive, where) < len(old["objects"])
    assert shown_ids(page) == newest_ids(archive, where)
    hist = page.locator("#d-histogram")
    assert (int(hist.get_attribute("data-from")), int(hist.get_attribute("data-to"))) == (lo, hi)
    assert int(hist.get_attribute("data-total")) == count(archive, where)
    assert page.get_attribute("#d-hist", "data-range") == "latest"
    to_text = datetime.fromtimestamp(hi / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")
    assert page.inner_text("#d-hist .d-range").startswith(f"last hour of the records (to {to_text} UTC)")
    levels = page.eval_on_selector_all(
        "li.d-fv[data-field='level']", "els => els.map(e => [e.dataset.value, +e.dataset.count])"
    )
    assert [tuple(v) for v in levels] == duck(
        archive, f"SELECT level, count(*) AS n FROM logs WHERE {where} GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"
    )
    # Load more stays in the hour.
    page.click("#d-more")
    page.wait_for_selector("#d-more[data-loaded='200']")
    assert shown_ids(page) == newest_ids(archive, where, 200)
    # The URL names no range, so a copied one means "the latest hour" again.
    assert "from" not in urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)

    # All time is one choice in the range select away; the URL says so.
    rerendered(page, lambda: page.select_option("#range", ""))
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert state.get("span") == "all" and "from" not in state
    assert shown_count(page) == len(old["objects"]) == count(archive, "TRUE")
    assert shown_ids(page) == newest_ids(archive, "TRUE")
    assert page.get_attribute("#d-hist", "data-range") == "all"
    legend = page.inner_text("#d-hist .d-legend")
    assert legend.startswith("all time") and "3 h buckets" in legend  # eleven days: 3 h steps
    assert int(page.get_attribute("#d-histogram", "data-step")) == 3 * HOUR_MS
    assert page.input_value("#range") == ""

    # And back to the last hour.
    rerendered(page, lambda: page.select_option("#range", "latest"))
    assert "span" not in page.url
    assert shown_count(page) == count(archive, where)


def test_a_zoom_in_the_last_hour_writes_absolute_times(old: dict[str, Any], page: Any) -> None:
    archive, server = old["archive"], old["server"]
    lo, hi = window(archive)
    page.goto(server.url)
    rendered(page, "discover")
    hist = page.locator("#d-histogram")
    box = hist.bounding_box()
    y = box["y"] + box["height"] / 2

    def drag() -> None:
        page.mouse.move(box["x"] + box["width"] * 0.5, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.9, y, steps=8)
        page.mouse.up()

    rerendered(page, drag)
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    zoom_from, zoom_to = int(state["from"]), int(state["to"])
    assert lo < zoom_from < zoom_to < hi
    assert page.input_value("#range") == "custom"
    where = f"ts >= make_timestamptz({zoom_from} * 1000) AND ts < make_timestamptz({zoom_to} * 1000)"
    assert shown_count(page) == count(archive, where) > 0
    assert page.get_attribute("#d-hist", "data-range") == "given"


def test_bucket_steps_read_as_round_units(old: dict[str, Any], page: Any) -> None:
    page.goto(old["server"].url)
    rendered(page, "discover")
    steps = [1000, 5000, 60_000, 300_000, 3_600_000, 10_800_000, 86_400_000, 604_800_000]
    texts = page.evaluate(
        "async (steps) => { const d = await import('/static/discover.js'); return steps.map(d.stepText); }", steps
    )
    assert texts == ["1 s", "5 s", "1 min", "5 min", "1 h", "3 h", "1 d", "7 d"]


def test_the_last_hour_reads_only_its_row_groups(old: dict[str, Any]) -> None:
    """The archive's SQL for a range leaves out the row groups outside it (DuckDB's own plan says
    how many it scanned), and counts what the filter's own terms count; the filter language's
    own SQL prunes the same row groups (its comparisons are bare, not wrapped in coalesce)."""
    import re

    from logpipe.archive.reader import open_archive
    from logpipe.read.archive_store import where_of
    from logpipe.read.filters import to_sql
    from logpipe.ui.api import Params

    archive = old["archive"]
    lo, hi = window(archive)
    params = Params({"from": str(lo), "to": str(hi), "q": "level>=INFO"}, datetime.now(UTC))

    def scanned(where: str, values: list[Any]) -> tuple[int, int, int]:
        con = open_archive(archive, timezone="UTC")
        try:
            ((n,),) = con.execute(f"SELECT count(*) FROM logs WHERE {where}", values).fetchall()
            plan = con.execute(f"EXPLAIN ANALYZE SELECT count(*) FROM logs WHERE {where}", values).fetchall()[0][1]
        finally:
            con.close()
        read = [(int(a), int(b)) for a, b in re.findall(r"Row Groups Scanned: (\d+) / (\d+)", plan)]
        return int(n), sum(a for a, _ in read), sum(b for _, b in read)

    n, read, groups = scanned(*where_of(params.filter()))
    assert n == count(archive, f"{in_window(archive)} AND level IN ('INFO', 'WARNING', 'ERROR', 'CRITICAL')")
    assert 0 < read < groups  # the old days' row groups are skipped
    plain, plain_read, _ = scanned(*to_sql(params.filter()))
    assert plain == n and plain_read == read  # the filter language's own `ts` terms prune as much
