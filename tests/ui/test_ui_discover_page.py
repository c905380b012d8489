"""The Discover view in Chromium: search, facets, zoom, record, context, shareable URLs.

What the page shows is read from the DOM (text and the data-* attributes discover.js puts on
its elements) and compared with plain DuckDB over the archive (`uihelp.duck`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from uihelp import ROOT, Served, duck, rendered, ship

LEVELS_WARN = "level IN ('WARNING', 'ERROR', 'CRITICAL')"


def state_of(page: Any) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def render_count(page: Any) -> str:
    return str(page.evaluate("() => document.querySelector('main#view').dataset.rendered || ''"))


def after_render(page: Any, action: Callable[[], Any], timeout: float = 30_000) -> None:
    """Do `action` and wait until the view has drawn again (data-rendered moves on)."""
    before = render_count(page)
    action()
    page.wait_for_function(
        "(b) => { const m = document.querySelector('main#view'); return m.dataset.rendered && m.dataset.rendered !== b; }",
        arg=before,
        timeout=timeout,
    )


def open_discover(page: Any, server: Served, query: str = "") -> None:
    page.goto(server.url + ("?" + query if query else ""))
    rendered(page, "discover")


def shown_count(page: Any) -> int:
    return int(page.get_attribute("#d-count", "data-count"))


def shown_ids(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all("#view .d-list > table.d-records tr.d-row", "els => els.map(e => e.dataset.id)")
    )


def newest_ids(archive: Path, where: str, params: list[Any] | None = None, limit: int = 100) -> list[str]:
    sql = f"SELECT event_id FROM logs WHERE {where} ORDER BY ts DESC, event_id DESC LIMIT {int(limit)}"
    return [r[0] for r in duck(archive, sql, params)]


def count(archive: Path, where: str, params: list[Any] | None = None) -> int:
    ((n,),) = duck(archive, f"SELECT count(*) FROM logs WHERE {where}", params)
    return int(n)


def search(page: Any, text: str) -> None:
    page.fill("#q", text)
    after_render(page, lambda: page.press("#q", "Enter"))


def test_typing_a_search_lists_duckdbs_newest_records(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server)
    assert shown_count(page) == len(ui_data["objects"])
    search(page, "level>=WARNING service=shop")
    assert state_of(page)["q"] == "level>=WARNING service=shop"
    where = f"{LEVELS_WARN} AND service = 'shop'"
    assert shown_count(page) == count(archive, where) > 100
    assert shown_ids(page) == newest_ids(archive, where)
    # The listed rows show time, level (coloured by its class), service and message.
    first = page.locator("#view tr.d-row").first
    ((ts, level, service, message),) = duck(
        archive,
        f"SELECT strftime(ts, '%Y-%m-%d %H:%M:%S.%g'), level, service, message FROM logs "
        f"WHERE {where} ORDER BY ts DESC, event_id DESC LIMIT 1",
    )
    assert first.locator("td.d-ts").inner_text() == ts
    assert first.locator("td.d-level").inner_text() == level
    assert f"lv-{level}" in (first.locator("td.d-level").get_attribute("class") or "")
    assert first.locator("td.d-service").inner_text() == service
    assert first.locator("td.d-msg").inner_text() == message
    # Load more: the next page, in order, no duplicates.
    page.click("#d-more")
    page.wait_for_selector("#d-more[data-loaded='200']")
    assert shown_ids(page) == newest_ids(archive, where, limit=200)


def test_a_bad_filter_shows_the_servers_sentence(ui_server: Served, page: Any) -> None:
    open_discover(page, ui_server)
    search(page, "status>abc")
    status, body = ui_server.get("/api/search?" + urllib.parse.urlencode({"q": "status>abc"}))
    assert status == 400
    assert page.locator("#error").is_visible()
    assert page.inner_text("#error") == body["error"]


def test_clicking_a_facet_value_adds_the_filter(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server)
    # The shown facet values are DuckDB's top values with their counts.
    shown = page.eval_on_selector_all(
        "li.d-fv[data-field='service']", "els => els.map(e => [e.dataset.value, +e.dataset.count])"
    )
    assert [tuple(s) for s in shown] == duck(
        archive, "SELECT service, count(*) AS n FROM logs GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5"
    )
    after_render(page, lambda: page.click("li.d-fv[data-field='service'][data-value='auth'] a.d-include"))
    assert state_of(page)["q"] == "service=auth"
    assert page.input_value("#q") == "service=auth"
    assert shown_count(page) == count(archive, "service = 'auth'")
    assert page.eval_on_selector_all("li.d-fv[data-field='service']", "els => els.map(e => e.dataset.value)") == [
        "auth"
    ]
    # The minus button excludes a value.
    after_render(page, lambda: page.click("li.d-fv[data-field='level'][data-value='DEBUG'] button.d-exclude"))
    assert state_of(page)["q"] == "service=auth level!=DEBUG"
    assert shown_count(page) == count(archive, "service = 'auth' AND level IS DISTINCT FROM 'DEBUG'")
    assert shown_ids(page) == newest_ids(archive, "service = 'auth' AND level IS DISTINCT FROM 'DEBUG'")


def bucket_counts(page: Any) -> dict[int, int]:
    cells = page.eval_on_selector_all("#d-histogram g.d-bucket", "els => els.map(e => [+e.dataset.t, +e.dataset.n])")
    return {int(t): int(n) for t, n in cells if n}


def duck_buckets(archive: Path, where: str, step: int, lo: int, hi: int) -> dict[int, int]:
    rows = duck(
        archive,
        f"SELECT epoch_us(ts) // 1000 // ? * ? AS t, count(*) FROM logs WHERE ({where}) "
        "AND ts >= make_timestamptz(? * 1000) AND ts < make_timestamptz(? * 1000) GROUP BY 1",
        [step, step, lo, hi],
    )
    return {int(t): int(n) for t, n in rows}


def test_dragging_on_the_histogram_zooms_the_time_range(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server, "q=level%3E%3DWARNING")
    hist = page.locator("#d-histogram")
    lo, hi, step = (int(hist.get_attribute(f"data-{k}")) for k in ("from", "to", "step"))
    assert bucket_counts(page) == duck_buckets(archive, LEVELS_WARN, step, lo, hi)
    assert int(hist.get_attribute("data-total")) == shown_count(page) == count(archive, LEVELS_WARN)
    box = hist.bounding_box()
    y = box["y"] + box["height"] / 2

    def drag() -> None:
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=6)
        page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=6)
        page.mouse.up()

    after_render(page, drag)
    state = state_of(page)
    zoom_from, zoom_to = int(state["from"]), int(state["to"])
    # The new range is the dragged part of the old one (to within a pixel's worth of time).
    pixel = (hi - lo) / box["width"]
    assert abs(zoom_from - (lo + 0.3 * (hi - lo))) <= 2 * pixel
    assert abs(zoom_to - (lo + 0.6 * (hi - lo))) <= 2 * pixel
    where = f"{LEVELS_WARN} AND ts >= make_timestamptz({zoom_from} * 1000) AND ts < make_timestamptz({zoom_to} * 1000)"
    assert shown_count(page) == count(archive, where) > 0
    assert shown_ids(page) == newest_ids(archive, where)
    hist = page.locator("#d-histogram")
    step = int(hist.get_attribute("data-step"))
    assert (int(hist.get_attribute("data-from")), int(hist.get_attribute("data-to"))) == (zoom_from, zoom_to)
    assert bucket_counts(page) == duck_buckets(archive, LEVELS_WARN, step, zoom_from, zoom_to)
    facet_total = sum(
        int(v) for v in page.eval_on_selector_all("li.d-fv[data-field='level']", "els => els.map(e => e.dataset.count)")
    )
    assert facet_total == count(archive, where)
    assert page.input_value("#range") == "custom"
    # Back: the browser's history returns to the whole range.
    after_render(page, page.go_back)
    assert "from" not in state_of(page)
    assert shown_count(page) == count(archive, LEVELS_WARN)


def test_expanding_a_record_shows_all_its_fields_and_its_context(
    ui_server: Served, ui_data: dict[str, Any], page: Any
) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server, "q=level%3DERROR")
    first = page.locator("#view tr.d-row").first
    event_id = first.get_attribute("data-id")
    first.click()
    detail = page.locator(f"tr.d-detail[data-id='{event_id}']")
    detail.wait_for()
    assert state_of(page)["open"] == event_id
    pairs = detail.locator("table.d-fields tr").evaluate_all(
        "els => els.map(e => [e.dataset.field, e.querySelector('td').textContent])"
    )
    names = [
        r[0]
        for r in duck(
            archive,
            "SELECT column_name FROM (DESCRIBE SELECT * EXCLUDE (message_key, day, attrs, error, ts) FROM logs)",
        )
    ]
    ((*values,),) = duck(
        archive, f"SELECT {', '.join(chr(34) + n + chr(34) for n in names)} FROM logs WHERE event_id = ?", [event_id]
    )
    expected = {n: str(v) for n, v in zip(names, values, strict=True) if v is not None and v != ""}
    shown = dict(pairs)
    assert shown.pop("ts").startswith(
        duck(archive, "SELECT strftime(ts, '%Y-%m-%dT%H:%M:%S') FROM logs WHERE event_id = ?", [event_id])[0][0]
    )
    assert {k: (str(float(v)) if k == "duration_ms" else v) for k, v in shown.items()} == {
        k: (str(float(v)) if k == "duration_ms" else v) for k, v in expected.items()
    }
    ((attrs, error),) = duck(archive, "SELECT attrs, error FROM logs WHERE event_id = ?", [event_id])
    assert json.loads(detail.locator("pre.d-attrs").inner_text()) == json.loads(attrs)
    assert detail.locator("pre.d-error").inner_text() == error and "Traceback" in error

    after_render(page, lambda: detail.locator("button.d-context").click())
    assert state_of(page)["context"] == event_id
    ((source, offset, rid),) = duck(
        archive, 'SELECT source, "offset", request_id FROM logs WHERE event_id = ?', [event_id]
    )
    before = [
        r[0]
        for r in duck(
            archive,
            'SELECT event_id FROM logs WHERE source = ? AND "offset" < ? ORDER BY "offset" DESC LIMIT 20',
            [source, offset],
        )
    ]
    after = [
        r[0]
        for r in duck(
            archive,
            'SELECT event_id FROM logs WHERE source = ? AND "offset" > ? ORDER BY "offset" LIMIT 20',
            [source, offset],
        )
    ]
    near = page.eval_on_selector_all("#d-context-source tr.d-row", "els => els.map(e => e.dataset.id)")
    assert near == [*reversed(before), event_id, *after]
    assert page.get_attribute("#d-context-source tr.d-row.d-self", "data-id") == event_id
    shown_ids_ = {event_id, *before, *after}
    request = [
        r[0] for r in duck(archive, "SELECT event_id FROM logs WHERE request_id = ? ORDER BY ts, event_id", [rid])
    ]
    got = page.eval_on_selector_all("#d-context-request tr.d-row", "els => els.map(e => e.dataset.id)")
    assert got == [i for i in request if i not in shown_ids_]
    # Back to the search, the record still open.
    after_render(page, lambda: page.click("button.d-back"))
    assert page.locator(f"tr.d-detail[data-id='{event_id}']").count() == 1


def test_same_request_sets_the_search(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    archive = ui_data["archive"]
    ((event_id, rid),) = duck(
        archive,
        "SELECT event_id, request_id FROM logs WHERE user_id IS NOT NULL ORDER BY ts DESC, event_id DESC LIMIT 1",
    )
    open_discover(page, ui_server)
    page.locator(f"tr.d-row[data-id='{event_id}']").click()
    after_render(page, lambda: page.click(f"tr.d-detail[data-id='{event_id}'] button.d-same-request"))
    assert state_of(page)["q"] == f"request_id={rid}"
    assert shown_ids(page) == newest_ids(archive, "request_id = ?", [rid])
    first = shown_ids(page)[0]
    ((user,),) = duck(archive, "SELECT user_id FROM logs WHERE event_id = ?", [event_id])
    page.locator(f"tr.d-row[data-id='{first}']").click()
    if user and page.locator("button.d-same-user").count():
        ((row_user,),) = duck(archive, "SELECT user_id FROM logs WHERE event_id = ?", [first])
        after_render(page, lambda: page.click("button.d-same-user"))
        assert state_of(page)["q"] == f"user_id={row_user}"
        assert shown_count(page) == count(archive, "user_id = ?", [row_user])


def test_a_copied_url_reopens_the_same_state(ui_server: Served, ui_data: dict[str, Any], browser: Any) -> None:
    archive = ui_data["archive"]
    ((lo, hi),) = duck(
        archive, "SELECT epoch_us(quantile_disc(ts, 0.2)) // 1000, epoch_us(quantile_disc(ts, 0.7)) // 1000 FROM logs"
    )
    where = f"service = 'search' AND ts >= make_timestamptz({lo} * 1000) AND ts < make_timestamptz({hi} * 1000)"
    # An id on the second page: the reopened page must show it although it is not listed first.
    deep = newest_ids(archive, where, limit=150)[-1]
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        open_discover(
            page, ui_server, urllib.parse.urlencode({"view": "discover", "q": "service=search", "from": lo, "to": hi})
        )
        page.locator("#view tr.d-row").nth(3).click()
        opened = state_of(page)["open"]
        copied = page.url
        first_ids, first_count = shown_ids(page), shown_count(page)
        again = context.new_page()
        again.goto(copied)
        rendered(again, "discover")
        assert again.input_value("#q") == "service=search"
        assert shown_count(again) == first_count == count(archive, where)
        assert shown_ids(again) == first_ids == newest_ids(archive, where)
        assert again.get_attribute("tr.d-detail", "data-id") == opened
        third = context.new_page()
        third.goto(
            ui_server.url + "?" + urllib.parse.urlencode({"q": "service=search", "from": lo, "to": hi, "open": deep})
        )
        rendered(third, "discover")
        assert third.get_attribute("#d-pinned tr.d-detail", "data-id") == deep
    finally:
        context.close()


def test_no_records_is_a_message_not_an_error(
    ui_server: Served, serve: Callable[..., Served], tmp_path: Path, page: Any
) -> None:
    open_discover(page, ui_server, "q=no-such-word-anywhere")
    assert page.locator("#d-empty").is_visible()
    assert shown_count(page) == 0 and page.locator("#error").is_hidden()
    (tmp_path / "archive").mkdir()
    empty = serve("--archive", str(tmp_path / "archive"))
    open_discover(page, empty)
    assert page.locator("#d-empty").is_visible()
    assert shown_count(page) == 0 and page.locator("#error").is_hidden()


def test_demo_data_screenshot(serve: Callable[..., Served], tmp_path: Path, page: Any) -> None:
    """The view over the demo log (scripts/demo_log.py), checked and saved to /tmp/ui-discover.png."""
    log = tmp_path / "demo.log"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo_log.py"), "--out", str(log), "--lines", "20000"],
        check=True,
        timeout=300,
    )
    objects = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    archive = ship(tmp_path, [])  # an empty app.log first: the demo log is shipped below
    result = subprocess.run(
        [sys.executable, "-m", "logpipe", "ship", "--once", str(log), "--archive", str(archive), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    server = serve("--archive", str(archive))
    # The default page is the last hour of the records (the demo log spans six hours).
    open_discover(page, server, "view=discover")
    ((newest_ms,),) = duck(archive, "SELECT epoch_ms(max(ts)) FROM logs")
    latest = f"ts >= make_timestamptz(({newest_ms} + 1 - 3600000) * 1000) AND ts < make_timestamptz(({newest_ms} + 1) * 1000)"
    assert 0 < shown_count(page) == count(archive, latest) < len(objects) == count(archive, "TRUE")
    shown = page.eval_on_selector_all(
        "li.d-fv[data-field='endpoint']", "els => els.map(e => [e.dataset.value, +e.dataset.count])"
    )
    assert [tuple(s) for s in shown] == duck(
        archive,
        f"SELECT endpoint, count(*) AS n FROM logs WHERE endpoint IS NOT NULL AND {latest} "
        "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5",
    )
    assert shown_ids(page) == newest_ids(archive, latest)
    page.mouse.move(0, 0)
    page.screenshot(path="/tmp/ui-discover.png")
    # Open the newest record with a stack trace (an id in the URL, as a shared link would).
    ((event_id,),) = duck(
        archive, "SELECT event_id FROM logs WHERE error IS NOT NULL ORDER BY ts DESC, event_id DESC LIMIT 1"
    )
    open_discover(page, server, urllib.parse.urlencode({"view": "discover", "open": event_id}))
    assert page.get_attribute("tr.d-detail", "data-id") == event_id
    assert "Traceback" in page.inner_text("tr.d-detail pre.d-error")
    page.screenshot(path="/tmp/ui-discover-record.png")


HOSTILE_USER = "o'brien\"; DROP TABLE logs; --"


def test_a_hostile_value_is_just_a_value(serve: Callable[..., Served], tmp_path: Path, page: Any) -> None:
    """Records whose user_id has quotes and SQL text: the facet click finds exactly them."""
    objects = [
        {
            "timestamp": f"2026-11-20T10:00:{i:02d}.000001Z",
            "level": "INFO",
            "service": "shop",
            "message": f"hello {i}",
            "user_id": HOSTILE_USER if i % 3 == 0 else f"u{i}",
        }
        for i in range(30)
    ]
    archive = ship(tmp_path, objects)
    server = serve("--archive", str(archive))
    expected = sum(1 for o in objects if o["user_id"] == HOSTILE_USER)
    open_discover(page, server)
    value = page.locator("li.d-fv[data-field='user_id']").first
    assert value.get_attribute("data-value") == HOSTILE_USER
    after_render(page, lambda: value.locator("a.d-include").click())
    assert state_of(page)["q"] == 'user_id="o\'brien\\"; DROP TABLE logs; --"'
    assert shown_count(page) == expected == count(archive, "user_id = ?", [HOSTILE_USER])
    assert shown_ids(page) == newest_ids(archive, "user_id = ?", [HOSTILE_USER])
    # And the exclusion of it; the table is intact afterwards.
    page.goto(server.url)
    rendered(page, "discover")
    after_render(page, lambda: page.locator("li.d-fv[data-field='user_id']").first.locator("button.d-exclude").click())
    assert shown_count(page) == len(objects) - expected
    assert count(archive, "TRUE") == len(objects)


def test_adding_an_attrs_facet_and_clicking_its_value(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server, "q=level%3E%3DWARNING")
    page.fill("#d-add-facet", "attrs.region")
    after_render(page, lambda: page.press("#d-add-facet", "Enter"))
    assert state_of(page)["facets"] == "attrs.region"
    shown = page.eval_on_selector_all(
        "li.d-fv[data-field='attrs.region']", "els => els.map(e => [e.dataset.value, +e.dataset.count])"
    )
    region = "json_extract_string(attrs, '$.region')"
    assert [tuple(s) for s in shown] == duck(
        archive,
        f"SELECT {region} AS v, count(*) AS n FROM logs WHERE {LEVELS_WARN} "
        "AND v IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1 LIMIT 5",
    )
    after_render(page, lambda: page.click("li.d-fv[data-field='attrs.region'][data-value='eu'] a.d-include"))
    assert state_of(page)["q"] == "level>=WARNING attrs.region=eu"
    assert shown_count(page) == count(archive, f"{LEVELS_WARN} AND {region} = 'eu'")
    after_render(page, lambda: page.click(".d-facet[data-field='attrs.region'] button.d-remove-facet"))
    assert "facets" not in state_of(page)
    assert page.locator(".d-facet[data-field='attrs.region']").count() == 0
