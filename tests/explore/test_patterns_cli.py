"""`logpipe patterns` as a process, on an archive written by a real `logpipe ship --once`.

The log is made here from known format strings with random arguments of the masked kinds, so
the expected templates are written by hand and the expected counts, times and trends are
tallied from the records as they were written, not from anything logpipe computes.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Run, run_cli

pytestmark = pytest.mark.slow

# (format, expected template, argument makers)
TEMPLATES = [
    ("product:{} out of stock", "product:<*> out of stock", (lambda r: str(r.randint(1, 9999)),)),
    (
        "user {} logged in from {}",
        "user <*> logged in from <*>",
        (lambda r: str(r.randint(1, 500)), lambda r: ".".join(str(r.randint(1, 254)) for _ in range(4))),
    ),
    (
        "payment {} failed after {}ms",
        "payment <*> failed after <*>",
        (lambda r: str(uuid.UUID(int=r.getrandbits(128))), lambda r: str(r.randint(1, 5000))),
    ),
    ("cache miss key='{}'", "cache miss key='<*>'", (lambda r: r.choice(["a", "b c", "d-e"]),)),
    (
        "GET /api/orders/{} {}",
        "GET /api/orders/<*> <*>",
        (lambda r: str(r.randint(1, 99999)), lambda r: r.choice(["200", "404"])),
    ),
    ("heartbeat", "heartbeat", ()),
]
LEVELS = ("INFO", "WARNING", "ERROR")
UNTIL = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SINCE = UNTIL - timedelta(hours=2)


def logpipe(*args: str) -> Run:
    return run_cli(*args, columns=None)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """3,000 records over 3 hours (the first hour is outside the window), shipped for real."""
    rnd = random.Random(11)
    work = tmp_path_factory.mktemp("patterns")
    records = []
    for _ in range(3000):
        which = rnd.randrange(len(TEMPLATES))
        fmt, expected, makers = TEMPLATES[which]
        ts = SINCE - timedelta(hours=1) + timedelta(microseconds=rnd.randrange(3 * 3600 * 10**6))
        records.append(
            {
                "ts": ts,
                "level": rnd.choice(LEVELS),
                "message": fmt.format(*(m(rnd) for m in makers)),
                "template": expected,
            }
        )
    lines = [
        json.dumps(
            {"timestamp": r["ts"].isoformat().replace("+00:00", "Z"), "levelname": r["level"], "message": r["message"]}
        )
        for r in records
    ]
    (work / "app.log").write_text("\n".join(lines) + "\n")
    res = logpipe("ship", "--once", str(work / "app.log"), "--archive", str(work / "archive"), "--no-progress")
    assert res.returncode == 0, res.stderr
    return work / "archive", records


def expected(records: list[dict[str, Any]], levels: tuple[str, ...] = LEVELS, buckets: int = 12) -> dict[str, Any]:
    out: dict[str, Any] = {}
    span = UNTIL - SINCE
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if SINCE <= r["ts"] < UNTIL and r["level"] in levels:
            groups[r["template"]].append(r)
    for template, recs in groups.items():
        trend = [0] * buckets
        for r in recs:
            trend[(r["ts"] - SINCE) // timedelta(microseconds=1) * buckets // (span // timedelta(microseconds=1))] += 1
        out[template] = {
            "count": len(recs),
            "first_seen": min(r["ts"] for r in recs),
            "last_seen": max(r["ts"] for r in recs),
            "trend": trend,
            "messages": {r["message"] for r in recs},
        }
    return out


def run_json(archive: Path, *extra: str) -> list[dict[str, Any]]:
    res = logpipe(
        "patterns",
        "--since",
        SINCE.isoformat(),
        "--until",
        UNTIL.isoformat(),
        "--limit",
        "0",
        "--archive",
        str(archive),
        "--format",
        "json",
        *extra,
    )
    assert res.returncode == 0, res.stderr
    rows: list[dict[str, Any]] = json.loads(res.stdout)
    return rows


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestPatternsCli:
    def test_templates_counts_times_trend_and_examples_match_the_written_records(
        self, shipped: tuple[Path, list[dict[str, Any]]]
    ) -> None:
        archive, records = shipped
        want = expected(records)
        rows = run_json(archive)
        assert {r["template"]: r["count"] for r in rows} == {t: w["count"] for t, w in want.items()}
        assert sum(r["count"] for r in rows) == sum(w["count"] for w in want.values())
        for row in rows:
            w = want[row["template"]]
            assert (parse(row["first_seen"]), parse(row["last_seen"])) == (w["first_seen"], w["last_seen"])
            assert row["trend"] == w["trend"]
            assert row["examples"] and set(row["examples"]) <= w["messages"]
            assert len(set(row["examples"])) == len(row["examples"])
        assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)

    def test_level_filter(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        archive, records = shipped
        rows = run_json(archive, "--level", "error", "--level", "WARNING")
        want = expected(records, ("ERROR", "WARNING"))
        assert {r["template"]: r["count"] for r in rows} == {t: w["count"] for t, w in want.items()}

    def test_where_filters(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        """The shared filter language: a regex, a level by severity and free text, all must hold."""
        archive, records = shipped
        rows = run_json(archive, "--where", "message~^(product|user)", "--where", "level>=WARNING logged")
        want = expected([r for r in records if r["message"].startswith("user ")], ("WARNING", "ERROR"))
        assert {r["template"]: r["count"] for r in rows} == {t: w["count"] for t, w in want.items()}
        assert list(want) == ["user <*> logged in from <*>"]

    def test_limit_shows_the_most_frequent(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        archive, records = shipped
        rows = run_json(archive, "--limit", "2")
        ranked = sorted(expected(records).items(), key=lambda kv: (-kv[1]["count"], kv[0]))
        assert [r["template"] for r in rows] == [t for t, _ in ranked[:2]]

    def test_table_fits_80_columns(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        archive, records = shipped
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "logpipe",
                "patterns",
                "--since",
                SINCE.isoformat(),
                "--until",
                UNTIL.isoformat(),
                "--archive",
                str(archive),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env={**_env(), "COLUMNS": "80"},
        )
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        total = sum(w["count"] for w in expected(records).values())
        assert f"{len(TEMPLATES)} patterns in {total:,} records" in lines[0]
        assert all(len(line) <= 80 for line in lines[1:])
        assert "product:<*> out of stock" in res.stdout

    def test_no_records_is_an_empty_answer_not_an_error(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        archive, _ = shipped
        res = logpipe(
            "patterns", "--since", "2001-01-01", "--until", "2001-01-02", "--archive", str(archive), "--format", "json"
        )
        assert (res.returncode, json.loads(res.stdout)) == (0, [])

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--level", "LOUD"], "unknown level 'LOUD'"),
            (["--since", "yesterday"], "bad time expression 'yesterday'"),
            (["--format", "xml"], "unknown format 'xml'"),
            (["--backend", "es"], "--backend es needs --es URL"),
            (["--where", "colour=red"], "unknown field 'colour'"),
        ],
    )
    def test_bad_options_are_one_red_line(
        self, shipped: tuple[Path, list[dict[str, Any]]], args: list[str], message: str
    ) -> None:
        archive, _ = shipped
        res = logpipe("patterns", "--archive", str(archive), *args)
        assert res.returncode == 2
        assert res.stderr.strip() == f"error: {res.stderr.strip().removeprefix('error: ')}"
        assert message in res.stderr and "Traceback" not in res.stderr


class TestArchiveConnection:
    def test_duckdb_never_draws_its_progress_bar(self, shipped: tuple[Path, list[dict[str, Any]]]) -> None:
        """DuckDB draws a progress bar on stdout once a query has run 2 s, and a streamed read
        runs as long as its consumer (the miner) takes: it would land inside `--format json`.
        Asked in a process of its own (DuckDB decides its default from the process it runs in)."""
        archive, _ = shipped
        code = (
            "import sys; from pathlib import Path; from logpipe.archive.reader import open_archive; "
            "con = open_archive(Path(sys.argv[1])); "
            "print(con.sql(\"SELECT current_setting('enable_progress_bar')\").fetchall())"
        )
        res = subprocess.run([sys.executable, "-c", code, str(archive)], capture_output=True, text=True, timeout=60)
        assert (res.returncode, res.stdout.strip()) == (0, "[(False,)]"), res.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("LOGPIPE_BACKEND", "LOGPIPE_ES_URL")}
