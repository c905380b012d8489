"""A JSON application log for the engine tests, written as a service would write it.

Several services, endpoints, users and sessions over ~30 hours (so the daily index names
change), errors with and without an endpoint, and requests whose user context appears only on
their first line. Deterministic for a seed; timestamps are unique and absolute.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SERVICES = ("shop", "auth", "search")
ENDPOINTS = (  # (method, path maker, typical ms)
    ("GET", lambda n: f"/api/users/{n}", 40.0),
    ("GET", lambda n: f"/api/orders/{n}", 300.0),
    ("POST", lambda n: "/api/orders", 900.0),
    ("GET", lambda n: "/api/search", 1500.0),
    ("GET", lambda n: "/health", 1.0),
)
ERRORS = ("payment gateway timeout after {n} ms", "user {n} not found", "db connection reset (attempt {n})")
USERS = tuple(f"user-{i}" for i in range(1, 16))


def start_of_data(now: datetime) -> datetime:
    """The first timestamp: 30 hours before `now`, on a whole hour."""
    return (now - timedelta(hours=30)).replace(minute=0, second=0, microsecond=0)


def generate(now: datetime, lines: int, seed: int = 11) -> list[dict[str, Any]]:
    """`lines` log objects in time order, one request = 1-4 lines."""
    rng = random.Random(seed)
    start = start_of_data(now)
    step = timedelta(hours=29) / lines
    out: list[dict[str, Any]] = []
    n = 0
    while len(out) < lines:
        service = rng.choice(SERVICES)
        method, path_of, base_ms = rng.choice(ENDPOINTS)
        user = rng.choice(USERS)
        session = f"sess-{user}-{n // 200}"
        request = f"req-{n:06d}-{rng.getrandbits(24):06x}"
        path = path_of(rng.randint(1, 9999))
        for part in range(rng.randint(1, 4)):
            if len(out) >= lines:
                break
            ts = start + step * len(out) + timedelta(microseconds=rng.randint(0, 999))
            obj: dict[str, Any] = {
                "timestamp": ts.isoformat().replace("+00:00", "Z"),
                "level": "INFO",
                "logger": f"{service}.web",
                "service": service,
                "request_id": request,
                "message": f"step {part} of {path}",
                "seq": len(out),
            }
            if part == 0 and rng.random() < 0.9:
                obj["user_id"], obj["session_id"] = user, session
            roll = rng.random()
            if roll < 0.08:
                obj["level"] = rng.choice(("ERROR", "ERROR", "CRITICAL"))
                obj["message"] = rng.choice(ERRORS).format(n=rng.randint(1, 5000))
                if rng.random() < 0.7:
                    obj.update(method=method, path=path)
                if len(out) % 3:  # a stack on most (no draw from rng: the rest of the data is as it was)
                    obj["exc_info"] = (
                        f'Traceback (most recent call last):\n  File "app.py", line {len(out)}\n{obj["message"]}'
                    )
            elif roll < 0.15:
                obj["level"] = "WARNING"
                obj["message"] = f"slow downstream {rng.randint(1, 99)}"
            elif roll < 0.6:
                duration = round(rng.lognormvariate(0, 0.6) * base_ms, 3)
                status = 500 if rng.random() < 0.03 else (404 if rng.random() < 0.05 else 200)
                obj.update(method=method, path=path, status=status, duration_ms=duration, message="request done")
            elif roll < 0.7:
                obj["level"] = "DEBUG"
            out.append(obj)
        n += 1
    return out


def write_log(path: Path, objects: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for obj in objects:
            fh.write(json.dumps(obj) + "\n")


def append_log(path: Path, objects: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for obj in objects:
            fh.write(json.dumps(obj) + "\n")
        fh.flush()


def utc_now() -> datetime:
    return datetime.now(UTC)
