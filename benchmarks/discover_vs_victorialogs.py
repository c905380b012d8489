"""`logpipe ui` beside VictoriaLogs: the same questions over the same records, over HTTP.

    .venv/bin/python benchmarks/discover_vs_victorialogs.py [--lines 10000000] [--runs 3]
        [--work DIR] [--vl-port 19438] [--vl-bin PATH]

Writes (once, cached under `--work`) `--lines` records of a python-json-logger-shaped log of one
service over a week: requests of a few lines (user, session, request_id), an access line with
method, path, status and duration per request, errors with a stack trace, the phrase
"redis connection reset by peer" in about one line in 1,500, the word "checkout" in about one
in eight, and a rare word (`xylophonic`) in 12. Ships it with `logpipe ship --once` into an
archive (compacted, as an agent's archive is) and posts the same file to a VictoriaLogs started
here on `--vl-port` with its data under `--work` (kept: the next run reuses both). Then starts
`logpipe ui` on the archive and asks both servers the same questions over HTTP, interleaved
(ours, theirs, ours, theirs ...), one untimed round first, best of `--runs`:

- for the phrase, the common word and the rare word, over all time: the newest 100 rows
  (`/api/search` vs `/select/logsql/query?limit=100`), the histogram (`/api/histogram` vs
  `/select/logsql/hits` by level), the facets (`/api/facets` vs `/select/logsql/facets`) and the
  count (`/api/search?limit=1&count=1`, whose `total` is exact, vs `stats count()`; the rows
  request counts nothing, as VictoriaLogs' does not);
- the whole Discover page for the phrase: rows, histogram and facets fired at once as the
  browser does (and VictoriaLogs' three at once), until the last answer is in;
- the archive summary by level, the errors of the last hour grouped, one user's journey through
  their request_ids, slow endpoints' p50/p95/p99 over a day.

Prints each question's best times and the ratio logpipe / VictoriaLogs (targets: at most 1.5 for
the Discover requests, errors and journey; below 1 for slow; the whole page within 300 ms) and
checks that both count the same matches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / ".work" / "discover"
PHRASE = "redis connection reset"
COMMON = "checkout"
RARE = "xylophonic"
PLANTED = 12
START = 1_790_000_000.0  # the corpus's first second (fixed: the cache and the windows depend on it)
WEEK_S = 7 * 86400
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PATHS = ("/api/orders/{}", "/api/cart", "/api/checkout", "/api/products/{}", "/api/users/{}", "/health", "/login")


def records(lines: int, seed: int = 21) -> Iterator[tuple[datetime, dict[str, Any]]]:
    """A week of one service's records, `lines` of them, seeded (the same ones every time)."""
    rng = random.Random(seed)
    planted = set(rng.sample(range(lines), PLANTED))
    step = WEEK_S / lines
    n = 0
    request = 0
    while n < lines:
        size = rng.randint(2, 8)
        user = f"u{rng.randint(1, 20000)}"
        session = f"s{rng.randint(1, 60000):06d}"
        rid = f"req-{request:010x}"
        host = f"web-{rng.randint(1, 4)}"
        service = "shop" if rng.random() < 0.8 else "auth"
        request += 1
        for k in range(size):
            if n >= lines:
                break
            at = datetime.fromtimestamp(START + n * step, tz=UTC)
            rec: dict[str, Any] = {
                "timestamp": at.isoformat(timespec="microseconds"),
                "levelname": "INFO",
                "name": "shop.web",
                "service": service,
                "host": host,
                "request_id": rid,
                "user_id": user,
                "session_id": session,
            }
            roll = rng.random()
            if k == size - 1:  # the access line
                path_ = rng.choice(PATHS).format(rng.randint(1, 5000))
                status = rng.choices((200, 201, 302, 404, 500), (80, 5, 5, 7, 3))[0]
                rec.update(
                    message=f"{rng.choice(('GET', 'POST'))} {path_} {status}",
                    method=rng.choice(("GET", "POST")),
                    path=path_,
                    status=status,
                    duration_ms=round(rng.lognormvariate(3.5, 0.8), 3),
                    name="shop.access",
                )
                if status == 500:
                    rec["levelname"] = "ERROR"
            elif roll < 1 / 1500:
                rec.update(
                    levelname="ERROR",
                    name="shop.cache",
                    message=f"redis connection reset by peer while reading reply (attempt {rng.randint(1, 3)})",
                    exc_info='Traceback (most recent call last):\n  File "cache.py", line 88, in get\n'
                    "ConnectionResetError: [Errno 104] Connection reset by peer",
                )
            elif roll < 0.006:
                rec.update(
                    levelname="ERROR",
                    name="shop.payments",
                    message=f"payment gateway timeout after {rng.randint(1000, 5000)} ms",
                    exc_info='Traceback (most recent call last):\n  File "pay.py", line 12, in charge\n'
                    "TimeoutError: gateway",
                )
            elif roll < 0.13:
                rec["message"] = f"{COMMON} step {rng.randint(1, 5)} for cart {rng.randint(1, 99999)}"
            elif roll < 0.2:
                rec.update(levelname="WARNING", message=f"slow query on orders took {rng.randint(200, 900)} ms")
            elif roll < 0.45:
                rec.update(levelname="DEBUG", name="shop.db", message=f"db query took {rng.randint(1, 90)} ms")
            else:
                rec["message"] = f"cache miss for key product:{rng.randint(1, 99999)}"
            if n in planted:
                rec["message"] += f" {RARE}"
            yield at, rec
            n += 1


