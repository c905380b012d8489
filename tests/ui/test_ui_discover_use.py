"""Discover as its users use it, in Chromium: chosen columns, live mode, answers that do not
blank the page, and every view on a phone (#21 item 5).

What the page shows is read from the DOM and compared with the test's own reading of the data:
plain DuckDB over the archive's Parquet files (`uihelp.duck`) and `json.loads` of each record's
attrs, never with what logpipe computes.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uihelp import Served, duck, rendered, ship

from tests.support.exdata import generate, logpipe, write_log

PHONE = {"width": 390, "height": 844}


def state_of(page: Any) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def render_count(page: Any) -> str:
    return str(page.evaluate("() => document.querySelector('main#view').dataset.rendered || ''"))


def after_render(page: Any, action: Callable[[], Any]) -> None:
    """Do `action` and wait until the view has drawn again (data-rendered moves on)."""
    before = render_count(page)
    action()
    page.wait_for_function(
        "(b) => { const m = document.querySelector('main#view'); return m.dataset.rendered && m.dataset.rendered !== b; }",
        arg=before,
        timeout=30_000,
    )


def open_discover(page: Any, server: Served, query: str = "") -> None:
    page.goto(server.url + ("?" + query if query else ""))
    rendered(page, "discover")


def shown_ids(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all("#view .d-list table.d-records tr.d-row", "els => els.map(e => e.dataset.id)")
    )


def shown_count(page: Any) -> int:
    return int(page.get_attribute("#d-count", "data-count"))


def headers(page: Any) -> list[str]:
    return list(
        page.eval_on_selector_all(
            "#view .d-list table.d-records thead th[data-column]", "els => els.map(e => e.dataset.column)"
        )
    )


def column_cells(page: Any, column: str) -> dict[str, str]:
    """{event_id: the text shown in `column`} for every listed record."""
    pairs = page.eval_on_selector_all(
        "#view .d-list table.d-records tr.d-row",
        "(rows, c) => rows.map(r => [r.dataset.id, r.querySelector(`td[data-column='${c}']`).textContent])",
        column,
    )
    return {i: text for i, text in pairs}


def attrs_path(attrs_json: str | None, path: str) -> str:
    """The test's own reading of attrs.KEY.KEY: walk the parsed JSON; text as a person reads it."""
    value: Any = json.loads(attrs_json) if attrs_json else None
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def expected_attrs(archive: Path, ids: list[str], path: str) -> dict[str, str]:
    rows = duck(archive, "SELECT event_id, attrs FROM logs WHERE list_contains(?, event_id)", [ids])
    return {event_id: attrs_path(attrs, path) for event_id, attrs in rows}


def offerable(archive: Path, event_id: str) -> list[str]:
    """The fields a record's detail offers as columns: its non-empty fields but the time and those
    already shown, and every leaf of its attrs as attrs.KEY.KEY."""
    names = [
        r[0]
        for r in duck(
            archive,
            "SELECT column_name FROM (DESCRIBE SELECT * EXCLUDE (message_key, day, attrs, error, ts) FROM logs)",
        )
    ]
    quoted = ", ".join(f'"{n}"' for n in names)
    ((*values, attrs),) = duck(archive, f"SELECT {quoted}, attrs FROM logs WHERE event_id = ?", [event_id])
    fields = [n for n, v in zip(names, values, strict=True) if v is not None and v != ""]

    def leaves(obj: dict[str, Any], prefix: str) -> list[str]:
        out: list[str] = []
        for k, v in obj.items():
            out.extend(leaves(v, f"{prefix}.{k}") if isinstance(v, dict) else [f"{prefix}.{k}"])
        return out

    shown = {"level", "service", "message"}
    return [f for f in fields if f not in shown] + leaves(json.loads(attrs) if attrs else {}, "attrs")


