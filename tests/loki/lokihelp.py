"""Helpers for the Loki sink tests: sink URLs for VictoriaLogs and the double, VictoriaLogs' own
query API, and generated records with what the sink must make of them."""

from __future__ import annotations

import json
import random
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.cli import Run, run_cli
from tests.support.loki_double import DoubleServer
from tests.support.services import url
from tests.support.wait import poll

VL_PUSH_PATH = "/insert/loki/api/v1/push?disable_message_parsing=1"  # keep the line verbatim in _msg
SERVICES_NAMES = ("checkout", "search", "auth")


def vl_target(encoding: str, **options: str) -> str:
    host = url("victorialogs").split("://", 1)[1]
    query = {"encoding": encoding, "path": VL_PUSH_PATH, **options}
    return f"loki://{host}?{urllib.parse.urlencode(query)}"


def double_target(server: DoubleServer, **options: str) -> str:
    query = {"max_backoff": "1", **options}
    return f"loki://{server.url}?{urllib.parse.urlencode(query)}"


def vl_query(query: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """Every entry LogsQL `query` finds (VictoriaLogs' own query API, not logpipe)."""
    data = urllib.parse.urlencode({"query": query, "limit": str(limit)}).encode()
    with urllib.request.urlopen(f"{url('victorialogs')}/select/logsql/query", data=data, timeout=60) as response:
        return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]


def vl_wait(query: str, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Poll until `count` entries are queryable (VictoriaLogs makes data visible within seconds)."""
    return poll(lambda: vl_query(query), lambda rows: len(rows) >= count, timeout_s, every_s=0.5)


def ship_once(log: Path, archive: Path, target: str, *extra: str, env: dict[str, str] | None = None) -> Run:
    return run_cli(
        "ship", "--once", str(log), "--archive", str(archive), "--no-progress", "--to", target, *extra, env=env
    )


def source_lines(
    n: int, env: str, *, seed: int = 7, start_s: int | None = None, shuffle: bool = False
) -> list[dict[str, Any]]:
    """python-json-logger-shaped records: every request line names its full context, others none."""
    rng = random.Random(seed)
    base = start_s if start_s is not None else int(time.time()) - 3600
    levels = ["DEBUG", "INFO", "info", "WARNING", "warn", "ERROR", "CRITICAL"]
    out = []
    for seq in range(n):
        ts = base + seq // 10 + (seq % 10) / 10 + rng.randrange(1000) / 1e6
        rec: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{round(ts % 1 * 1e6):06d}+00:00",
            "levelname": rng.choice(levels),
            "name": "shop.web",
            "message": f'event seq={seq} "quoted" ü',
            "service": SERVICES_NAMES[seq % 3],
            "env": env,
            "seq": seq,
        }
        if seq % 4:
            rec.update(
                request_id=f"req-{seq // 4}",
                user_id=f"user-{seq % 17}",
                session_id=f"s-{seq % 5}",
                method="GET",
                path=f"/api/orders/{seq}",
            )
        out.append(rec)
    if shuffle:
        rng.shuffle(out)
    return out


def write_lines(path: Path, records: list[dict[str, Any]], mode: str = "a") -> None:
    with open(path, mode, encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def expected_level(name: str) -> str:
    """Independent mapping of the names used above to the label value (lower-case canonical level)."""
    return {"warn": "warning", "info": "info"}.get(name, name.lower())


def expected_metadata(rec: dict[str, Any]) -> dict[str, str]:
    if "request_id" not in rec:
        return {}
    return {
        "request_id": rec["request_id"],
        "user_id": rec["user_id"],
        "session_id": rec["session_id"],
        "endpoint": "/api/orders/{id}",
    }


def ts_ns(rec: dict[str, Any]) -> int:
    import datetime as dt

    stamp = dt.datetime.fromisoformat(rec["timestamp"])
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
