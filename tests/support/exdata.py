"""A generated application log whose every record the explore and ui tests know, and how to ship it.

python-json-logger shape: several services, requests of 1-4 lines (some with status and
duration), warnings and errors with stack traces, a nested `ctx` object and a `region` field
(both land in attrs), and a few rare words placed by construction: `zanzibar` only in messages,
`quokka` only in stack traces, `narwhal` only in an attrs value.
"""

from __future__ import annotations

import functools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.cli import run_cli

SERVICES = ("shop", "auth", "search")
PATHS = ("/api/users/{n}", "/api/orders/{n}", "/api/search", "/health")
LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")


def generate(lines: int, *, seed: int = 5, start: datetime | None = None) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    out: list[dict[str, Any]] = []
    request = 0
    while len(out) < lines:
        request += 1
        service = rng.choice(SERVICES)
        rid = f"req-{request:05d}"
        user = f"u{rng.randint(1, 30)}"
        path = rng.choice(PATHS).format(n=rng.randint(1, 500))
        for part in range(rng.randint(1, 4)):
            if len(out) >= lines:
                break
            n = len(out)
            level = rng.choice(LEVELS)
            obj: dict[str, Any] = {
                "timestamp": (start + timedelta(seconds=n, microseconds=rng.randint(0, 999_999)))
                .isoformat()
                .replace("+00:00", "Z"),
                "level": level,
                "name": f"{service}.web",
                "service": service,
                "request_id": rid,
                "message": f"step {part} handling {path} for {user}" + (" zanzibar" if n % 97 == 3 else ""),
                "region": rng.choice(["eu", "us"]) if n % 89 != 7 else "narwhal-land",
                "ctx": {"attempt": rng.randint(1, 3), "shard": rng.choice(["a", "b"])},
            }
            if part == 0:
                obj.update(
                    {
                        "user_id": user,
                        "method": rng.choice(["GET", "POST"]),
                        "path": path,
                        "status": rng.choice([200, 200, 201, 404, 500, 503]),
                        "duration_ms": round(rng.uniform(0.5, 2000), 3),
                    }
                )
            if level == "ERROR":
                word = " quokka" if n % 5 == 0 else ""
                obj["exc_info"] = (
                    f'Traceback (most recent call last):\n  File "app.py", line {n}\nValueError: bad{word}'
                )
            out.append(obj)
    return out


def write_log(path: Path, objects: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for obj in objects:
            f.write(json.dumps(obj) + "\n")


# The explore and ui tests read tables drawn 80 columns wide.
logpipe = functools.partial(run_cli, columns=80)


def ship(log: Path, archive: Path) -> None:
    """`logpipe ship --once` of `log` into `archive`, as a user runs it."""
    run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
    assert run.returncode == 0, run.stderr


def ts_of(obj: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(obj["timestamp"].replace("Z", "+00:00"))


def extras(obj: dict[str, Any]) -> dict[str, Any]:
    """The fields that are not canonical columns (they land in attrs)."""
    known = {
        "timestamp",
        "level",
        "name",
        "service",
        "request_id",
        "message",
        "user_id",
        "method",
        "path",
        "status",
        "duration_ms",
        "exc_info",
    }
    return {k: v for k, v in obj.items() if k not in known}


def free_text_hit(obj: dict[str, Any], needle: str) -> bool:
    """Case-insensitive substring of message, error or any attrs value, from the written object."""
    needle = needle.lower()
    texts = [obj["message"], obj.get("exc_info") or "", json.dumps(extras(obj))]
    return any(needle in t.lower() for t in texts)