def test_columns_from_a_record_and_a_facet_moved_removed_and_kept_in_the_url(
    ui_server: Served, ui_data: dict[str, Any], page: Any
) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server, "span=all&q=level%3E%3DWARNING")
    assert headers(page) == ["level", "service", "message"]
    first = page.locator("#view tr.d-row").first
    first.click()
    detail = page.locator("tr.d-detail")
    detail.wait_for()
    # Every field of the expanded record, its attrs too, offers itself as a column.
    offered = detail.locator("button.d-add-column").evaluate_all("els => els.map(e => e.dataset.field)")
    assert sorted(offered) == sorted(offerable(archive, first.get_attribute("data-id") or ""))
    after_render(page, lambda: detail.locator("tr[data-field='attrs.region'] button.d-add-column").click())
    assert state_of(page)["columns"] == "level,service,message,attrs.region"
    assert headers(page) == ["level", "service", "message", "attrs.region"]
    ids = shown_ids(page)
    assert len(ids) == 100
    region = column_cells(page, "attrs.region")
    assert region == expected_attrs(archive, ids, "region")
    assert set(region.values()) >= {"eu", "us"}
    # A nested key, from the record again (the record stays open: open= is in the URL).
    after_render(
        page, lambda: page.locator("tr.d-detail tr[data-field='attrs.ctx.attempt'] button.d-add-column").click()
    )
    assert column_cells(page, "attrs.ctx.attempt") == expected_attrs(archive, ids, "ctx.attempt")
    assert set(column_cells(page, "attrs.ctx.attempt").values()) == {"1", "2", "3"}
    # From a facet: user_id, its values the archive's.
    after_render(page, lambda: page.click(".d-facet[data-field='user_id'] button.d-add-column"))
    assert headers(page) == ["level", "service", "message", "attrs.region", "attrs.ctx.attempt", "user_id"]
    users = dict(
        duck(archive, "SELECT event_id, coalesce(user_id, '') FROM logs WHERE list_contains(?, event_id)", [ids])
    )
    assert column_cells(page, "user_id") == users
    # Reorder and remove.
    after_render(page, lambda: page.click("thead th[data-column='user_id'] button.d-col-left"))
    assert headers(page) == ["level", "service", "message", "attrs.region", "user_id", "attrs.ctx.attempt"]
    after_render(page, lambda: page.click("thead th[data-column='level'] button.d-col-right"))
    after_render(page, lambda: page.click("thead th[data-column='message'] button.d-col-remove"))
    chosen = ["service", "level", "attrs.region", "user_id", "attrs.ctx.attempt"]
    assert headers(page) == chosen
    assert state_of(page)["columns"] == ",".join(chosen)
    # A reload, and a link opened in a new page, show the same columns with the same values.
    copied = page.url
    after_render(page, page.reload)
    for again in (page, page.context.new_page()):
        if again is not page:
            again.goto(copied)
            rendered(again, "discover")
        assert headers(again) == chosen
        assert shown_ids(again) == ids
        assert column_cells(again, "attrs.region") == expected_attrs(archive, ids, "region")
        levels = dict(duck(archive, "SELECT event_id, level FROM logs WHERE list_contains(?, event_id)", [ids]))
        assert column_cells(again, "level") == levels


def ship_more(folder: Path, archive: Path, objects: list[dict[str, Any]], name: str) -> None:
    """Append `objects` to a log of their own and ship it with the real CLI into `archive`."""
    write_log(folder / name, objects)
    result = logpipe("ship", "--once", str(folder / name), "--archive", str(archive), "--no-progress")
    assert result.returncode == 0, result.stderr


def one_record(message: str) -> dict[str, Any]:
    now = datetime.now(UTC) - timedelta(seconds=2)
    return {"timestamp": now.isoformat().replace("+00:00", "Z"), "level": "INFO", "service": "live", "message": message}


def wait_count(page: Any, n: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelector('#d-count')?.dataset.count === String(n)", arg=n, timeout=30_000
    )


def wait_live_state(page: Any, want: str) -> None:
    page.wait_for_function("(s) => document.querySelector('#d-live')?.dataset.state === s", arg=want, timeout=30_000)


def test_live_mode_shows_records_shipped_after_the_page_loaded_and_waits_while_paused(
    serve: Callable[..., Served], tmp_path: Path, browser: Any
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    objects = generate(300, start=start)
    archive = ship(tmp_path, objects)
    server = serve("--archive", str(archive))
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        open_discover(page, server, "from=1h")
        assert page.get_attribute("#d-live", "data-state") == "off"
        # Turning it on keeps the relative range and puts live=1 in the URL.
        after_render(page, lambda: page.click("#d-live"))
        assert state_of(page) == {"from": "1h", "live": "1"}
        wait_live_state(page, "live")
        ((n,),) = duck(archive, "SELECT count(*) FROM logs")
        assert shown_count(page) == n == len(objects)

        ship_more(tmp_path, archive, [one_record("arrived while live")], "later1.log")
        wait_count(page, n + 1)
        ((newest,),) = duck(archive, "SELECT event_id FROM logs WHERE message = 'arrived while live'")
        assert shown_ids(page)[0] == newest

        # Scrolled down the records: paused; ticks go by and the new record does not show.
        page.evaluate("() => window.scrollTo(0, 900)")
        wait_live_state(page, "paused")
        ticks = int(page.get_attribute("#d-live", "data-ticks"))
        ship_more(tmp_path, archive, [one_record("arrived while paused")], "later2.log")
        page.wait_for_function(
            "(t) => +document.querySelector('#d-live').dataset.ticks >= t + 2", arg=ticks, timeout=30_000
        )
        assert shown_count(page) == n + 1
        assert page.get_attribute("#d-live", "data-state") == "paused"
        # Back at the top: live again, and the record shows.
        page.evaluate("() => window.scrollTo(0, 0)")
        wait_count(page, n + 2)
        wait_live_state(page, "live")
        ((later,),) = duck(archive, "SELECT event_id FROM logs WHERE message = 'arrived while paused'")
        assert shown_ids(page)[:2] == [later, newest]

        # A record open pauses it too; closing it resumes.
        page.locator("#view tr.d-row").nth(2).click()
        wait_live_state(page, "paused")
        ticks = int(page.get_attribute("#d-live", "data-ticks"))
        ship_more(tmp_path, archive, [one_record("arrived while open")], "later3.log")
        page.wait_for_function(
            "(t) => +document.querySelector('#d-live').dataset.ticks >= t + 2", arg=ticks, timeout=30_000
        )
        assert shown_count(page) == n + 2
        page.locator("#view tr.d-row.d-open").click()
        wait_count(page, n + 3)

        # Off: the URL loses live and the button says so.
        after_render(page, lambda: page.click("#d-live"))
        assert "live" not in state_of(page)
        assert page.get_attribute("#d-live", "data-state") == "off"
    finally:
        context.close()


@pytest.fixture
def held_searches(page: Any) -> Iterator[list[Any]]:
    """/api/search requests whose q mentions `auth` are held (not answered) until the test lets them go."""
    held: list[Any] = []

    def route(r: Any) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.request.url).query))
        if "auth" in query.get("q", ""):
            held.append(r)
        else:
            r.continue_()

    page.route("**/api/search?*", route)
    yield held


