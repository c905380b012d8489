"""`logpipe patterns --backend es` on a real engine answers as on the archive, and as written.

One `logpipe ship --once --to es://…` run writes both; the log is made from known format
strings, so the expected templates and counts are written by hand and tallied in plain Python.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.cli import run_cli as logpipe
from tests.support.engines import count, make_prefix, target, wipe

pytestmark = pytest.mark.slow

UNTIL = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=3)
TEMPLATES = [  # (format, expected template, argument maker)
    ("product:{} out of stock", "product:<*> out of stock", lambda r: str(r.randint(1, 9999))),
    ("payment {} declined after {}ms", "payment <*> declined after <*>", lambda r: f"{r.getrandbits(64):016x}"),
    (
        "connection to {} refused",
        "connection to <*> refused",
        lambda r: f"10.0.{r.randint(0, 255)}.{r.randint(1, 254)}:5432",
    ),
    ("heartbeat", "heartbeat", None),
]
SERVICES = ("shop", "auth")
LINES = 4000


@pytest.fixture(scope="module")
def shipped(engine: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    name, url = engine
    prefix = make_prefix(f"patterns-{name}")
    wipe(url, prefix)
    rnd = random.Random(5)
    folder = tmp_path_factory.mktemp(f"patterns-{name}")
    records = []
    for i in range(LINES):
        fmt, template, arg = TEMPLATES[rnd.randrange(len(TEMPLATES))]
        ts = SINCE + timedelta(seconds=i * 2.5, microseconds=rnd.randrange(1000))
        message = fmt.format(*([arg(rnd), rnd.randint(1, 900)][: fmt.count("{}")] if arg else []))
        records.append(
            {
                "ts": ts,
                "message": message,
                "template": template,
                "service": rnd.choice(SERVICES),
                "level": rnd.choice(("INFO", "ERROR")),
            }
        )
    lines = [
        json.dumps(
            {
                "timestamp": r["ts"].isoformat().replace("+00:00", "Z"),
                "levelname": r["level"],
                "message": r["message"],
                "service": r["service"],
            }
        )
        for r in records
    ]
    (folder / "app.log").write_text("\n".join(lines) + "\n")
    to = target(name, prefix)
    res = logpipe(
        "ship", "--once", str(folder / "app.log"), "--archive", str(folder / "archive"), "--to", to, "--no-progress"
    )
    assert res.returncode == 0, res.stderr
    assert count(url, prefix) == LINES
    yield {"to": to, "archive": folder / "archive", "records": records}
    wipe(url, prefix)


def patterns(shipped: dict[str, Any], backend: str, *where: str) -> list[dict[str, Any]]:
    source = ("--backend", "es", "--es", shipped["to"]) if backend == "es" else ("--archive", str(shipped["archive"]))
    filters = [arg for w in where for arg in ("--where", w)]
    res = logpipe(
        "patterns",
        "--since",
        SINCE.isoformat(),
        "--until",
        UNTIL.isoformat(),
        "--limit",
        "0",
        "--format",
        "json",
        *source,
        *filters,
    )
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


@pytest.mark.parametrize("where", [(), ("service=shop",), ("level=ERROR", "stock")])
def test_engine_and_archive_give_the_written_templates(shipped: dict[str, Any], where: tuple[str, ...]) -> None:
    """Same JSON from both backends; counts per hand-written template as tallied from the log.
    (`stock` is free text, which the engine cannot answer exactly: checked on each hit.)"""

    def kept(r: dict[str, Any]) -> bool:
        return all(
            (w != "service=shop" or r["service"] == "shop")
            and (w != "level=ERROR" or r["level"] == "ERROR")
            and (w != "stock" or "stock" in r["message"])
            for w in where
        )

    want = Counter(r["template"] for r in shipped["records"] if kept(r))
    archive, engine = patterns(shipped, "archive", *where), patterns(shipped, "es", *where)
    assert engine == archive
    assert {r["template"]: r["count"] for r in archive} == dict(want)
    assert sum(r["count"] for r in archive) == sum(want.values()) > 0
