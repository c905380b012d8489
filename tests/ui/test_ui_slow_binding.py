"""Slow endpoints and Traffic bind every value: quotes and `'; DROP TABLE` text are just values.

Records whose service, path (so endpoint) and user carry quotes, backslashes and SQL text are
shipped beside ordinary ones; the groups come back under their own names, the drill-down terms
the API hands the page (`filter`) select exactly those records (counted by plain DuckDB with a
bound parameter), a search for such a value counts exactly its records, and the archive is
intact afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from trafficdata import iso, query
from uihelp import Served, duck, ship

NASTY_SERVICE = "sh'op\"; DROP TABLE logs; --"
NASTY_PATH = '/api/it\'s/"q";DROP TABLE logs;--'
NASTY_USER = "u'; DROP TABLE logs; -- \\ \""
START = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _records() -> list[dict[str, Any]]:
    out = []
    for i in range(60):
        nasty = i % 3 == 0
        out.append(
            {
                "timestamp": iso(START + timedelta(seconds=37 * i)),
                "level": "ERROR" if i % 7 == 0 else "INFO",
                "service": NASTY_SERVICE if nasty else "shop",
                "message": f"request {i}",
                "method": "GET",
                "path": NASTY_PATH if i % 2 == 0 else "/health",
                "status": 500 if i % 7 == 0 else 200,
                "duration_ms": float(i * 3 % 41) + 0.5,
                "user_id": NASTY_USER if i % 4 == 0 else "u-1",
            }
        )
    return out


@pytest.fixture(scope="module")
def nasty(tmp_path_factory: pytest.TempPathFactory, serve: Callable[..., Served]) -> dict[str, Any]:
    objects = _records()
    archive = ship(tmp_path_factory.mktemp("nasty"), objects)
    return {"archive": archive, "objects": objects, "server": serve("--archive", str(archive))}


def _get(server: Served, path: str, **params: Any) -> Any:
    status, body = server.get(query(path, **params))
    assert status == 200, body
    return body


def test_a_service_with_sql_text_is_a_group_and_its_drill_down_selects_it(nasty: dict[str, Any]) -> None:
    server, archive = nasty["server"], nasty["archive"]
    groups = {g["key"]: g for g in _get(server, "slow", by="service")["groups"]}
    assert set(groups) == {NASTY_SERVICE, "shop"}
    ((n,),) = duck(archive, "SELECT count(*) FROM logs WHERE service = ? AND duration_ms IS NOT NULL", [NASTY_SERVICE])
    group = groups[NASTY_SERVICE]
    assert group["count"] == n > 0
    # The terms the page puts in the search box find exactly this group's records again.
    assert [g["key"] for g in _get(server, "slow", by="service", q=group["filter"])["groups"]] == [NASTY_SERVICE]
    timeline = _get(server, "slow/timeline", q=group["filter"])
    assert sum(b["count"] for b in timeline["buckets"]) == n
    traffic = _get(server, "traffic", q=group["filter"])
    assert sum(b["records"] for b in traffic["timeline"]) == n


def test_an_endpoint_with_sql_text_is_a_group_and_its_drill_down_selects_it(nasty: dict[str, Any]) -> None:
    server, archive = nasty["server"], nasty["archive"]
    expected = dict(
        duck(archive, "SELECT method || ' ' || endpoint, count(*) FROM logs WHERE duration_ms IS NOT NULL GROUP BY 1")
    )
    body = _get(server, "slow")
    assert {g["key"]: g["count"] for g in body["groups"]} == expected
    (nasty_group,) = [g for g in body["groups"] if g["endpoint"] != "/health"]
    assert "'" in nasty_group["endpoint"] and "DROP TABLE" in nasty_group["endpoint"]
    drilled = _get(server, "slow", q=nasty_group["filter"])["groups"]
    assert [(g["key"], g["count"]) for g in drilled] == [(nasty_group["key"], nasty_group["count"])]
    traffic = _get(server, "traffic", q=nasty_group["filter"])
    assert [(r["key"], r["count"]) for r in traffic["endpoints"]["rows"]] == [
        (nasty_group["key"], nasty_group["count"])
    ]
    assert [r["filter"] for r in traffic["endpoints"]["rows"]] == [nasty_group["filter"]]


def test_a_searched_value_with_sql_text_is_just_a_value(nasty: dict[str, Any]) -> None:
    server, archive = nasty["server"], nasty["archive"]
    escaped = NASTY_USER.replace("\\", "\\\\").replace('"', '\\"')
    q = f'user_id="{escaped}"'
    ((n, timed),) = duck(archive, "SELECT count(*), count(duration_ms) FROM logs WHERE user_id = ?", [NASTY_USER])
    assert n > 0
    assert sum(b["records"] for b in _get(server, "traffic", q=q)["timeline"]) == n
    assert _get(server, "slow", q=q)["requests"] == timed
    assert sum(b["count"] for b in _get(server, "slow/timeline", q=q)["buckets"]) == timed
    # Free text with the same characters: an answer (maybe empty), never an SQL error.
    for path in ("slow", "slow/timeline", "traffic"):
        _get(server, path, q="'; DROP TABLE logs; --")
    # Nothing was dropped: every record is still there, and the server still answers.
    ((total,),) = duck(archive, "SELECT count(*) FROM logs")
    assert total == len(nasty["objects"])
    assert _get(server, "traffic")["endpoints"]["requests"] == len(nasty["objects"])
