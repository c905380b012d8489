"""Indexing throughput of `logpipe ship --to es://…` beside a bare client bulk loop, same documents, same run.

    scripts/services run opensearch -- .venv/bin/python benchmarks/es_ingest.py [--lines 1000000] [--es URL]

Writes a python-json-logger-shaped log under benchmarks/.work/, then, against one engine:

1. logpipe: `logpipe ship --once FILE --no-archive --to ES` as its own process (parse, normalise,
   enrich, encode, gzip bulk with item-level checks), into one index.
2. bare loop: a Python process that reads the same file, `orjson.loads` each line and indexes it
   with the official client's `helpers.parallel_bulk` (2 threads, 2,000 documents a request),
   into another index. That is the least a program must do to index the same documents.

Both indices get one shard and no replica; each run ends with a refresh and a count that must
equal the line count. Prints docs/s for both and logpipe's share of the bare loop's rate.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

WORK = Path(__file__).resolve().parent / ".work"
ROOT = Path(__file__).resolve().parents[1]


def write_log(path: Path, lines: int, seed: int = 3) -> None:
    """~300 B lines: requests of users over a day, first line of each request carries the context."""
    rng = random.Random(seed)
    start = 1_790_000_000.0
    with path.open("w", encoding="utf-8") as fh:
        n = 0
        while n < lines:
            request = f"{rng.getrandbits(64):016x}"
            user = f"user-{rng.randint(1, 5000)}"
            for part in range(rng.randint(1, 4)):
                if n >= lines:
                    break
                ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + n * 0.05)) + f".{n % 1000:03d}Z"
                obj: dict[str, Any] = {
                    "timestamp": ts,
                    "level": rng.choice(("INFO",) * 8 + ("DEBUG", "WARNING", "ERROR")),
                    "logger": "shop.web",
                    "service": rng.choice(("shop", "auth", "search")),
                    "message": f"handled step {part}",
                    "request_id": request,
                }
                if part == 0:
                    obj.update(user_id=user, session_id=f"sess-{user}")
                if rng.random() < 0.5:
                    obj.update(
                        method="GET",
                        path=f"/api/orders/{rng.randint(1, 99999)}",
                        status=200,
                        duration_ms=round(rng.lognormvariate(4, 0.7), 3),
                    )
                fh.write(json.dumps(obj) + "\n")
                n += 1


def http(method: str, url: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"null")


def reset(url: str, index: str) -> None:
    http("DELETE", f"{url}/{index}")
    http("PUT", f"{url}/{index}", {"settings": {"number_of_shards": 1, "number_of_replicas": 0}})


def indexed(url: str, index: str) -> int:
    http("POST", f"{url}/{index}/_refresh")
    return int(http("GET", f"{url}/{index}/_count")["count"])


BARE = textwrap.dedent(
    """
    import sys, orjson
    from opensearchpy import OpenSearch, helpers
    url, index, path = sys.argv[1:4]
    client = OpenSearch([url], http_compress=True, timeout=120, pool_maxsize=4)
    def actions():
        with open(path, "rb") as fh:
            for n, line in enumerate(fh):
                yield {"_index": index, "_id": str(n), "_source": orjson.loads(line)}
    for ok, item in helpers.parallel_bulk(client, actions(), thread_count=2, chunk_size=2000,
                                          max_chunk_bytes=8 << 20, raise_on_error=True):
        pass
    """
)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"{command[:4]} failed:\n{result.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--es", default="http://127.0.0.1:19200", help="engine URL (http://HOST:PORT)")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    log = WORK / f"es-ingest-{args.lines}.log"
    if not log.exists():
        write_log(log, args.lines)
    host = args.es.split("://", 1)[1]
    size_mb = log.stat().st_size / 1e6

    reset(args.es, "bench-logpipe")
    state = WORK / "es-ingest-state"
    subprocess.run(["rm", "-rf", str(state), str(WORK / "es-ingest-archive")], check=True)
    ship = [
        sys.executable,
        "-m",
        "logpipe",
        "ship",
        "--once",
        str(log),
        "--no-archive",
        "--no-progress",
        "--archive",
        str(WORK / "es-ingest-archive"),
        "--state-dir",
        str(state),
        "--to",
        f"es://{host}?index=bench-logpipe&replicas=0",
    ]
    logpipe_s = timed(ship)
    logpipe_docs = indexed(args.es, "bench-logpipe")

    reset(args.es, "bench-bare")
    bare_s = timed([sys.executable, "-c", BARE, args.es, "bench-bare", str(log)])
    bare_docs = indexed(args.es, "bench-bare")

    for name, docs in (("logpipe", logpipe_docs), ("bare", bare_docs)):
        if docs != args.lines:
            sys.exit(f"{name} indexed {docs:,} of {args.lines:,} documents")
    lp_rate, bare_rate = args.lines / logpipe_s, args.lines / bare_s
    print(f"{args.lines:,} lines ({size_mb:,.0f} MB) into {args.es}")
    print(f"  logpipe ship --to es:  {logpipe_s:7.1f} s  {lp_rate:10,.0f} docs/s")
    print(f"  bare parallel_bulk:    {bare_s:7.1f} s  {bare_rate:10,.0f} docs/s")
    print(f"  logpipe / bare:        {lp_rate / bare_rate:7.0%}   (target >= 80%)")
    for index in ("bench-logpipe", "bench-bare"):
        http("DELETE", f"{args.es}/{index}")


if __name__ == "__main__":
    main()
