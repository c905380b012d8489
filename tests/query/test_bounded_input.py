"""Out-of-range input is one red line and exit 2, before any work (#20 items 11 and 12).

Times past what a date can hold (`99999999999d`, year 0 or 10000 once in UTC), an empty
`--since`, a `--limit` past the documented maximum and a `buckets` parameter past 1,000
(100,000,000 once took 20 GB) are refused by the real `python -m logpipe` with one line naming the
limit; the edges of the documented range still answer. The archive is shipped for real.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from logpipe.limits import MAX_BUCKETS, MAX_CONTEXT_LINES, MAX_RECORDS_SHOWN
from logpipe.read.timeexpr import EARLIEST, LATEST
from tests.support.cli import Run, run_cli

RECORDS = 50
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("bounded-input")
    lines = [
        json.dumps(
            {
                "timestamp": (START + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
                "level": "ERROR" if i % 2 else "INFO",
                "message": f"request {i} failed",
                "seq": i,
            }
        )
        for i in range(RECORDS)
    ]
    (work / "app.log").write_text("\n".join(lines) + "\n")
    done = run_cli("ship", "--once", str(work / "app.log"), "--archive", str(work / "archive"), "--no-progress")
    assert done.code == 0, done.err
    return work / "archive"


def one_red_line(run: Run, *words: str) -> None:
    """Exit 2 and exactly one `error:` line on stderr that names `words`; nothing on stdout."""
    lines = run.err.splitlines()
    assert run.code == 2, (run.code, run.out[-500:], run.err[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), run.err
    assert all(w in lines[0] for w in words), lines[0]
    assert run.out == ""


# Before year 1 or after year 9999 in UTC (what a record can hold is read: tests/retention/test_retention_safety)
OUT_OF_RANGE = ["99999999999d", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
COMMANDS = [["search"], ["tail"], ["patterns"], ["query", "errors"], ["query", "slow"], ["export"]]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_times_out_of_range_are_one_line(archive: Path, tmp_path: Path, command: list[str], when: str) -> None:
    out = ["--out", str(tmp_path / "out.parquet")] if command == ["export"] else []
    run = run_cli(*command, *out, "--archive", str(archive), "--since", when)
    one_red_line(run, repr(when), EARLIEST.date().isoformat(), LATEST.date().isoformat())


@pytest.mark.parametrize("command", [["search"], ["tail"], ["patterns"], ["query", "errors"]], ids=" ".join)
def test_an_empty_since_is_refused(archive: Path, command: list[str]) -> None:
    one_red_line(run_cli(*command, "--archive", str(archive), "--since", ""), "bad time expression ''")


def test_a_filter_time_out_of_range_is_one_line(archive: Path) -> None:
    one_red_line(run_cli("search", "--archive", str(archive), "ts>=99999999999d"), "out of range")


@pytest.mark.parametrize(
    ("args", "most"),
    [
        (["search", "--limit", str(MAX_RECORDS_SHOWN + 1)], MAX_RECORDS_SHOWN),
        (["search", "--limit", "99999999999999999999"], MAX_RECORDS_SHOWN),
        (["tail", "-n", str(MAX_RECORDS_SHOWN + 1)], MAX_RECORDS_SHOWN),
        (["context", "-n", str(MAX_CONTEXT_LINES + 1), "some-id"], MAX_CONTEXT_LINES),
        (["query", "error_timeline", "--param", "buckets=" + "9" * 30], MAX_BUCKETS),  # (10**8 once took 20 GB)
        (["query", "error_timeline", "--param", f"buckets={MAX_BUCKETS + 1}"], MAX_BUCKETS),
        (["patterns", "--buckets", str(MAX_BUCKETS + 1)], MAX_BUCKETS),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_counts_past_their_maximum_are_one_line(archive: Path, args: list[str], most: int) -> None:
    run = run_cli(*args, "--archive", str(archive))
    assert run.code == 2 and len(run.err.splitlines()) == 1 and run.err.startswith("error: "), run.err
    assert f"{most:,}" in run.err or str(most) in run.err, run.err


def test_the_edges_of_the_range_and_the_maxima_answer(archive: Path) -> None:
    """From the earliest to the latest time, at the maxima: every record, counted as plain Python does."""
    whole = ["--since", EARLIEST.isoformat(), "--until", LATEST.isoformat()]
    found = run_cli("search", "--archive", str(archive), *whole, "--limit", str(MAX_RECORDS_SHOWN), "--format", "json")
    assert found.code == 0, found.err
    assert sorted(json.loads(found.out)[i]["message"] for i in range(RECORDS)) == sorted(
        f"request {i} failed" for i in range(RECORDS)
    )
    timeline = run_cli(
        "query",
        "error_timeline",
        "--archive",
        str(archive),
        *whole,
        "--param",
        f"buckets={MAX_BUCKETS}",
        "--format",
        "json",
    )
    assert timeline.code == 0, timeline.err
    rows = json.loads(timeline.out)
    assert len(rows) == MAX_BUCKETS
    assert sum(r["count"] for r in rows) == sum(1 for i in range(RECORDS) if i % 2)
