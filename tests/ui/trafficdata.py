"""Generated traffic for the Slow endpoints and Traffic views: nine days, users, endpoints.

Every record is known by construction. The log starts on a Monday at 00:00 UTC and runs nine
days (so two weekdays hold two concrete days each); requests come in a daily rhythm (busy
9-18 UTC, quiet at night, lighter at the weekend), each from one of 40 users, as an access
line (method, path, status, duration_ms) plus zero to two application lines without a
duration. Durations are per endpoint (a slow checkout, a fast health check), with whole
numbers and repeated values among them (ties for the percentiles). An incident at known
hours (`INCIDENT_HOURS`) makes the checkout fail with 503 and ERROR lines.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import pytest

if TYPE_CHECKING:
    from uihelp import Served

START: Final = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
DAYS: Final = 9
# (method, raw path pattern, the template the archive derives, median ms, service)
ENDPOINTS: Final = (
    ("GET", "/api/users/{n}", "/api/users/{id}", 25.0, "auth"),
    ("GET", "/api/products/{n}", "/api/products/{id}", 60.0, "shop"),
    ("POST", "/api/cart/{n}/checkout", "/api/cart/{id}/checkout", 420.0, "shop"),
    ("GET", "/api/search", "/api/search", 180.0, "search"),
    ("GET", "/health", "/health", 1.5, "shop"),
    ("POST", "/api/login", "/api/login", 90.0, "auth"),
)
WEIGHTS: Final = (5, 6, 2, 4, 3, 2)
# The checkout fails at these (day index, hour) pairs.
INCIDENT_HOURS: Final = ((2, 14), (6, 3))


def _per_hour(day: int, hour: int) -> int:
    weekend = (START + timedelta(days=day)).isoweekday() >= 6
    base = 14 if 9 <= hour < 18 else 3
    return base // 2 if weekend else base


def generate(*, seed: int = 13) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    request = 0
    for day in range(DAYS):
        for hour in range(24):
            incident = (day, hour) in INCIDENT_HOURS
            hour_start = START + timedelta(days=day, hours=hour)
            n = _per_hour(day, hour) + (20 if incident else 0)
            offsets = sorted(rng.randrange(3_600_000_000) for _ in range(n))
            for us in offsets:
                request += 1
                ts = hour_start + timedelta(microseconds=us)
                i = 2 if incident and rng.random() < 0.8 else rng.choices(range(len(ENDPOINTS)), WEIGHTS)[0]
                out.extend(_request(rng, request, ts, i, incident))
    return out


def _request(rng: random.Random, request: int, ts: datetime, i: int, incident: bool) -> list[dict[str, Any]]:
    method, pattern, _template, median, service = ENDPOINTS[i]
    path = pattern.format(n=rng.randint(1, 900))
    user = f"user-{rng.randint(1, 40):02d}"
    rid = f"r-{request:06d}"
    failing = incident and i == 2
    status = 503 if failing else rng.choices([200, 201, 304, 404, 500], [80, 6, 4, 7, 3])[0]
    duration: float = round(rng.lognormvariate(0, 0.6) * median, 3)
    if rng.random() < 0.15:
        duration = float(round(duration))  # whole numbers, and with them repeated values
    if failing:
        duration = round(duration * 4, 3)
    access = {
        "timestamp": _iso(ts),
        "level": "ERROR" if status >= 500 else "INFO",
        "name": f"{service}.access",
        "service": service,
        "request_id": rid,
        "user_id": user,
        "message": f"{method} {path} {status}",
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": int(duration) if duration.is_integer() else duration,
    }
    lines = [access]
    for k in range(rng.randint(0, 2)):
        later = ts + timedelta(microseconds=rng.randint(1, 900_000) + k)
        level = "ERROR" if failing and k == 0 else rng.choice(["DEBUG", "INFO", "INFO", "WARNING"])
        lines.append(
            {
                "timestamp": _iso(later),
                "level": level,
                "name": f"{service}.app",
                "service": service,
                "request_id": rid,
                "user_id": user if rng.random() < 0.7 else None,
                "message": "payment gateway timeout" if level == "ERROR" else f"step {k} for {path}",
            }
        )
    for line in lines:
        if line.get("user_id") is None:
            line.pop("user_id", None)
    return lines


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def template_of(obj: dict[str, Any]) -> str | None:
    """The endpoint template the archive derives for an access line (from the generator's table)."""
    for method, pattern, template, _, _ in ENDPOINTS:
        head = pattern.split("{n}")[0]
        tail = pattern.split("{n}")[-1] if "{n}" in pattern else ""
        if obj.get("method") == method and "path" in obj:
            path = obj["path"]
            if ("{n}" in pattern and path.startswith(head) and path.endswith(tail)) or path == pattern:
                return template
    return None


def quantile_inclusive(values: list[float], p: float) -> float:
    """The textbook linear-interpolation percentile (type 7), straight from the sorted list."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    lo = int(h)
    return ordered[lo] + (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo]) * (h - lo)


@pytest.fixture(scope="module")
def traffic_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The generated traffic shipped into an archive of its own."""
    from uihelp import ship

    objects = generate()
    folder = tmp_path_factory.mktemp("traffic")
    return {"archive": ship(folder, objects), "objects": objects, "folder": folder}


@pytest.fixture(scope="module")
def traffic_server(traffic_data: dict[str, Any], serve: Callable[..., Served]) -> Served:
    return serve("--archive", str(traffic_data["archive"]))


def query(path: str, **params: Any) -> str:
    """`/api/PATH?...` with the parameters URL-encoded (None left out)."""
    from urllib.parse import urlencode

    kept = {k: v for k, v in params.items() if v is not None}
    return f"/api/{path}?{urlencode(kept)}" if kept else f"/api/{path}"


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def shipped_to_engine(
    name: str, engine: tuple[str, str], serve: Callable[..., Served], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The generated traffic in one real engine (`engine` = (name, URL), the `engine` fixture of
    tests/support/services.py: OpenSearch, Elasticsearch) and in an archive, from one `ship --once
    --archive A --to es://…`, each served by `logpipe ui`; the test's indices are deleted afterwards."""
    from uihelp import duck

    from tests.support.engines import count, make_prefix, target, wipe
    from tests.support.exdata import logpipe, write_log

    kind, url = engine
    prefix = make_prefix(f"ui-{name}-{kind}")
    wipe(url, prefix)
    folder = tmp_path_factory.mktemp(f"{name}-{kind}")
    objects = generate()
    write_log(folder / "app.log", objects)
    to = target(kind, prefix)
    result = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert result.returncode == 0, result.stderr
    ((total,),) = duck(folder / "archive", "SELECT count(*) FROM logs")
    assert total == len(objects) and count(url, prefix) == total
    yield {
        "engine": kind,
        "archive": folder / "archive",
        "objects": objects,
        "to": to,
        "archive_server": serve("--archive", str(folder / "archive")),
        "es_server": serve("--backend", "es", "--es", to),
    }
    wipe(url, prefix)
