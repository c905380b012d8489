"""Traffic on real OpenSearch and Elasticsearch: the archive's error-rate timeline, endpoints and heatmap.

Every test runs on each engine (the `engine` fixture). The same generated log is shipped to the
engine and into an archive in one run. The engine's aggregations must count what reading its
records counts, and the page on the engine shows the answers; the store's traffic counts over
both stores, against plain Python, are tests/read/test_store_contract.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from trafficdata import START, query, shipped_to_engine
from trafficdata import iso as iso_of
from uihelp import Served, rendered

pytestmark = pytest.mark.slow

WINDOW = {"from": iso_of(START + timedelta(days=1, hours=7)), "to": iso_of(START + timedelta(days=7, hours=2))}
TRAFFIC = [
    {},
    {"q": "level>=WARNING"},
    {"q": "timeout", "buckets": 100},
    {"q": "service!=auth", "top": 3, **WINDOW},
    {"q": "user_id=user-07"},
    {"q": "path~checkout status>=500", "buckets": 9},
    {"q": "no-such-word-anywhere"},
    {"from": iso_of(START + timedelta(days=5, hours=1))},  # one-sided: to now
]


@pytest.fixture(scope="module")
def traffic_es(
    engine: tuple[str, str], serve: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    yield from shipped_to_engine("traffic", engine, serve, tmp_path_factory)


def test_the_page_on_the_engine(traffic_es: dict[str, Any], page: Any) -> None:
    _, archive = traffic_es["archive_server"].get(query("traffic", q="level>=INFO"))
    page.goto(traffic_es["es_server"].url + "?view=traffic&q=level%3E%3DINFO")
    rendered(page, "traffic")
    data = "els => els.map(e => ({...e.dataset}))"
    buckets = page.eval_on_selector_all("rect.er-bucket", data)
    assert [(int(b["startMs"]), int(b["records"]), int(b["errors"])) for b in buckets] == [
        (b["start_ms"], b["records"], b["errors"]) for b in archive["timeline"]
    ]
    bars = page.eval_on_selector_all("g.ep-bar:not(.other)", data)
    assert [(b["key"], int(b["count"])) for b in bars] == [(r["key"], r["count"]) for r in archive["endpoints"]["rows"]]
    cells = page.eval_on_selector_all("rect.hm-cell", data)
    assert [(int(c["records"]), int(c["users"])) for c in cells] == [
        (c["records"], c["users"]) for c in archive["heatmap"]["cells"]
    ]
    before = page.get_attribute("main#view", "data-rendered")
    page.click(f'g.ep-bar[data-key="{bars[0]["key"]}"] text.label')
    page.wait_for_function("b => document.querySelector('main#view').dataset.rendered !== b", arg=before)
    rendered(page, "traffic")
    assert [b["key"] for b in page.eval_on_selector_all("g.ep-bar", data)] == [bars[0]["key"]]
    assert page.is_hidden("#error")


INDEXED = [p for p in TRAFFIC if p.get("q") in (None, "level>=WARNING", "service!=auth", "user_id=user-07")]


@pytest.mark.parametrize("params", INDEXED, ids=[str(p) for p in INDEXED])
def test_the_engines_aggregations_count_what_its_records_say(
    traffic_es: dict[str, Any], params: dict[str, Any]
) -> None:
    # Without free text or regexes the engine's aggregations answer (not a scan of every
    # record): they must give what counting the scanned records gives, and not fall back.
    from logpipe.read.engine_store import EngineStore
    from logpipe.read.filters import to_es
    from logpipe.read.timeexpr import utc_now
    from logpipe.ui.api import Params
    from logpipe.ui.slow import bucketing

    backend = EngineStore(traffic_es["to"])
    try:
        p = Params({k: str(v) for k, v in params.items()}, utc_now())
        aggregated = backend._traffic_aggregated(to_es(p.filter()).query, bucketing(p, 60))
        assert aggregated is not None, "the aggregations fell back to a scan"
        scanned = backend._traffic_read(p.filter(), bucketing(p, 60))
        assert aggregated.buckets == scanned.buckets and aggregated.per_bucket == scanned.per_bucket
        assert aggregated.cells == scanned.cells
        assert {k: +c for k, c in aggregated.endpoints.items()} == {k: +c for k, c in scanned.endpoints.items()}
    finally:
        backend.close()
