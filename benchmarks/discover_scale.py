"""Does `logpipe ui` stay interactive as the archive grows? The Discover questions at several sizes.

    .venv/bin/python benchmarks/discover_scale.py [--lines 10000000] [--sizes 10000000,100000000]
        [--runs 3] [--work DIR] [--base-log PATH]

The corpus of `discover_vs_victorialogs.py` is one week of one service, `--lines` records. An
archive grows by keeping more weeks at the same rate, so the corpus of size N here is N / `--lines`
consecutive weeks: the week written by that script's generator (or `--base-log`, an existing copy
of it), then copies of it shifted by 7, 14, ... days (only the timestamps' dates change, byte for
byte: writing ten weeks of fresh records with the Python generator takes most of an hour, copying
takes a minute). Each size is shipped with `logpipe ship --once` and compacted (cached under
`--work`, as the week's JSON; `--drop-json` deletes a size's JSON once its archive is built).

Exactness does not rest on scanning the JSON again: the generator tallies, as it writes the week,
how many records carry the phrase, the common word and the rare word, over the week and in its
newest hour (kept beside the log as `.counts.json`; for a week written before that, the generator
is replayed without writing). A corpus of k weeks holds k times the week's counts, and its newest
hour is the last copy's, so each count `logpipe ui` answers is checked against that tally.

Then, for each size, `logpipe ui` on its archive is asked the Discover questions twice, over all
time and over the newest hour (`latest=1h`, as the page's range select sends): for the phrase, the
common word and the rare word the newest 100 rows, the histogram, the facets and the count; then
the summary (all time, and the newest day), the errors of the newest hour, one user's journey,
and slow endpoints over the newest day. Best of `--runs` after one untimed round, sizes
interleaved question by question (both servers warm). Prints each question's time at every size
and the growth (largest / smallest), with the claim checked: a bounded view must not grow with
the archive (at most 1.5x, for noise), a full-range one at most linearly (the size ratio x 1.5).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from discover_vs_victorialogs import (  # noqa: E402
    COMMON,
    PHRASE,
    RARE,
    START,
    WEEK_S,
    build_archive,
    http_get,
    serve,
    tally_log,
    url,
    write_log,
)

WORK = HERE / ".work" / "discover-scale"
NOISE = 1.5  # a time this many times another is still "the same" on a shared 2-core machine
TS_KEY = b'{"timestamp":"'


def week_dates(lines: int) -> list[str]:
    """The calendar dates (YYYY-MM-DD) the week's timestamps fall on, oldest first."""
    first = datetime.fromtimestamp(START, tz=UTC).date()
    last = datetime.fromtimestamp(START + (lines - 1) * WEEK_S / lines, tz=UTC).date()
    return [(first + timedelta(days=d)).isoformat() for d in range((last - first).days + 1)]


def shifted(chunk: bytes, dates: list[str], days: int) -> bytes:
    """`chunk` of the week's lines with every timestamp moved `days` later.

    Only the date changes (a whole number of days, UTC): each line starts with its timestamp, so
    the date right after `{"timestamp":"` is replaced. Newest date first, so a date already moved
    onto a date still to be moved is not moved twice.
    """
    for date in reversed(dates):
        later = (datetime.fromisoformat(date) + timedelta(days=days)).date().isoformat()
        chunk = chunk.replace(TS_KEY + date.encode(), TS_KEY + later.encode())
    return chunk


def write_weeks(week: Path, lines: int, weeks: int, out: Path) -> None:
    """`weeks` consecutive weeks: `week`'s lines, then copies shifted by 7, 14, ... days."""
    dates = week_dates(lines)
    tmp = out.with_suffix(".tmp")
    with tmp.open("wb") as sink:
        for k in range(weeks):
            with week.open("rb") as source:
                while chunk := source.read(64 << 20):
                    chunk += source.readline()
                    sink.write(shifted(chunk, dates, 7 * k) if k else chunk)
    tmp.rename(out)


