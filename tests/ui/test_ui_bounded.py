"""Bounded answers from a real `logpipe ui` process (#20 items 11 and 12).

- A facet on a field with more distinct values than the server groups (`LOGPIPE_UI_FACET_GROUPS`,
  set low here; 100,000 by default) is ranked from a bounded summary and marked
  `top_approximate`, while the counts it shows stay exact (checked with plain DuckDB); a field
  with few values is counted as before.
- Times past the documented range are a 400 with one sentence, never a 500.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from uihelp import Served, duck

GROUPS = 50


@pytest.fixture(scope="module")
def bounded_server(ui_data: dict[str, Any], serve: Callable[..., Served]) -> Served:
    return serve("--archive", str(ui_data["archive"]), env={"LOGPIPE_UI_FACET_GROUPS": str(GROUPS)})


def test_a_facet_past_the_group_bound_is_marked_and_exact(ui_data: dict[str, Any], bounded_server: Served) -> None:
    archive = ui_data["archive"]
    ((requests,),) = duck(archive, "SELECT count(DISTINCT request_id) FROM logs")
    ((users,),) = duck(archive, "SELECT count(DISTINCT user_id) FROM logs")
    assert requests > 2 * GROUPS and users < GROUPS * 0.8  # one field of each kind (HyperLogLog errs ~2%)
    status, answer = bounded_server.get("/api/facets?fields=request_id&size=5")
    assert status == 200, answer
    fields = {f["field"]: f for f in answer["fields"]}
    ((total,),) = duck(archive, "SELECT count(*) FROM logs")
    assert answer["total"] == total

    many = fields["request_id"]
    assert many.get("top_approximate") is True
    assert 0 < len(many["values"]) <= 5
    for shown in many["values"]:
        ((count,),) = duck(archive, "SELECT count(*) FROM logs WHERE request_id = ?", [shown["value"]])
        assert shown["count"] == count
    ((missing,),) = duck(archive, "SELECT count(*) FROM logs WHERE request_id IS NULL")
    assert many["missing"] == missing
    assert many["other"] == total - missing - sum(v["count"] for v in many["values"])

    few = fields["user_id"]
    assert "top_approximate" not in few
    exact = duck(
        archive, "SELECT user_id, count(*) n FROM logs WHERE user_id IS NOT NULL GROUP BY 1 ORDER BY n DESC, 1"
    )
    assert [(v["value"], v["count"]) for v in few["values"]] == [(u, n) for u, n in exact[:5]]


@pytest.mark.parametrize(
    "query",
    [
        "/api/slow/timeline?from=0001-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
        "/api/slow?from=0001-01-01T00:00:00%2B01:00",
        "/api/traffic?from=9999-12-31T23:59:59-01:00",
        "/api/search?from=99999999999d",
        "/api/histogram?from=1&to=99999999999999999",
        "/api/facets?from=1969-12-31T23:59:00Z",
        "/api/journey/users?to=99999999999999999",
    ],
)
def test_times_out_of_range_are_a_400_sentence(bounded_server: Served, query: str) -> None:
    status, answer = bounded_server.get(query)
    assert status == 400, (status, answer)
    message = answer["error"]
    assert "out of range" in message and "1970-01-01" in message and "\n" not in message
    params = urllib.parse.parse_qs(urllib.parse.urlsplit(query).query)
    assert any(value[0] in message for value in params.values())