def test_the_page_keeps_its_answer_while_the_next_loads_and_never_shows_a_stale_one(
    ui_server: Served, ui_data: dict[str, Any], page: Any, held_searches: list[Any]
) -> None:
    archive = ui_data["archive"]
    open_discover(page, ui_server, "span=all")
    before_ids, before_count = shown_ids(page), shown_count(page)
    assert before_count == len(ui_data["objects"])
    drawn = render_count(page)
    page.fill("#q", "service=auth")
    page.press("#q", "Enter")
    page.wait_for_function("() => document.querySelector('main#view').dataset.loading === '1'")
    for _ in range(600):  # until the route handler has seen the request (it runs between calls)
        if held_searches:
            break
        page.wait_for_timeout(50)
    assert len(held_searches) == 1
    # Loading: the indicator shows and the previous answer stays, whole.
    assert page.locator("#busy").is_visible()
    assert shown_ids(page) == before_ids and shown_count(page) == before_count
    assert render_count(page) == drawn
    # A newer search answered first is drawn; the older one's answer, let go afterwards, is not.
    after_render(page, lambda: (page.fill("#q", "service=shop"), page.press("#q", "Enter")))
    shop = [
        r[0]
        for r in duck(
            archive, "SELECT event_id FROM logs WHERE service = 'shop' ORDER BY ts DESC, event_id DESC LIMIT 100"
        )
    ]
    assert shown_ids(page) == shop
    with page.expect_response(lambda r: "/api/search" in r.url and "auth" in r.url):
        held_searches[0].continue_()
    page.evaluate("() => new Promise((done) => setTimeout(done, 200))")  # let the page handle it
    assert shown_ids(page) == shop
    ((n,),) = duck(archive, "SELECT count(*) FROM logs WHERE service = 'shop'")
    assert shown_count(page) == n
    assert page.input_value("#q") == "service=shop" and state_of(page)["q"] == "service=shop"
    assert page.locator("#busy").is_hidden()


def boxes_overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def page_width(page: Any) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def test_discover_on_a_phone_fits_and_its_facets_do_not_cover_the_records(ui_server: Served, browser: Any) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        open_discover(page, ui_server, "span=all&columns=level,service,message,attrs.region,request_id,user_id")
        assert page_width(page) <= PHONE["width"]
        rows = page.locator("#view tr.d-row")
        assert rows.first.is_visible()
        # The facets are a panel behind a toggle; opened, it sits above the records, beside none.
        assert page.locator("#d-facets").is_hidden()
        page.click("#d-facets-toggle")
        facets = page.locator("#d-facets")
        assert facets.is_visible()
        panel = facets.bounding_box()
        for i in range(5):
            row = rows.nth(i).bounding_box()
            assert not boxes_overlap(panel, row)
            assert panel["y"] + panel["height"] <= row["y"]
        assert page_width(page) <= PHONE["width"]
        # A record opened, with its fields and attrs, still fits.
        rows.first.click()
        page.locator("tr.d-detail").wait_for()
        assert page_width(page) <= PHONE["width"]
    finally:
        context.close()


@pytest.mark.parametrize(
    ("query", "click"),
    [
        ("view=discover", None),
        ("view=discover&span=all", "#view tr.d-row"),
        ("view=errors", "tr.error-group"),
        ("view=patterns", "#view tr.clickable, #view li.clickable"),
        ("view=journey", "#journey-users li"),
        ("view=slow", ".slow-row"),
        ("view=traffic", None),
    ],
)
def test_every_view_fits_a_phone(groups_server: Served, browser: Any, query: str, click: str | None) -> None:
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(groups_server.url + "?" + query)
        rendered(page, query.split("&")[0].removeprefix("view="))
        assert page_width(page) <= PHONE["width"], query
        if click:
            target = page.locator(click).first
            if "d-row" in click:
                target.click()
                page.locator("tr.d-detail").wait_for()
            else:
                after_render(page, target.click)
            assert page_width(page) <= PHONE["width"], f"{query} after clicking {click}"
    finally:
        context.close()
