"""Generated records and the archive written from them (shared by the query tests).

The records are plain dicts with the canonical columns; tests compute expected answers from
them in plain Python (`qexpected.py`) and compare with what DuckDB says. The archive is
written with pyarrow in the archive layout, so these tests do not depend on the shipping
pipeline; `test_query_end_to_end.py` adds the path through `logpipe ship`.
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from logpipe.schema import COLUMN_NAMES

Record = dict[str, Any]

ENDPOINTS = {  # template -> (path maker, typical ms, tail ms)
    "/api/search": (lambda n: "/api/search", 900.0, 2500.0),
    "/api/orders/{id}": (lambda n: f"/api/orders/{n}", 300.0, 1500.0),
    "/api/users/{id}": (lambda n: f"/api/users/{n}", 80.0, 300.0),
    "/api/cart": (lambda n: "/api/cart", 40.0, 120.0),
    "/health": (lambda n: "/health", 1.0, 3.0),
}
ERRORS = (  # (template, key): the key is what ingest's masking makes of the message
    ("payment gateway timeout after {n} ms", "payment gateway timeout after <n> ms"),
    ("user {n} not found", "user <n> not found"),
    ("db connection reset (attempt {n})", "db connection reset (attempt <n>)"),
    ("KeyError: 'cart_{n}'", "KeyError: 'cart_<n>'"),
)
SERVICES = ("shop", "auth", "search")
USERS = tuple(f"u{i}" for i in range(1, 13))


@dataclass(frozen=True)
class Generated:
    now: datetime
    records: list[Record]
    archive: Path


def _record(**fields: Any) -> Record:
    rec: Record = dict.fromkeys(COLUMN_NAMES)
    rec.update(fields)
    return rec


def generate_records(now: datetime, seed: int = 7) -> list[Record]:
    """Requests of several users over the last ~40 hours, plus background jobs.

    - Most requests carry user_id/session_id only on their first line; ~20% carry it only on
      their last line (lines that arrived before their context); ~10% never carry it.
    - Every timestamp is unique and none falls within 3 minutes of `now - 1h`, so tests of
      relative windows (`--since 1h`) do not depend on the seconds between fixture and test.
    """
    rnd = random.Random(seed)
    start = now - timedelta(hours=40)
    span = (now - timedelta(minutes=5)) - start
    records: list[Record] = []
    used: set[datetime] = set()

    def moment() -> datetime:
        while True:
            ts = start + span * rnd.random()
            ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
            near_edge = abs((ts - (now - timedelta(hours=1))).total_seconds()) < 180
            if not near_edge and ts not in used:
                return ts

    def take(ts: datetime) -> datetime:
        while ts in used:
            ts += timedelta(milliseconds=1)
        used.add(ts)
        return ts

    req = 0
    for user in USERS:
        for s in range(rnd.randint(1, 3)):
            session = f"s-{user}-{s}"
            service = rnd.choice(SERVICES)
            for _ in range(rnd.randint(2, 6)):
                req += 1
                request_id = f"r{req:04d}"
                t0 = moment()
                placement = rnd.choices(("first", "last", "none"), (7, 2, 1))[0]
                template = rnd.choice(list(ENDPOINTS))
                path_of, typical, tail = ENDPOINTS[template]
                n_lines = rnd.randint(2, 5)
                lines: list[Record] = []
                for k in range(n_lines):
                    ts = take(t0 + timedelta(milliseconds=37 * k))
                    if k == n_lines - 1:  # the access-log line
                        slow_hit = rnd.random() < 0.08
                        duration = round(rnd.uniform(0.5, 1.5) * (tail if slow_hit else typical), 3)
                        status = rnd.choices((200, 201, 404, 500, 503), (70, 10, 8, 7, 5))[0]
                        level = "ERROR" if status >= 500 else "INFO"
                        method = "POST" if template == "/api/cart" else "GET"
                        lines.append(
                            _record(
                                ts=ts,
                                level=level,
                                message=f"{method} {path_of(req)} {status}",
                                message_key=f"{method} {template} {status}",
                                method=method,
                                endpoint=template,
                                path=path_of(req),
                                status=status,
                                duration_ms=duration,
                            )
                        )
                    else:
                        level = rnd.choices(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), (3, 5, 2, 2, 1))[0]
                        error = None
                        if level in ("ERROR", "CRITICAL"):
                            text, key = rnd.choice(ERRORS)
                            message = text.format(n=rnd.randint(1, 99999))
                            if req % 3:  # a stack on two thirds of them (no draw: the data stays as it was)
                                error = f'Traceback (most recent call last):\n  File "app.py", line {req}\n{message}'
                        else:
                            message = key = f"step {k} of {template}"
                        lines.append(_record(ts=ts, level=level, message=message, message_key=key, error=error))
                for line in lines:
                    line.update(service=service, request_id=request_id, host=f"h{req % 3}", logger="app")
                if placement != "none":
                    carrier = lines[0] if placement == "first" else lines[-1]
                    carrier.update(user_id=user, session_id=session)
                records.extend(lines)
    for _ in range(40):  # background jobs: no request; some name a user
        text, key = rnd.choice(ERRORS)
        level = rnd.choice(("ERROR", "CRITICAL", "INFO", "WARNING"))
        records.append(
            _record(
                ts=take(moment()),
                level=level,
                message=text.format(n=rnd.randint(1, 999)),
                message_key=key,
                service="worker",
                host="h9",
                logger="jobs",
                user_id=rnd.choice((None, *USERS[:4])),
            )
        )
    records.sort(key=lambda r: r["ts"])
    for i, rec in enumerate(records):
        rec.update(source="gen.log", offset=i * 100, event_id=f"ev{i:06d}", attrs="{}")
    return records


def write_archive(root: Path, records: list[Record]) -> Path:
    """Write `records` in the archive layout: logs/day=D/level=L/part-<ms>-<uuid>.parquet.

    Each (day, level) partition is split into two files when it can be, so queries are
    tested over several files per partition too.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logpipe.schema import record_schema

    schema = record_schema()
    groups: dict[tuple[str, str], list[Record]] = defaultdict(list)
    for rec in records:
        groups[(rec["ts"].date().isoformat(), rec["level"])].append(rec)
    for (day, level), recs in groups.items():
        folder = root / "logs" / f"day={day}" / f"level={level}"
        folder.mkdir(parents=True, exist_ok=True)
        half = len(recs) // 2 if len(recs) > 3 else len(recs)
        for chunk in (recs[:half], recs[half:]):
            if chunk:
                table = pa.Table.from_pylist(chunk, schema=schema)
                pq.write_table(table, folder / f"part-{len(chunk)}-{uuid.uuid4().hex}.parquet")
    return root


def write_dead_letters(root: Path, letters: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from logpipe.schema import dead_letter_schema

    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for letter in letters:
        by_day[letter["received_at"].date().isoformat()].append(letter)
    for day, chunk in by_day.items():
        folder = root / "dead_letters" / f"day={day}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(chunk, schema=dead_letter_schema())
        pq.write_table(table, folder / f"part-0-{uuid.uuid4().hex}.parquet")


def iso(moment: datetime) -> str:
    return moment.isoformat()