def week_log(work: Path, lines: int, base: Path | None) -> Path:
    """The week's log (written here once, unless `base` is a copy of it) and its tally beside it."""
    log = base if base is not None else work / f"app-{lines}.log"
    if not log.exists():
        t0 = time.perf_counter()
        write_log(log, lines)
        print(f"wrote {log} in {time.perf_counter() - t0:.0f} s", flush=True)
    return log


def week_counts(work: Path, log: Path, lines: int) -> dict[str, dict[str, int]]:
    """The generator's tally of the week (its own sidecar, else a replay of the generator here)."""
    own = log.with_name(log.name + ".counts.json")
    if own.exists():
        counts: dict[str, dict[str, int]] = json.loads(own.read_text())
        return counts
    mine = work / f"app-{lines}.log.counts.json"
    if not mine.exists():
        t0 = time.perf_counter()
        mine.write_text(json.dumps(tally_log(lines)))
        print(f"replayed the generator's tally of {lines:,} records in {time.perf_counter() - t0:.0f} s", flush=True)
    replayed: dict[str, dict[str, int]] = json.loads(mine.read_text())
    return replayed


def build(work: Path, week: Path, lines: int, size: int, drop_json: bool) -> Path:
    """The archive of `size` records (size / lines weeks), shipped from its JSON (written if needed)."""
    archive = work / f"archive-{size}"
    if archive.is_dir():
        return archive
    log = week if size == lines else work / f"app-{size}.log"
    if not log.exists():
        t0 = time.perf_counter()
        write_weeks(week, lines, size // lines, log)
        print(f"wrote {log} ({size // lines} weeks) in {time.perf_counter() - t0:.0f} s", flush=True)
    build_archive(log, archive)
    if drop_json and log != week:
        log.unlink()
    return archive


# --- the questions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Question:
    label: str
    bounded: bool  # over a window ending at the newest record (must not grow with the archive)
    path: str
    params: dict[str, Any]


def newest_window(size: int, lines: int, seconds: int) -> dict[str, Any]:
    """`from`/`to` (epoch ms) of the last `seconds` of a corpus of `size` records."""
    end = START + WEEK_S * size / lines
    return {"from": int((end - seconds) * 1000), "to": int(end * 1000) + 1}


def questions(size: int, lines: int, user: str) -> list[Question]:
    out: list[Question] = []
    for label, text in (("phrase", f'"{PHRASE}"'), ("common word", COMMON), ("rare word", RARE)):
        for bounded, span in ((False, {}), (True, {"latest": "1h"})):
            where = "newest hour" if bounded else "all time"
            out += [
                Question(f"{label}: rows, {where}", bounded, "/api/search", {"q": text, "limit": 100, **span}),
                Question(f"{label}: histogram, {where}", bounded, "/api/histogram", {"q": text, **span}),
                Question(f"{label}: facets, {where}", bounded, "/api/facets", {"q": text, **span}),
                Question(
                    f"{label}: count, {where}", bounded, "/api/search", {"q": text, "limit": 1, "count": 1, **span}
                ),
            ]
    hour = newest_window(size, lines, 3600)
    day = newest_window(size, lines, 86400)
    out += [
        Question("summary by level (always all time)", False, "/api/summary", {}),
        Question("errors, newest hour, grouped", True, "/api/errors", hour),
        Question(f"journey of {user}, all time", False, "/api/journey", {"user": user}),
        Question(f"journey of {user}, newest day", True, "/api/journey", {"user": user, **day}),
        Question("slow p50/p95/p99, newest day", True, "/api/slow", day),
    ]
    return out


@dataclass
class Server:
    size: int
    base: str
    proc: subprocess.Popen[str]
    asks: list[Question]


def timed(target: str) -> float:
    t0 = time.perf_counter()
    http_get(target)
    return time.perf_counter() - t0


def best_of(servers: list[Server], runs: int) -> Iterator[tuple[str, list[float]]]:
    """Each question's best seconds at every size (one untimed round, then `runs` rounds with the
    sizes interleaved), question by question, so a long run shows its rows as they come."""
    for row in zip(*(s.asks for s in servers), strict=True):
        targets = [url(s.base, q.path, **q.params) for s, q in zip(servers, row, strict=True)]
        for target in targets:
            http_get(target)
        best = [float("inf")] * len(targets)
        for _ in range(runs):
            for j, target in enumerate(targets):
                best[j] = min(best[j], timed(target))
        yield row[0].label, best


def check_counts(server: Server, lines: int, week: dict[str, dict[str, int]]) -> bool:
    """`total` of each search, all time and newest hour, against the generator's tally."""
    weeks = server.size // lines
    exact = True
    for name, text in (("phrase", f'"{PHRASE}"'), ("common", COMMON), ("rare", RARE)):
        for where, span, expected in (
            ("all time", {}, weeks * week["week"][name]),
            ("newest hour", {"latest": "1h"}, week["newest_hour"][name]),
        ):
            total = json.loads(http_get(url(server.base, "/api/search", q=text, limit=1, count=1, **span)))["total"]
            same = total == expected
            exact &= same
            print(
                f"  {server.size:>12,} records, {text} {where}: logpipe {total:,}, generator {expected:,}"
                f" ({'same' if same else 'DIFFERENT'})"
            )
    return exact


def verdict(bounded: bool, growth: float, size_ratio: float) -> str:
    if bounded:
        return "ok" if growth <= NOISE else "GROWS"
    return "ok" if growth <= size_ratio * NOISE else "SUPERLINEAR"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000, help="records in one week of the corpus")
    parser.add_argument(
        "--sizes", default="", help="comma-separated sizes, multiples of --lines (default: 1 and 10 weeks)"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument(
        "--base-log", type=Path, help="an existing copy of the week's log (discover_vs_victorialogs.py's)"
    )
    parser.add_argument("--drop-json", action="store_true", help="delete a size's JSON once its archive is built")
    parser.add_argument("--build-only", action="store_true", help="write and ship the corpora, ask nothing")
    parser.add_argument("--only", default="", help="ask only the questions whose label contains this")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [args.lines, 10 * args.lines]
    if any(s <= 0 or s % args.lines for s in sizes):
        parser.error(f"every size must be a multiple of --lines ({args.lines:,})")
    sizes = sorted(set(sizes))
    args.work.mkdir(parents=True, exist_ok=True)
    week = week_log(args.work, args.lines, args.base_log)
    archives = {size: build(args.work, week, args.lines, size, args.drop_json) for size in sizes}
    counts = week_counts(args.work, week, args.lines)
    if args.build_only:
        return
    servers: list[Server] = []
    try:
        for size in sizes:
            proc, base = serve(archives[size])
            servers.append(Server(size, base, proc, []))
        user = json.loads(http_get(url(servers[0].base, "/api/journey/users", limit=1)))["users"][0]["user_id"]
        for server in servers:
            server.asks = [q for q in questions(server.size, args.lines, user) if args.only in q.label]
        print(f"sizes {', '.join(f'{s:,}' for s in sizes)} records ({args.lines:,} a week); best of {args.runs}")
        exact = all([check_counts(s, args.lines, counts) for s in servers])
        size_ratio = sizes[-1] / sizes[0]
        head = "".join(f"{f'{s / 1e6:g}M':>11s}" for s in sizes)
        print(f"{'question':44s}{head} {'growth':>8s}  claim")
        kinds = {q.label: q.bounded for q in servers[0].asks}
        for label, best in best_of(servers, args.runs):
            growth = best[-1] / best[0]
            cells = "".join(f"{t * 1000:8.1f} ms" for t in best)
            claim = "bounded: ~1x" if kinds[label] else f"full: <= {size_ratio:g}x"
            print(
                f"{label:44s}{cells} {growth:7.2f}x  {claim}: {verdict(kinds[label], growth, size_ratio)}", flush=True
            )
        print("every count exact" if exact else "SOME COUNT DIFFERS from the generator's tally")
    finally:
        for server in servers:
            server.proc.terminate()
            server.proc.wait(timeout=30)


if __name__ == "__main__":
    main()