def write_log(path: Path, lines: int, seed: int = 21) -> None:
    """The week's records as JSON lines, and the generator's tally of them beside (`.counts.json`)."""
    import orjson

    tally = Tally(lines)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        buf: list[bytes] = []
        for at, rec in records(lines, seed):
            tally.add(at, rec["message"])
            buf.append(orjson.dumps(rec))
            if len(buf) >= 20_000:
                out.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            out.write(b"\n".join(buf) + b"\n")
    path.with_name(path.name + ".counts.json").write_text(json.dumps(tally.counts))
    tmp.rename(path)


def tally_log(lines: int, seed: int = 21) -> dict[str, dict[str, int]]:
    """The tally `write_log` keeps, by replaying the generator (for a log written without it)."""
    tally = Tally(lines)
    for at, rec in records(lines, seed):
        tally.add(at, rec["message"])
    return tally.counts


class Tally:
    """How many records the generator wrote with the phrase, the common word and the rare word in
    their message (the searched field), over the week and in its newest hour as `latest=1h` reads
    it: from the newest record's epoch ms + 1 - 1 h (ts at or after that)."""

    def __init__(self, lines: int) -> None:
        newest = datetime.fromtimestamp(START + (lines - 1) * (WEEK_S / lines), tz=UTC)
        self.hour_from = (epoch_us(newest) // 1000 + 1 - 3_600_000) * 1000
        self.counts = {where: dict.fromkeys(("phrase", "common", "rare"), 0) for where in ("week", "newest_hour")}

    def add(self, at: datetime, message: str) -> None:
        words = set(re.findall(r"\w+", message.lower()))
        for name, hit in (("phrase", PHRASE in message.lower()), ("common", COMMON in words), ("rare", RARE in words)):
            if hit:
                self.counts["week"][name] += 1
                if epoch_us(at) >= self.hour_from:
                    self.counts["newest_hour"][name] += 1


def epoch_us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=600) as response:
        body: bytes = response.read()
        return body


def http_post(url: str, data: bytes) -> None:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/stream+json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        response.read()


