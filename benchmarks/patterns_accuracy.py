"""Grouping accuracy of `logpipe patterns` (the Drain-style miner) against today's `message_key`.

A labelled data set is made with real logging libraries: python-json-logger (stdlib logging,
%-style format strings), structlog (JSONRenderer) and loguru (serialize=True, {}-style), each
message printed from one of TEMPLATES with random arguments, and the template's number logged
as an extra field (`tpl`), so the true group of every record is known by construction. The
three files go through the real `logpipe ship --once` into an archive; the miner then reads the
archive's `message` column in the order `logpipe patterns` reads it.

The score is Loghub's grouping accuracy (Zhu et al., "Tools and Benchmarks for Automated Log
Parsing", ICSE-SEIP 2019): the share of messages whose mined group holds exactly the messages
of their true group. The baseline is grouping by the archive's `message_key` column (a regex
mask computed at ingest, for WARNING and above; the benchmark applies the same native mask to
the other levels' messages), scored the same way in the same run.

    .venv/bin/python benchmarks/patterns_accuracy.py [--messages 30000] [--seed 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import string
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

Arg = Callable[[random.Random], str]


def _pick(*values: str) -> Arg:
    return lambda r: r.choice(values)


def _int(lo: int, hi: int) -> Arg:
    return lambda r: str(r.randint(lo, hi))


def _ms(r: random.Random) -> str:
    return str(r.randint(1, 30_000))


def _secs(r: random.Random) -> str:
    return f"{r.uniform(0.01, 120):.2f}"


def _ip(r: random.Random) -> str:
    return ".".join(str(r.randint(1, 254)) for _ in range(4))


def _uuid(r: random.Random) -> str:
    return str(uuid.UUID(int=r.getrandbits(128), version=4))


def _hex(r: random.Random) -> str:
    return f"{r.getrandbits(64):016x}"


def _email(r: random.Random) -> str:
    name = "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(3, 9)))
    return f"{name}{r.choice(['', '.' + r.choice(string.ascii_lowercase), str(r.randint(1, 99))])}@{r.choice(['example.com', 'mail.org', 'corp.io'])}"


def _word(r: random.Random) -> str:
    return "".join(r.choice(string.ascii_lowercase) for _ in range(r.randint(3, 10)))


def _path(r: random.Random) -> str:
    return (
        f"/var/data/{r.choice(['in', 'out', 'tmp'])}/{_word(r)}_{r.randint(1, 999)}.{r.choice(['csv', 'json', 'gz'])}"
    )


def _api(r: random.Random) -> str:
    return r.choice(
        [
            f"/api/orders/{r.randint(1, 99999)}",
            f"/api/users/{r.randint(1, 9999)}/cart",
            "/api/search",
            f"/api/products/{_uuid(r)}",
        ]
    )


def _iso(r: random.Random) -> str:
    return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}Z"


def _phrase(r: random.Random) -> str:
    return " ".join(_word(r) for _ in range(r.randint(1, 4)))


_USERS = _pick("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
_CITIES = _pick("Paris", "Lyon", "Berlin", "Madrid", "Oslo", "Rome")
_SERVICES = _pick("billing", "inventory", "search", "auth", "mailer")
_TABLES = _pick("orders", "users", "carts", "invoices", "events")

# (format string with {} slots, one argument maker per slot). Shapes vary on purpose: numbers,
# ids, paths, key:value and key=value, e-mails, durations, quoted strings, words, lengths from
# 1 to 12 tokens, and families that share a prefix.
TEMPLATES: list[tuple[str, tuple[Arg, ...]]] = [
    ("user {} logged in from {}", (_USERS, _ip)),
    ("product:{} out of stock", (_int(1, 5000),)),
    ("product:{} back in stock ({} units)", (_int(1, 5000), _int(1, 500))),
    ("order {} shipped to {}", (_int(10_000, 99_999), _CITIES)),
    ("payment of {} EUR declined for card ending {}", (lambda r: f"{r.uniform(1, 999):.2f}", _int(1000, 9999))),
    ("GET {} returned {} in {}ms", (_api, _pick("200", "404", "500"), _ms)),
    ("request {} took {}s", (_uuid, _secs)),
    ("cache miss for key '{}'", (_phrase,)),
    ("cache hit for key '{}' ({} bytes)", (_phrase, _int(10, 100_000))),
    (
        "retrying connection to {}:{} (attempt {}/{})",
        (_pick("db1", "db2", "cache"), _int(1024, 65535), _int(1, 5), _int(5, 9)),
    ),
    ("connection to {}:{} refused", (_ip, _int(1024, 65535))),
    ('sent email to {} with subject "{}"', (_email, _phrase)),
    ("file {} not found", (_path,)),
    ("uploaded {} bytes to s3://backups/{}", (_int(1, 10**9), lambda r: f"{_word(r)}/{_hex(r)}.tar")),
    ("worker {} started", (_int(1, 64),)),
    ("worker {} stopped after {}s", (_int(1, 64), _secs)),
    (
        "job {} finished in {}ms with status {}",
        (_pick("reindex", "export", "cleanup", "digest"), _ms, _pick("ok", "failed", "skipped")),
    ),
    ("queue depth is {}", (_int(0, 10_000),)),
    ("queue depth is {} above threshold {}", (_int(1000, 10_000), _int(100, 999))),
    ("disk usage at {}% on {}", (_int(50, 99), _pick("/", "/var", "/data", "/home"))),
    ("user_id={} session={} action={}", (_int(1, 99_999), _hex, _pick("view", "click", "buy", "share"))),
    ("tenant:{} quota:{} used:{}", (_int(1, 500), _int(1000, 9999), _int(0, 9999))),
    ("slow query on table {} took {}ms", (_TABLES, _ms)),
    ("KeyError: '{}'", (lambda r: f"{_word(r)}_{r.randint(1, 99)}",)),
    ("ValueError: invalid literal for int() with base 10: '{}'", (_word,)),
    ("timeout after {}ms waiting for {}", (_ms, _SERVICES)),
    ("config reloaded from {}", (lambda r: f"/etc/app/{_word(r)}.yaml",)),
    (
        "feature flag {} is {} for user {}",
        (_pick("new_checkout", "dark_mode", "beta_search"), _pick("on", "off"), _int(1, 99_999)),
    ),
    ("rate limit exceeded for {}: {} requests in {}s", (_ip, _int(100, 9999), _int(1, 60))),
    ("token {} expired at {}", (_hex, _iso)),
    ("invoice INV-{} generated for customer {}", (_int(1, 999_999), _int(1, 99_999))),
    ("starting service version {}", (lambda r: f"{r.randint(1, 3)}.{r.randint(0, 20)}.{r.randint(0, 99)}",)),
    ("heartbeat", ()),
    ("heartbeat missed by node-{}", (_int(1, 32),)),
    ("shutting down", ()),
    ("shutting down in {} seconds", (_int(1, 60),)),
    ("cart {} has {} items totalling {}", (_uuid, _int(1, 40), lambda r: f"{r.uniform(1, 2000):.2f}")),
    ("login failed for {}: bad password", (_email,)),
    ("login failed for {}: account locked", (_email,)),
    ("thumbnail {}x{} created for image {}", (_pick("64", "128", "256", "640"), _pick("48", "96", "480"), _uuid)),
    ("certificate for {} expires in {} days", (lambda r: f"{_word(r)}.example.com", _int(1, 90))),
    ("received signal {}", (_pick("SIGTERM", "SIGHUP", "SIGINT"),)),
    ("processed batch {} of {} ({}%)", (_int(1, 500), _int(500, 1000), _int(0, 100))),
    ("deprecated endpoint {} called by client {}", (_api, _pick("ios-app", "android-app", "web", "partner"))),
    ("{} {} {}", (_pick("GET", "POST", "PUT", "DELETE"), _api, _pick("200", "201", "404", "500"))),
    ("health check ok", ()),
    ("health check failed: {}", (_pick("timeout", "refused", "unhealthy"),)),
    ("mfa code sent to +{}", (_int(10**9, 10**11),)),
    ("connection closed by {}", (_ip,)),
    ("connection reset by {}", (_ip,)),
    ("session {} created", (_uuid,)),
    ("session {} expired", (_uuid,)),
]

LEVELS = ("INFO", "INFO", "INFO", "WARNING", "ERROR")


def draw(rnd: random.Random, n: int) -> list[tuple[int, tuple[str, ...], str]]:
    """n (template number, arguments, level) triples; every template appears at least 5 times."""
    weights = [rnd.uniform(0.2, 3.0) for _ in TEMPLATES]
    picks = [i for i in range(len(TEMPLATES)) for _ in range(5)]
    picks += rnd.choices(range(len(TEMPLATES)), weights, k=max(n - len(picks), 0))
    rnd.shuffle(picks)
    return [(i, tuple(arg(rnd) for arg in TEMPLATES[i][1]), rnd.choice(LEVELS)) for i in picks[:n]]


# --- writing the logs with the real libraries -------------------------------------------------


def write_python_json_logger(path: Path, items: Sequence[tuple[int, tuple[str, ...], str]]) -> None:
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    log = logging.getLogger("bench.stdlib")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    for i, args, level in items:
        fmt = TEMPLATES[i][0].replace("%", "%%").replace("{}", "%s")
        log.log(getattr(logging, level), fmt, *args, extra={"tpl": i})
    handler.close()


def write_structlog(path: Path, items: Sequence[tuple[int, tuple[str, ...], str]]) -> None:
    import structlog

    with open(path, "w", encoding="utf-8") as fh:
        log = structlog.wrap_logger(
            structlog.WriteLogger(fh),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(),
            ],
        )
        for i, args, level in items:
            getattr(log, level.lower())(TEMPLATES[i][0].format(*args), tpl=i)


def write_loguru(path: Path, items: Sequence[tuple[int, tuple[str, ...], str]]) -> None:
    from loguru import logger

    logger.remove()
    sink = logger.add(path, serialize=True, level="DEBUG")
    for i, args, level in items:
        # loguru formats `{}` from the positional arguments itself.
        logger.bind(tpl=i).log(level, TEMPLATES[i][0], *args)
    logger.remove(sink)


WRITERS = (write_python_json_logger, write_structlog, write_loguru)


# --- scoring ---------------------------------------------------------------------------------


def grouping_accuracy(truth: Sequence[Hashable], found: Sequence[Hashable]) -> float:
    """Share of messages whose found group is exactly their true group (as a set of messages)."""
    true_size = Counter(truth)
    by_found: dict[Hashable, Counter[Hashable]] = defaultdict(Counter)
    for t, f in zip(truth, found, strict=True):
        by_found[f][t] += 1
    correct = 0
    for labels in by_found.values():
        if len(labels) == 1:
            ((label, n),) = labels.items()
            if n == true_size[label]:
                correct += n
    return correct / len(truth) if truth else 1.0


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    options = parser.parse_args(argv)

    import duckdb  # noqa: F401  (fail early if the venv lacks it)

    from logpipe.enrich.templates import message_key
    from logpipe.read.archive_sql import connect
    from logpipe.read.mine import archive_rows
    from logpipe.read.patterns import PatternMiner, Window
    from logpipe.read.timeexpr import utc_now

    rnd = random.Random(options.seed)
    items = draw(rnd, options.messages)
    with tempfile.TemporaryDirectory(prefix="patterns-bench-") as tmp:
        work = Path(tmp)
        logs = []
        for k, writer in enumerate(WRITERS):
            path = work / f"{writer.__name__.removeprefix('write_')}.log"
            writer(path, items[k :: len(WRITERS)])
            logs.append(str(path))
        archive = work / "archive"
        ship = subprocess.run(
            [sys.executable, "-m", "logpipe", "ship", "--once", *logs, "--archive", str(archive), "--no-progress"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if ship.returncode != 0:
            raise SystemExit(f"logpipe ship failed: {ship.stderr}")

        con = connect(archive)
        rows = con.sql(
            "SELECT ts, message, message_key, json_extract_string(attrs, '$.tpl') AS tpl FROM logs "
            "ORDER BY ts, event_id"
        ).fetchall()
        con.close()
        if len(rows) != options.messages:
            raise SystemExit(f"the archive holds {len(rows)} records, {options.messages} were logged")
        labels = [int(r[3]) for r in rows]

        miner = PatternMiner()
        started = time.perf_counter()
        ids = [miner.add(r[1], r[0]) for r in rows]
        mine_s = time.perf_counter() - started
        found = [miner.template_of(g) for g in ids]
        # Ingest stores message_key for WARNING and above only; the same native mask gives it for all.
        keys = [r[2] if r[2] is not None else message_key(r[1] or "") for r in rows]

        # The CLI reads the same rows in the same order: its template count must agree.
        now = utc_now()
        streamed = PatternMiner(window=Window(min(r[0] for r in rows), now))
        for ts, message in archive_rows(archive, min(r[0] for r in rows), now):
            streamed.add(message, ts)
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "logpipe",
                "patterns",
                "--since",
                "1d",
                "--limit",
                "0",
                "--format",
                "json",
                "--archive",
                str(archive),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if cli.returncode != 0:
            raise SystemExit(f"logpipe patterns failed: {cli.stderr}")
        cli_patterns = json.loads(cli.stdout)

    figures = {
        "messages": len(rows),
        "true_templates": len(set(labels)),
        "miner": {
            "grouping_accuracy": round(grouping_accuracy(labels, found), 4),
            "templates": len(set(found)),
            "messages_per_s": round(len(rows) / mine_s),
        },
        "message_key": {"grouping_accuracy": round(grouping_accuracy(labels, keys), 4), "templates": len(set(keys))},
        "settings": _grid(rows, labels),
        "cli_templates": len(cli_patterns),
        "cli_total": sum(p["count"] for p in cli_patterns),
        "miner_not_exact": sorted(_wrong(labels, found)),
    }
    if len(streamed.patterns()) != len(cli_patterns):
        raise SystemExit("the CLI and the in-process miner disagree")
    if options.json:
        print(json.dumps(figures))
    else:
        print(
            f"{figures['messages']:,} messages from {figures['true_templates']} templates "
            f"(python-json-logger, structlog, loguru; shipped with logpipe ship --once)"
        )
        for name in ("miner", "message_key"):
            f = figures[name]
            print(f"  {name:<12} grouping accuracy {f['grouping_accuracy']:.4f}, {f['templates']} templates found")
        print(f"  miner speed  {figures['miner']['messages_per_s']:,} messages/s (one core, pure Python)")
        print(
            "  other settings (depth, similarity: accuracy, templates): "
            + "; ".join(f"{d}, {st}: {a:.4f}, {n}" for d, st, a, n in figures["settings"])
        )
        print(f"  logpipe patterns --limit 0: {figures['cli_templates']} templates, {figures['cli_total']:,} records")
        wrong = figures["miner_not_exact"]
        if wrong:
            print("  templates the miner does not group exactly:")
            for text in wrong:
                print(f"    {text}")
    return figures


def _grid(rows: Sequence[tuple[Any, ...]], labels: Sequence[int]) -> list[tuple[int, float, float, int]]:
    """The miner's accuracy at other tree depths and similarity thresholds (the default is one)."""
    from logpipe.read.patterns import PatternMiner

    out = []
    for depth in (1, 2, 3):
        for threshold in (0.4, 0.5, 0.6, 0.7):
            miner = PatternMiner(depth=depth, similarity=threshold)
            found = [miner.template_of(g) for g in [miner.add(r[1], r[0]) for r in rows]]
            out.append((depth, threshold, round(grouping_accuracy(labels, found), 4), len(set(found))))
    return out


def _wrong(truth: Sequence[int], found: Sequence[str]) -> list[str]:
    """The true templates whose messages the miner did not put in one group of their own."""
    groups_of: dict[int, set[str]] = defaultdict(set)
    labels_of: dict[str, set[int]] = defaultdict(set)
    for t, f in zip(truth, found, strict=True):
        groups_of[t].add(f)
        labels_of[f].add(t)
    out = []
    for t, groups in groups_of.items():
        if len(groups) != 1 or len(labels_of[next(iter(groups))]) != 1:
            out.append(f"{TEMPLATES[t][0]!r} -> {len(groups)} group(s): {sorted(groups)[:3]}")
    return out


if __name__ == "__main__":
    main()
