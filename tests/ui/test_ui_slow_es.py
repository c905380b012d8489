"""Slow endpoints on real OpenSearch and Elasticsearch: the archive's answers, exact percentiles included.

Every test runs on each engine (the `engine` fixture). The engine's `percentiles` aggregation
is a TDigest estimate; the engine store reads the matching durations and computes
`quantile_cont` itself, so the engine gives the archive's numbers: that, for every kind of
filter, is tests/read/test_store_contract.py. Here: the page on the engine, and the bound on
how many records such an answer reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from trafficdata import query, shipped_to_engine
from uihelp import Served, rendered

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def slow_es(
    engine: tuple[str, str], serve: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    yield from shipped_to_engine("slow", engine, serve, tmp_path_factory)


def test_the_page_on_the_engine(slow_es: dict[str, Any], page: Any) -> None:
    _, archive = slow_es["archive_server"].get(query("slow", q="service!=search"))
    page.goto(slow_es["es_server"].url + "?view=slow&q=service%21%3Dsearch")
    rendered(page, "slow")
    rows = page.eval_on_selector_all("tr.slow-row", "els => els.map(e => ({...e.dataset}))")
    assert [r["key"] for r in rows] == [g["key"] for g in archive["groups"]]
    for r, g in zip(rows, archive["groups"], strict=True):
        assert int(r["count"]) == g["count"]
        assert float(r["p95"]) == pytest.approx(g["p95_ms"], rel=1e-12)
    before = page.get_attribute("main#view", "data-rendered")
    page.click(f'tr.slow-row[data-key="{rows[0]["key"]}"] td.mono')
    page.wait_for_function("b => document.querySelector('main#view').dataset.rendered !== b", arg=before)
    rendered(page, "slow")
    _, timeline = slow_es["archive_server"].get(query("slow/timeline", q=f"service!=search {rows[0]['filter']}"))
    buckets = page.eval_on_selector_all("rect.lt-bucket", "els => els.map(e => ({...e.dataset}))")
    assert [(int(b["startMs"]), int(b["count"])) for b in buckets] == [
        (b["start_ms"], b["count"]) for b in timeline["buckets"]
    ]
    assert page.is_hidden("#error")


def test_an_engine_scan_has_a_bound(slow_es: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Exact percentiles read every timed record from the engine: past the bound the request is
    # one sentence (a 400), not minutes of paging. Below it, the same call answers.
    from logpipe.read import engine_store
    from logpipe.read.timeexpr import utc_now
    from logpipe.ui import slow
    from logpipe.ui.api import Params, status_of

    timed = sum(1 for o in slow_es["objects"] if "duration_ms" in o)
    backend = engine_store.EngineStore(slow_es["to"])
    try:
        monkeypatch.setattr(engine_store, "MAX_RECORDS_READ", timed)
        assert slow.slow(backend, Params({}, utc_now()))["requests"] == timed
        monkeypatch.setattr(engine_store, "MAX_RECORDS_READ", timed - 1)
        with pytest.raises(Exception) as caught:
            slow.slow(backend, Params({}, utc_now()))
        status, message = status_of(caught.value)
        assert status == 400 and f"over {timed - 1:,} match" in message
    finally:
        backend.close()
