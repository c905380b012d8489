"""The Discover API and page on real OpenSearch (and Elasticsearch) give the archive's answers for the same records.

One generated log is shipped once into an archive and, with `--to es://…`, into an index prefix
of this module's own; `logpipe ui` serves each, and the answers that depend on more than the
stores' primitives must be equal (zoomed and `latest=` ranges, the engine's bounds and recounts,
the page itself). Each primitive over both stores, against plain Python, is
tests/read/test_store_contract.py.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from uihelp import Served, duck, rendered

from tests.support.engines import count, make_prefix, target, wipe
from tests.support.exdata import generate, logpipe, write_log

pytestmark = pytest.mark.slow
LINES = 2500


@pytest.fixture(scope="module")
def both(
    engine: tuple[str, str], serve: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    name, url = engine
    prefix = make_prefix(f"ui-discover-{name}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"ui-discover-{name}")
    objects = generate(LINES, seed=11)
    write_log(folder / "app.log", objects)
    to = target(name, prefix)
    result = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    assert count(url, prefix) == LINES
    yield {
        "archive": serve("--archive", str(folder / "archive")),
        "es": serve("--backend", "es", "--es", to),
        "path": folder / "archive",
        "to": to,
    }
    wipe(url, prefix)


def answers(both: dict[str, Any], path: str, **params: Any) -> Any:
    query = "/api/" + path + "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    status_a, archive = both["archive"].get(query)
    status_e, engine = both["es"].get(query)
    assert status_a == 200, archive
    assert (status_e, engine) == (status_a, archive), engine if status_e != 200 else ""
    return archive


def test_a_zoomed_range_is_the_archives(both: dict[str, Any]) -> None:
    ((lo, hi),) = duck(
        both["path"],
        "SELECT epoch_us(quantile_disc(ts, 0.2)) // 1000 + 7, epoch_us(quantile_disc(ts, 0.5)) // 1000 FROM logs",
    )
    for q in ("", "level>=INFO", "handling"):
        hist = answers(both, "histogram", q=q, **{"from": lo, "to": hi})
        assert hist["total"] > 100 and (hist["from"], hist["to"]) == (lo, hi)
        answers(both, "facets", q=q, **{"from": lo, "to": hi})
        answers(both, "search", q=q, limit=50, **{"from": lo, "to": hi})
        answers(both, "search", q=q, limit=50, count=1, **{"from": lo, "to": hi})


def test_the_latest_window_is_the_archives(both: dict[str, Any]) -> None:
    """latest=SPAN on the engine: the same window (from its newest ts), rows, buckets and facets."""
    ((newest_ms,),) = duck(both["path"], "SELECT epoch_ms(max(ts)) FROM logs")
    for q in ("", "level>=WARNING", "handling"):
        answers(both, "search", q=q, limit=50, latest="15m")
        found = answers(both, "search", q=q, limit=50, latest="15m", count=1)
        assert (found["window"]["from"], found["window"]["to"]) == (newest_ms + 1 - 900_000, newest_ms + 1)
        assert 0 < found["total"] < LINES
        hist = answers(both, "histogram", q=q, latest="15m")
        assert hist["total"] == answers(both, "facets", q=q, latest="15m")["total"] == found["total"]


def test_facets_counted_exactly_past_the_engines_estimate(both: dict[str, Any]) -> None:
    # Many distinct paths and a large size: the terms aggregation's shard_size is exceeded or
    # its error bound is not zero; the composite recount keeps it equal to DuckDB's GROUP BY.
    answers(both, "facets", size=50)


def test_missing_records_and_bad_filters_answer_alike(both: dict[str, Any]) -> None:
    # The records and contexts themselves: tests/read/test_store_contract.py.
    for server in (both["archive"], both["es"]):
        assert server.get("/api/record?id=nope")[0] == 404
        assert server.get("/api/search?q=status%3Eabc")[0] == 400


def test_the_page_on_the_engine_shows_the_archives_answers(both: dict[str, Any], page: Any) -> None:
    seen = []
    for name in ("archive", "es"):
        server = both[name]
        page.goto(server.url + "?" + urllib.parse.urlencode({"q": "level>=WARNING"}))
        rendered(page, "discover")
        page.fill("#q", "level>=WARNING service=search")
        before = page.evaluate("() => document.querySelector('main#view').dataset.rendered")
        page.press("#q", "Enter")
        page.wait_for_function("(b) => document.querySelector('main#view').dataset.rendered !== b", arg=before)
        facet = page.locator("li.d-fv[data-field='method'][data-value='POST'] a.d-include")
        before = page.evaluate("() => document.querySelector('main#view').dataset.rendered")
        facet.click()
        page.wait_for_function("(b) => document.querySelector('main#view').dataset.rendered !== b", arg=before)
        page.locator("#view tr.d-row").first.click()
        page.locator("tr.d-detail").wait_for()
        seen.append(
            {
                "count": page.get_attribute("#d-count", "data-count"),
                "ids": page.eval_on_selector_all("#view tr.d-row", "els => els.map(e => e.dataset.id)"),
                "buckets": page.eval_on_selector_all(
                    "#d-histogram g.d-bucket", "els => els.map(e => [e.dataset.t, e.dataset.levels])"
                ),
                "facets": page.eval_on_selector_all(
                    "li.d-fv", "els => els.map(e => [e.dataset.field, e.dataset.value, e.dataset.count])"
                ),
                "detail": page.inner_text("tr.d-detail"),
            }
        )
    where = "level IN ('WARNING', 'ERROR', 'CRITICAL') AND service = 'search' AND method = 'POST'"
    ((n,),) = duck(both["path"], f"SELECT count(*) FROM logs WHERE {where}")
    assert seen[0]["count"] == str(n) and n > 0
    assert seen[1] == seen[0]


def test_over_the_scan_bound_counts_are_refused_not_guessed(
    both: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In-process with a small bound: free text over all 2500 records needs the read-and-check path.
    from datetime import UTC, datetime

    from logpipe.errors import UsageError
    from logpipe.read import engine_store
    from logpipe.read.engine_store import EngineStore
    from logpipe.ui import discover
    from logpipe.ui.api import Params

    monkeypatch.setattr(engine_store, "MAX_SCAN", 100)
    backend = EngineStore(both["to"])
    try:
        params = Params({"q": "handling", "limit": "30", "count": "1"}, datetime.now(UTC))
        for handler in (discover.histogram, discover.facets):
            with pytest.raises(UsageError, match="narrow the time range"):
                handler(backend, params)
        page = discover.search(backend, params)
        assert page["total"] is None and page["total_exact"] is False
        status, archive = both["archive"].get("/api/search?q=handling&limit=30")
        assert status == 200 and len(archive["rows"]) == 30
        assert [r["event_id"] for r in page["rows"]] == [r["event_id"] for r in archive["rows"]]
        assert page["next"] == archive["next"]
        # Only indexed terms: the usual facets are counted by the engine; an attrs facet says why not.
        facets = discover.facets(backend, Params({"q": "level>=INFO", "fields": "attrs.region"}, datetime.now(UTC)))
        status, expected = both["archive"].get("/api/facets?q=level%3E%3DINFO")
        assert status == 200 and facets["fields"][:-1] == expected["fields"]
        assert facets["fields"][-1]["field"] == "attrs.region" and "not indexed" in facets["fields"][-1]["error"]
    finally:
        backend.close()


def test_facets_recount_when_the_engine_estimates(both: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # Force the engine's terms top to be treated as inexact: the composite recount must agree.
    from datetime import UTC, datetime

    from logpipe.read.engine_store import EngineStore
    from logpipe.ui import discover
    from logpipe.ui.api import Params

    calls: list[str] = []
    real = EngineStore._exact_top

    def recount(store: Any, query: Any, name: str, size: int) -> Any:
        calls.append(name)
        return real(store, query, name, size)

    monkeypatch.setattr(EngineStore, "_exact_top", recount)
    monkeypatch.setattr(discover, "DEFAULT_FACET_SIZE", 3)
    backend = EngineStore(both["to"])
    try:
        original = backend.client.request

        def request(method: str, path: str, body: Any = None, **kw: Any) -> Any:
            answer = original(method, path, body, **kw)
            for key, agg in answer.get("aggregations", {}).items():
                if key.startswith("top:"):
                    agg["doc_count_error_upper_bound"] = 1
                    agg["buckets"] = agg.get("buckets", [])[:1]  # a wrong top, as an estimate may be
            return answer

        backend.client.request = request  # type: ignore[method-assign]
        got = discover.facets(backend, Params({"q": "level>=INFO"}, datetime.now(UTC)))
    finally:
        backend.close()
    status, archive = both["archive"].get("/api/facets?q=level%3E%3DINFO&size=3")
    assert status == 200 and got == archive
    assert "path" in calls and "user_id" in calls