def build_archive(log: Path, archive: Path) -> None:
    if archive.is_dir():
        return
    logpipe = [sys.executable, "-m", "logpipe"]
    tmp = archive.with_name(archive.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    subprocess.run([*logpipe, "ship", "--once", str(log), "--archive", str(tmp), "--no-progress"], check=True, cwd=ROOT)
    subprocess.run([*logpipe, "archive", "compact", "--archive", str(tmp)], check=True, cwd=ROOT)
    tmp.rename(archive)
    print(f"shipped and compacted in {time.perf_counter() - t0:.0f} s")


def start_vl(binary: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [str(binary), f"-storageDataPath={data}", f"-httpListenAddr=127.0.0.1:{port}", "-retentionPeriod=100y"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"VictoriaLogs exited with {proc.returncode}")
        try:
            http_get(f"http://127.0.0.1:{port}/health")
            return proc
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    sys.exit("VictoriaLogs did not become healthy")


def load_vl(vl: str, log: Path, data: Path, lines: int) -> None:
    marker = data / "logpipe-bench-loaded"
    if marker.exists():
        return
    query = urllib.parse.urlencode(
        {"_time_field": "timestamp", "_msg_field": "message", "_stream_fields": "service,host"}
    )
    t0 = time.perf_counter()
    with log.open("rb") as fh:
        while chunk := fh.read(32 << 20):
            chunk += fh.readline()
            http_post(f"{vl}/insert/jsonline?{query}", chunk)
    http_get(f"{vl}/internal/force_flush")
    held = vl_count(vl, "*")
    if held != lines:
        sys.exit(f"VictoriaLogs holds {held:,} records of {lines:,}")
    marker.write_text(str(lines))
    print(f"posted to VictoriaLogs in {time.perf_counter() - t0:.0f} s")


def vl_count(vl: str, query: str) -> int:
    body = http_get(
        f"{vl}/select/logsql/stats_query?" + urllib.parse.urlencode({"query": f"{query} | stats count() n"})
    )
    result = json.loads(body)["data"]["result"]
    return int(result[0]["value"][1]) if result else 0


def serve(archive: Path) -> tuple[subprocess.Popen[str], str]:
    """`logpipe ui` on a free port (ui_latency's), and its address without the trailing slash."""
    from ui_latency import serve as serve_ui

    proc, url = serve_ui(archive)
    return proc, url.rstrip("/")


def url(base: str, path: str, **params: Any) -> str:
    return f"{base}{path}?{urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})}"


def together(urls: list[str]) -> Callable[[], list[bytes]]:
    """All of `urls` at once (as a browser fires a page's requests), until the last answer."""
    pool = ThreadPoolExecutor(max_workers=8)

    def run() -> list[bytes]:
        return list(pool.map(http_get, urls))

    return run


def one(target: str) -> Callable[[], list[bytes]]:
    return lambda: [http_get(target)]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ms(seconds: float) -> str:
    return str(int(seconds * 1000))


def questions(ui: str, vl: str, lines: int, user: str) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(label, logpipe's request(s), VictoriaLogs' request(s)) for every question."""
    end = START + WEEK_S
    hour = (end - 3600, end)
    day = (end - 86400, end)
    out: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = []
    for label, ours_q, theirs_q in (
        ("phrase", f'"{PHRASE}"', f'"{PHRASE}"'),
        ("common word", COMMON, COMMON),
        ("rare word", RARE, RARE),
    ):
        rows = (url(ui, "/api/search", q=ours_q, limit=100), url(vl, "/select/logsql/query", query=theirs_q, limit=100))
        histo = (
            url(ui, "/api/histogram", q=ours_q),
            url(vl, "/select/logsql/hits", query=theirs_q, step="1h", field="levelname"),
        )
        facets = (url(ui, "/api/facets", q=ours_q), url(vl, "/select/logsql/facets", query=theirs_q, limit=5))
        count = (
            url(ui, "/api/search", q=ours_q, limit=1, count=1),
            url(vl, "/select/logsql/stats_query", query=f"{theirs_q} | stats count() n"),
        )
        for what, (a, b) in (("rows", rows), ("histogram", histo), ("facets", facets), ("count", count)):
            out.append((f"{label}: {what}", one(a), one(b)))
        if label == "phrase":
            page_ours = together([rows[0], histo[0], facets[0]])
            page_theirs = together([rows[1], histo[1], facets[1]])
            out.append(("phrase: whole Discover page", page_ours, page_theirs))
    out.append(
        (
            "summary by level",
            one(url(ui, "/api/summary")),
            one(
                url(
                    vl,
                    "/select/logsql/stats_query",
                    query="* | stats by (levelname) count() n, min(_time) first, max(_time) last",
                )
            ),
        )
    )
    out.append(
        (
            "errors, last hour, grouped",
            one(url(ui, "/api/errors", **{"from": ms(hour[0]), "to": ms(hour[1])})),
            one(
                url(
                    vl,
                    "/select/logsql/query",
                    query=f"_time:[{iso(hour[0])}, {iso(hour[1])}) levelname:in(ERROR, CRITICAL) "
                    "| stats by (_msg) count() n, max(_time) last | sort by (n desc) | limit 50",
                )
            ),
        )
    )
    out.append(
        (
            f"journey of {user}",
            one(url(ui, "/api/journey", user=user)),
            one(
                url(
                    vl,
                    "/select/logsql/query",
                    query=f"request_id:in(user_id:{user} | fields request_id) | sort by (_time)",
                )
            ),
        )
    )
    out.append(
        (
            "slow p50/p95/p99, one day",
            one(url(ui, "/api/slow", **{"from": ms(day[0]), "to": ms(day[1])})),
            one(
                url(
                    vl,
                    "/select/logsql/query",
                    query=f"_time:[{iso(day[0])}, {iso(day[1])}) duration_ms:>0 | stats by (method, path) "
                    "quantile(0.5, duration_ms) p50, quantile(0.95, duration_ms) p95, "
                    "quantile(0.99, duration_ms) p99, count() n | sort by (p95 desc) | limit 50",
                )
            ),
        )
    )
    return out


def best_of(pairs: list[tuple[str, Callable[[], Any], Callable[[], Any]]], runs: int) -> list[tuple[str, float, float]]:
    """Best seconds of each side, interleaved (ours, theirs, ours, theirs ...), after one untimed round."""
    for _, ours, theirs in pairs:
        ours()
        theirs()
    best = {label: [float("inf"), float("inf")] for label, _, _ in pairs}
    for _ in range(runs):
        for label, ours, theirs in pairs:
            for side, call in enumerate((ours, theirs)):
                t0 = time.perf_counter()
                call()
                best[label][side] = min(best[label][side], time.perf_counter() - t0)
    return [(label, best[label][0], best[label][1]) for label, _, _ in pairs]


def check_counts(ui: str, vl: str) -> None:
    """Both servers count the same matches for each searched text (the questions are the same)."""
    for text, theirs_q in ((f'"{PHRASE}"', f'"{PHRASE}"'), (COMMON, COMMON), (RARE, RARE)):
        ours = json.loads(http_get(url(ui, "/api/search", q=text, limit=1, count=1)))["total"]
        theirs = vl_count(vl, theirs_q)
        mark = "same" if ours == theirs else "DIFFERENT"
        print(f"  matches of {text}: logpipe {ours:,}, VictoriaLogs {theirs:,} ({mark})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--vl-port", type=int, default=int(os.environ.get("LOGPIPE_VL_PORT", "19438")))
    default_bin = Path(os.environ.get("LOGPIPE_SERVICES_DIR", ROOT / ".cache" / "services"))
    parser.add_argument("--vl-bin", type=Path, default=default_bin / "victorialogs" / "bin" / "victoria-logs")
    parser.add_argument("--only", default="", help="ask only the questions whose label contains this")
    parser.add_argument("--build-only", action="store_true", help="write, ship and post the corpus, ask nothing")
    args = parser.parse_args()
    if not args.vl_bin.exists():
        parser.error(f"no VictoriaLogs binary at {args.vl_bin}: `scripts/services up victorialogs` builds it")
    args.work.mkdir(parents=True, exist_ok=True)
    log = args.work / f"app-{args.lines}.log"
    archive = args.work / f"archive-{args.lines}"
    vl_data = args.work / f"vl-{args.lines}"
    if not log.exists():
        t0 = time.perf_counter()
        write_log(log, args.lines)
        print(f"wrote {log} in {time.perf_counter() - t0:.0f} s")
    build_archive(log, archive)
    vl_proc = start_vl(args.vl_bin, vl_data, args.vl_port)
    ui_proc = None
    try:
        vl = f"http://127.0.0.1:{args.vl_port}"
        load_vl(vl, log, vl_data, args.lines)
        if args.build_only:
            return
        ui_proc, ui = serve(archive)
        user = json.loads(http_get(url(ui, "/api/journey/users", limit=1)))["users"][0]["user_id"]
        print(
            f"{args.lines:,} records ({log.stat().st_size / 1e6:,.0f} MB of JSON lines); best of {args.runs}, "
            f"interleaved; load {os.getloadavg()[0]:.1f}"
        )
        check_counts(ui, vl)
        pairs = [p for p in questions(ui, vl, args.lines, user) if args.only in p[0]]
        print(f"{'question':34s} {'logpipe':>10s} {'VictoriaLogs':>13s} {'ratio':>7s}")
        for label, ours, theirs in best_of(pairs, args.runs):
            print(f"{label:34s} {ours * 1000:8.1f} ms {theirs * 1000:10.1f} ms {ours / theirs:6.2f}x")
    finally:
        if ui_proc is not None:
            ui_proc.terminate()
            ui_proc.wait(timeout=30)
        vl_proc.terminate()
        vl_proc.wait(timeout=60)


if __name__ == "__main__":
    main()
