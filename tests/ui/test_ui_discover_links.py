"""Links into Discover carry their time range (#20 item 15), in Chromium.

Discover on its own opens on the latest hour of the records. A link from Slow endpoints must
carry Slow's range (all time when it has none), and "request in Discover" from Errors and
Journey a range that covers the request, however old. The archive holds two days-old requests
and a recent half hour, so the latest hour hides the old ones. What Discover shows (its
histogram's total) is compared with a count in plain Python over the objects the test wrote.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uihelp import Served, drawn, redrawn, rendered, ship

from tests.support.exdata import generate, ts_of

Obj = dict[str, Any]


@pytest.fixture(scope="module")
def two_ages(tmp_path_factory: pytest.TempPathFactory, serve: Callable[..., Served]) -> dict[str, Any]:
    """1,500 records three days old and 600 from the last half hour, shipped and served."""
    now = datetime.now(UTC).replace(microsecond=0)
    old = generate(1500, seed=21, start=now - timedelta(days=3))
    recent = generate(600, seed=22, start=now - timedelta(minutes=30))
    for obj in recent:  # the generator numbers requests from 1 on each call: keep them apart
        obj["request_id"] = f"recent-{obj['request_id']}"
    objects = old + recent
    archive = ship(Path(tmp_path_factory.mktemp("links")), objects)
    return {"objects": objects, "old": old, "server": serve("--archive", str(archive))}


def discover_total(page: Any) -> int:
    """The number of records Discover says match (its histogram's total), once it has drawn."""
    page.wait_for_function("() => new URLSearchParams(location.search).get('view') === 'discover'")
    rendered(page, "discover")
    page.wait_for_selector("#d-histogram[data-total]", state="attached")
    return int(page.get_attribute("#d-histogram", "data-total"))


def state_of(page: Any) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def slow_link(page: Any, url: str, service: str) -> float:
    """Open Slow by service at `url`, follow the service's "records ≥ p95" link; its p95."""
    page.goto(url)
    rendered(page, "slow")
    row = page.wait_for_selector(f'tr.slow-row[data-key="{service}"]')
    p95 = float(row.get_attribute("data-p95"))
    row.query_selector("a.drill").click()
    return p95


@pytest.mark.parametrize("ranged", [False, True], ids=["all-time", "a-range"])
def test_slow_p95_link_shows_every_record_of_its_range(two_ages: dict[str, Any], page: Any, ranged: bool) -> None:
    objects: list[Obj] = two_ages["objects"]
    url = two_ages["server"].url + "?view=slow&slow_by=service"
    since = until = None
    if ranged:  # a window inside the old records: the link must keep it, not widen or drop it
        start = ts_of(two_ages["old"][0])
        since, until = start + timedelta(minutes=1), start + timedelta(minutes=21)
        url += "&" + urllib.parse.urlencode({"from": iso(since), "to": iso(until)})
    p95 = slow_link(page, url, "shop")
    shown = discover_total(page)
    expected = sum(
        1
        for o in objects
        if o["service"] == "shop"
        and o.get("duration_ms") is not None
        and o["duration_ms"] >= p95
        and (since is None or since <= ts_of(o) < until)  # type: ignore[operator]
    )
    assert shown == expected > 2
    if not ranged:
        assert sum(1 for o in two_ages["old"] if o["service"] == "shop" and o.get("duration_ms", 0) >= p95) > 0


def _old_error_request(two_ages: dict[str, Any]) -> str:
    """A request of the old records with an ERROR record and more than one record."""
    old: list[Obj] = two_ages["old"]
    sizes: dict[str, int] = {}
    for o in old:
        sizes[o["request_id"]] = sizes.get(o["request_id"], 0) + 1
    return next(o["request_id"] for o in old if o["level"] == "ERROR" and sizes[o["request_id"]] > 1)


def test_request_in_discover_from_errors_covers_an_old_request(two_ages: dict[str, Any], page: Any) -> None:
    rid = _old_error_request(two_ages)
    page.goto(two_ages["server"].url + "?" + urllib.parse.urlencode({"view": "errors", "q": f"request_id={rid}"}))
    rendered(page, "errors")
    before = drawn(page)
    page.click("tr.error-group")
    redrawn(page, before, "errors")
    page.wait_for_selector("li.error-sample button.link").click()
    shown = discover_total(page)
    assert state_of(page)["q"] == f"request_id={rid}"
    assert shown == sum(1 for o in two_ages["objects"] if o["request_id"] == rid) > 1


def test_request_in_discover_from_journey_covers_an_old_request(two_ages: dict[str, Any], page: Any) -> None:
    rid = _old_error_request(two_ages)
    state = {"view": "journey", "request": rid, "open": rid, "rec": "0"}
    page.goto(two_ages["server"].url + "?" + urllib.parse.urlencode(state))
    rendered(page, "journey")
    page.wait_for_selector("#journey-discover").click()
    shown = discover_total(page)
    assert state_of(page)["q"] == f"request_id={rid}"
    assert shown == sum(1 for o in two_ages["objects"] if o["request_id"] == rid) > 1
