"""A read bounded in time reads only the parts of its window, whatever the archive's number of days (#21 item 2).

Two archives, shipped by the real CLI: the newest 3 days of a generated log, and the same 3 days
after 27 older ones (30 day partitions, ten times the parts). The same bounded requests (the
newest hour as the page's `latest=1h` asks it, and the newest day as a `from`/`to` range: rows
counted and not, histogram, facets, the errors and slow views) are asked of both. What they read
is spied on: the parts each request's connection reads (its `logs`), the parts whose text
summaries and `ts` blocks are decoded, and the Parquet scans the statements name. It is the same
on both archives, and within the window's days; every answer equals a plain-Python computation
over the records the test wrote (and the views' answers are equal on both archives).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from logpipe.archive import reader
from logpipe.archive.layout import walk_parts
from logpipe.read import archive_search, archive_store
from logpipe.read.archive_store import ArchiveStore
from logpipe.ui import discover, errors, slow
from logpipe.ui.api import Params
from tests.support.exdata import free_text_hit, generate, logpipe, ts_of, write_log

DAYS_FEW, DAYS_MANY = 3, 30
PER_DAY = 720  # one record every 2 minutes
RARE = "xylophonic"  # in one record in 20: one or two an hour
NEWEST_DAY = datetime(2026, 11, 29, tzinfo=UTC)
SEARCHES = (RARE, "step 1 handling", "handling")
FACETS = {"level": "level", "service": "service", "method": "method", "status": "status"}
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


def day_records(back: int) -> list[dict[str, Any]]:
    """The records of the day `back` days before the newest, spread over the whole day."""
    start = NEWEST_DAY - timedelta(days=back)
    objs = generate(PER_DAY, seed=40 + back, start=start)
    step = timedelta(days=1) / PER_DAY
    for n, obj in enumerate(objs):
        obj["timestamp"] = (start + n * step + timedelta(microseconds=n)).isoformat().replace("+00:00", "Z")
        obj["request_id"] = f"d{back}-{obj['request_id']}"  # each day's requests its own
        if n % 20 == 3:
            obj["message"] += f" {RARE}"
    return objs


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, list[dict[str, Any]]]]:
    """{days: (archive, its records)} for the archive of 3 days and the one of 30."""
    out = {}
    for days in (DAYS_FEW, DAYS_MANY):
        root = tmp_path_factory.mktemp(f"days{days}")
        objs = [o for back in reversed(range(days)) for o in day_records(back)]
        log, archive = root / "app.log", root / "archive"
        write_log(log, objs)
        run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert run.returncode == 0, run.stderr
        out[days] = (archive, objs)
    return out


@dataclass
class Reads:
    """What the archive's requests read, by part (paths)."""

    parts: set[str] = field(default_factory=set)  # the parts each request's `logs` reads
    summaries: set[str] = field(default_factory=set)  # the parts whose text summaries are decoded
    blocks: set[str] = field(default_factory=set)  # the parts whose `ts` blocks are read
    scans: int = 0  # Parquet scans named in the statements run

    def days(self) -> set[str]:
        return {Path(p).parent.parent.name for p in self.parts | self.summaries | self.blocks}

    def reset(self) -> None:
        self.parts, self.summaries, self.blocks, self.scans = set(), set(), set(), 0

    def copy(self) -> Reads:
        return Reads(set(self.parts), set(self.summaries), set(self.blocks), self.scans)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    seen = Reads()
    real_connection = ArchiveStore.connection

    @contextmanager
    def connection(self: ArchiveStore, *args: Any, **kwargs: Any) -> Iterator[Any]:
        with real_connection(self, *args, **kwargs) as con:
            seen.parts.update(str(p) for p in reader.log_parts(con) or ())
            yield con

    real_summaries, real_blocks = reader.part_summaries, reader.block_ts

    def part_summaries(con: Any, parts: Any) -> Any:
        seen.summaries.update(str(p) for p in parts)
        return real_summaries(con, parts)

    def block_ts(con: Any, parts: Any) -> Any:
        seen.blocks.update(str(p) for p in parts)
        return real_blocks(con, parts)

    def counting(real: Any) -> Any:
        def run(con: Any, sql: str, values: Any) -> Any:
            seen.scans += sql.count("read_parquet")
            return real(con, sql, values)

        return run

    monkeypatch.setattr(ArchiveStore, "connection", connection)
    monkeypatch.setattr(reader, "part_summaries", part_summaries)
    monkeypatch.setattr(reader, "block_ts", block_ts)
    monkeypatch.setattr(archive_store, "_run", counting(archive_store._run))
    monkeypatch.setattr(archive_search, "_run", counting(archive_search._run))
    return seen


