"""What the sink contract suite needs besides the sinks: records, a TCP proxy to cut a server
off, a Loki front that refuses what Loki refuses, and readers of each real store that do not
use the code under test."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.archive import whole_event_ids
from tests.support.kafka import create_topic
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- the TCP proxy


class Proxy:
    """A local TCP proxy to a real server, which a test stops (the server is unreachable: new
    connections are refused and open ones are cut) and starts again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            cut, self._open = self._open, set()
        for sock in cut:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# --------------------------------------------------------------------------- Loki's refusals


def loki_too_old(stream: dict[str, str], ts_ns: int, oldest_ns: int) -> str:
    """Loki's 400 line for an entry older than its window (the stream named as Loki prints it)."""

    def stamp(ns: int) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))

    labels = ", ".join(f'{k}="{v}"' for k, v in sorted(stream.items()))
    return (
        f"entry for stream '{{{labels}}}' has timestamp too old: {stamp(ts_ns)}, "
        f"oldest acceptable timestamp is: {stamp(oldest_ns)}"
    )


class LokiFront:
    """In front of VictoriaLogs, which keeps entries of any age: refuses, as Loki does (HTTP 400,
    one line per entry naming its stream and time), entries older than `window_s`, and forwards
    the rest of the push (JSON encoding) to VictoriaLogs unchanged."""

    def __init__(self, upstream: str, path: str, window_s: float = 7 * 86400) -> None:
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(200, b"ready")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                status, text = front.push(body)
                self._answer(status, text.encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.upstream, self.path, self.window_s = upstream, path, window_s
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def push(self, body: dict[str, Any]) -> tuple[int, str]:
        oldest = time.time_ns() - int(self.window_s * 1e9)
        kept, refused = [], []
        for stream in body["streams"]:
            fresh = [v for v in stream["values"] if int(v[0]) >= oldest]
            refused += [
                loki_too_old(stream["stream"], int(v[0]), oldest) for v in stream["values"] if int(v[0]) < oldest
            ]
            if fresh:
                kept.append({**stream, "values": fresh})
        if kept:
            request = urllib.request.Request(
                self.upstream + self.path,
                data=json.dumps({"streams": kept}).encode(),
                headers={"content-type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                status = answer.status
        else:
            status = 204
        return (400, "\n".join(refused)) if refused else (status, "")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- stores, read back


def es_ids(url: str, prefix: str) -> list[str]:
    """Every document `_id` under an index prefix (after a refresh), with the standard library."""

    def call(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.loads(answer.read() or b"null")

    call("POST", f"/{prefix}*/_refresh")
    found = call("POST", f"/{prefix}*/_search", {"size": 10000, "_source": ["event_id"]})
    hits = found["hits"]["hits"]
    assert all(h["_id"] == h["_source"]["event_id"] for h in hits)  # _id is the event id: re-sends overwrite
    return [h["_id"] for h in hits]


def es_wipe(url: str, prefix: str) -> None:
    def call(method: str, path: str) -> Any:
        request = urllib.request.Request(url + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError:
            return None

    for index in call("GET", f"/_cat/indices/{prefix}*?format=json") or []:
        call("DELETE", f"/{index['index']}")
    call("DELETE", f"/_index_template/{prefix}template")


def vl_ids(url: str, service: str) -> list[str]:
    """Event ids of every entry of one `service` stream in VictoriaLogs (its own query API)."""
    data = urllib.parse.urlencode({"query": f'{{service="{service}"}}', "limit": "100000"}).encode()
    with urllib.request.urlopen(f"{url}/select/logsql/query", data=data, timeout=60) as answer:
        rows = [json.loads(line) for line in answer.read().decode().splitlines() if line.strip()]
    return [json.loads(row["_msg"])["event_id"] for row in rows]


def kafka_ids(bootstrap: str, topic: str, idle_ms: int = 2000) -> list[str]:
    """Event ids of every message of a topic, read with a plain consumer from the beginning."""
    from aiokafka import AIOKafkaConsumer

    async def read() -> list[str]:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        out: list[str] = []
        try:
            while fetched := await consumer.getmany(timeout_ms=idle_ms):
                for messages in fetched.values():
                    out.extend(json.loads(m.value)["event_id"] for m in messages)
            return out
        finally:
            await consumer.stop()

    return asyncio.run(read())


def kafka_topic(bootstrap: str) -> str:
    return create_topic(bootstrap, 2, prefix="contract")


def archive_ids(archive: Path) -> list[str]:
    import pyarrow.parquet as pq

    tables = [pq.read_table(part, columns=["event_id", "offset"]) for part in sorted(archive.glob("logs/**/*.parquet"))]
    return [
        e
        for t in tables
        for e in whole_event_ids(t.column("event_id").to_pylist(), t.column("offset").to_pylist())
        if e is not None
    ]


def archive_dead_letters(archive: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return [
        row
        for part in sorted(archive.glob("dead_letters/**/*.parquet"))
        for row in pq.read_table(part, columns=["offset", "reason", "detail", "raw"]).to_pylist()
    ]