def params(**values: Any) -> Params:
    return Params({k: str(v) for k, v in values.items()}, datetime.now(UTC))


def epoch_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def newest_windows(objs: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], int, int]]:
    """{name: (the request's range parameters, from ms, to ms)}: the newest hour as `latest=1h`
    resolves it (ending 1 ms after the newest record), and the newest day as a `from`/`to`."""
    to = max(epoch_ms(ts_of(o)) for o in objs) + 1
    return {
        "newest hour": ({"latest": "1h"}, to - HOUR_MS, to),
        "newest day": ({"from": to - DAY_MS, "to": to}, to - DAY_MS, to),
    }


def within(objs: list[dict[str, Any]], lo_ms: int, hi_ms: int) -> list[dict[str, Any]]:
    lo, hi = (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms) for ms in (lo_ms, hi_ms))
    return [o for o in objs if lo <= ts_of(o) < hi]


def matching(objs: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """The records the search box `q` selects: one word or one quoted phrase, one needle."""
    return [o for o in objs if free_text_hit(o, q)]


def box(q: str) -> str:
    return f'"{q}"' if " " in q else q


def ask_bounded(store: ArchiveStore, objs: list[dict[str, Any]], span: dict[str, Any], lo: int, hi: int) -> None:
    """Discover's bounded requests, each answer checked against plain Python over `objs`."""
    for q in SEARCHES:
        hits = sorted(matching(within(objs, lo, hi), q), key=ts_of, reverse=True)
        assert hits, f"{q!r} matches nothing in the window: the test would prove nothing"
        counted = discover.search(store, params(q=box(q), limit=50, count=1, **span))
        assert counted["total"] == len(hits), q
        assert [(r["ts"], r["message"]) for r in counted["rows"]] == [(ts_of(o), o["message"]) for o in hits[:50]], q
        page = discover.search(store, params(q=box(q), limit=50, **span))
        assert page["rows"] == counted["rows"], q
        histo = discover.histogram(store, params(q=box(q), **span))
        assert histo["total"] == len(hits), q
        step = histo["step_ms"]
        got = Counter({(b["t"], lv): n for b in histo["buckets"] for lv, n in b["levels"].items()})
        assert got == Counter((epoch_ms(ts_of(o)) // step * step, o["level"]) for o in hits), q
        facets = discover.facets(store, params(q=box(q), **span))
        assert facets["total"] == len(hits), q
        by_field = {f["field"]: f for f in facets["fields"]}
        for name, key in FACETS.items():
            values = Counter(o.get(key) for o in hits)
            missing = values.pop(None, 0)
            if missing == len(hits):
                continue
            top = sorted(values.items(), key=lambda vc: (-vc[1], vc[0]))[:5]
            assert [(v["value"], v["count"]) for v in by_field[name]["values"]] == top, (q, name)
            assert by_field[name]["missing"] == missing, (q, name)


@pytest.mark.parametrize("window", ["newest hour", "newest day"])
def test_a_bounded_view_reads_the_same_parts_over_3_or_30_days(
    archives: dict[int, tuple[Path, list[dict[str, Any]]]], reads: Reads, window: str
) -> None:
    seen: dict[int, Reads] = {}
    views: dict[int, list[dict[str, Any]]] = {}
    for days, (archive, objs) in archives.items():
        span, lo, hi = newest_windows(objs)[window]
        store = ArchiveStore(archive)
        try:
            ask_bounded(store, objs, span, lo, hi)  # the first time: every footer read once
            reads.reset()
            ask_bounded(store, objs, span, lo, hi)
            range_ = {"from": lo, "to": hi}
            views[days] = [errors.errors(store, params(**range_)), slow.slow(store, params(**range_))]
        finally:
            store.close()
        seen[days] = reads.copy()
    few, many = seen[DAYS_FEW], seen[DAYS_MANY]
    assert few.parts and few.summaries and few.blocks and few.scans
    assert (len(many.parts), len(many.summaries), len(many.blocks), many.scans) == (
        len(few.parts),
        len(few.summaries),
        len(few.blocks),
        few.scans,
    )
    # Only the window's days (and, for the errors view, the day before: its access lines).
    newest = [f"day={(NEWEST_DAY - timedelta(days=d)).date().isoformat()}" for d in range(DAYS_FEW)]
    assert many.days() <= set(newest), many.days()
    assert views[DAYS_FEW] == views[DAYS_MANY]
    assert views[DAYS_MANY][0]["groups"] and views[DAYS_MANY][1]["requests"]


def test_a_window_reads_only_the_parts_whose_ts_range_meets_it(
    archives: dict[int, tuple[Path, list[dict[str, Any]]]], reads: Reads
) -> None:
    """Within the window's days, each part's own `ts` range decides: a part whose records all lie
    outside the window is not read, one whose range meets it (even by its last microsecond, the
    bounds taken inclusively) is. The parts expected are found from their rows with pyarrow."""
    archive, objs = archives[DAYS_MANY]
    ranges = {}
    for part in walk_parts(archive, ("logs",)).parts:
        stamps = pq.read_table(part, columns=["ts"]).column("ts")
        ranges[str(part)] = (pc.min(stamps).as_py(), pc.max(stamps).as_py())
    newest = max(ts_of(o) for o in objs)
    store = ArchiveStore(archive)
    try:
        for lo, hi in (
            (newest, newest + timedelta(microseconds=1)),  # the newest record alone
            (newest - timedelta(hours=30), newest - timedelta(hours=20)),  # across a midnight
            (newest - timedelta(days=9, hours=1), newest - timedelta(days=9)),  # an hour of an old day
            (newest + timedelta(microseconds=1), newest + timedelta(hours=1)),  # after every record
        ):
            reads.reset()
            q = f"ts>={lo.isoformat()} ts<{hi.isoformat()}"
            expected = sorted((o for o in objs if lo <= ts_of(o) < hi), key=ts_of, reverse=True)
            answer = discover.search(store, params(q=q, limit=1000, count=1))
            assert answer["total"] == len(expected), q
            assert [r["message"] for r in answer["rows"]] == [o["message"] for o in expected], q
            meeting = {name for name, (first, last) in ranges.items() if first <= hi and last >= lo}
            assert reads.parts == meeting, q
            assert len(meeting) < len(ranges) / 5, q
    finally:
        store.close()


def test_a_bounded_read_sees_new_parts_and_compaction_without_a_new_database(tmp_path: Path, reads: Reads) -> None:
    """A bounded request lists only its window's days and reads them through the session's
    database as built by the last unbounded one: records shipped since (new parts) are counted
    on the next request, and parts a compaction replaced are not read (nor counted twice)."""
    objs = [o for back in reversed(range(DAYS_FEW)) for o in day_records(back)]
    log, archive = tmp_path / "app.log", tmp_path / "archive"
    newest = max(ts_of(o) for o in objs)
    lo, hi = newest - timedelta(hours=2), newest + timedelta(hours=2)
    q = f'"step 1 handling" ts>={lo.isoformat()} ts<{hi.isoformat()}'

    def ship(batch: list[dict[str, Any]]) -> None:
        write_log(log, batch)
        run = logpipe("ship", "--once", str(log), "--archive", str(archive), "--no-progress")
        assert run.returncode == 0, run.stderr

    def later(k: int) -> list[dict[str, Any]]:
        """60 records from `20 k + 1` minutes after the newest, requests of their own."""
        batch = generate(60, seed=90 + k, start=newest)
        for n, obj in enumerate(batch):
            obj["timestamp"] = (newest + timedelta(minutes=1 + 20 * k, seconds=n)).isoformat()
            obj["request_id"] = f"b{k}-{obj['request_id']}"
        return batch

    def check(store: ArchiveStore, step: str) -> None:
        reads.reset()
        expected = [o for o in matching(objs, "step 1 handling") if lo <= ts_of(o) < hi]
        answer = discover.search(store, params(q=q, limit=1000, count=1))
        assert answer["total"] == len(expected), step
        assert sorted(r["message"] for r in answer["rows"]) == sorted(o["message"] for o in expected), step
        assert reads.parts and reads.parts <= {str(p) for p in walk_parts(archive, ("logs",)).parts}, step

    ship(objs)
    store = ArchiveStore(archive)
    try:
        discover.search(store, params(q="handling", limit=1))  # unbounded: the database is built
        check(store, "first")
        for k in range(2):
            objs += later(k)
            ship(objs[-60:])
            check(store, f"after batch {k}")
        before = len(walk_parts(archive, ("logs",)).parts)
        run = logpipe("archive", "compact", "--archive", str(archive))
        assert run.returncode == 0, run.stderr
        assert len(walk_parts(archive, ("logs",)).parts) < before
        check(store, "after compaction")
        assert store.databases_built == 1  # every bounded request read through the first database
    finally:
        store.close()
