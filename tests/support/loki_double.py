"""LokiDouble: a small test double of Loki's HTTP API, written from Loki's documented API.

It is NOT Loki (Loki is AGPL and does not run here); it stands in for the parts of Loki's API
that VictoriaLogs does not serve, so that the push path's answers (429, 5xx, 400 reasons) and,
for retention, the query and delete APIs can be tested:

    POST   /loki/api/v1/push          protobuf (snappy block) or JSON (optionally gzip); 204
    GET    /loki/api/v1/query_range   `{a="b", c="d"}` equality selectors only; streams result
    POST   /loki/api/v1/delete        query, start, end (unix s) -> 204, a delete request
    GET    /loki/api/v1/delete        the delete requests
    DELETE /loki/api/v1/delete        request_id -> cancels it (204)

Like Loki it validates each stream (label names, a label value length limit, at least one label)
and each entry (older than `reject_before_ns` is out of the window), keeps what is valid and
answers 400 with one reason per refused stream or entry. `script` holds answers to give before
the real one (e.g. `[429, 503]`). The protobuf decoder here is its own, independent of
logpipe's encoder, so a test that reads back what the double stored checks the encoder.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import cramjam

LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SELECTOR_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


@dataclass
class Entry:
    ts_ns: int
    line: str
    metadata: dict[str, str]


@dataclass
class PushSeen:
    """One push as the double received it."""

    headers: dict[str, str]
    content_type: str
    raw_bytes: int
    streams: list[tuple[dict[str, str], list[Entry]]]
    status: int


@dataclass
class LokiDouble:
    """State of the double; start it with `serve(port)`."""

    script: list[int] = field(default_factory=list)  # answers given before the real one
    reject_before_ns: int = 0
    max_label_value_len: int = 2048
    require_tenant: bool = False
    require_auth: str | None = None  # the exact Authorization header expected
    streams: dict[tuple[tuple[str, str], ...], list[Entry]] = field(default_factory=lambda: defaultdict(list))
    pushes: list[PushSeen] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---------------------------------------------------------------------------- push
    def push(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        content_type = headers.get("content-type", "")
        if self.require_auth is not None and headers.get("authorization") != self.require_auth:
            return 401, "unauthorized"
        if self.require_tenant and not headers.get("x-scope-orgid"):
            return 401, "no org id"
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if content_type.startswith("application/json"):
            streams = decode_json(body)
        else:
            streams = decode_protobuf(bytes(cramjam.snappy.decompress_raw(body)))
        with self.lock:
            if self.script:
                status = self.script.pop(0)
                self.pushes.append(PushSeen(headers, content_type, len(body), streams, status))
                return status, f"scripted answer {status}"
            reasons = self._store(streams)
            status = 400 if reasons else 204
            self.pushes.append(PushSeen(headers, content_type, len(body), streams, status))
        return status, "\n".join(reasons)

    def _store(self, streams: list[tuple[dict[str, str], list[Entry]]]) -> list[str]:
        reasons: list[str] = []
        for labels, entries in streams:
            text = labels_text(labels)
            if not labels:
                reasons.append("error at least one label pair is required per stream")
                continue
            bad = [n for n in labels if not LABEL_NAME.match(n)]
            if bad:
                reasons.append(f"error parsing labels {text}: invalid label name {bad[0]!r}")
                continue
            long = [n for n, v in labels.items() if len(v) > self.max_label_value_len]
            if long:
                reasons.append(f"stream '{text}' has label value too long: {labels[long[0]][:20]}")
                continue
            key = tuple(sorted(labels.items()))
            for entry in entries:
                if entry.ts_ns < self.reject_before_ns:
                    reasons.append(
                        f"entry for stream '{text}' has timestamp too old: {rfc3339(entry.ts_ns)}, "
                        f"oldest acceptable timestamp is: {rfc3339(self.reject_before_ns)}"
                    )
                    continue
                self.streams[key].append(entry)
        return reasons

    # --------------------------------------------------------------------------- query
    def query_range(self, query: str, start_ns: int, end_ns: int, limit: int, direction: str) -> dict[str, Any]:
        wanted = dict(SELECTOR_PAIR.findall(query))
        result = []
        with self.lock:
            for key, entries in self.streams.items():
                labels = dict(key)
                if any(labels.get(k) != v for k, v in wanted.items()):
                    continue
                values = [[str(e.ts_ns), e.line] for e in entries if start_ns <= e.ts_ns < end_ns]
                values.sort(key=lambda v: int(v[0]), reverse=direction != "forward")
                if values:
                    result.append({"stream": labels, "values": values[:limit]})
        return {"status": "success", "data": {"resultType": "streams", "result": result}}

    def all_entries(self) -> list[tuple[dict[str, str], Entry]]:
        with self.lock:
            return [(dict(key), e) for key, entries in self.streams.items() for e in entries]

    # ------------------------------------------------------------------------ serving
    def serve(self, port: int = 0) -> DoubleServer:
        return DoubleServer(self, port)


class DoubleServer:
    """The double on 127.0.0.1 in a background thread; `stop()` ends it."""

    def __init__(self, double: LokiDouble, port: int) -> None:
        self.double = double
        handler = type("Handler", (_Handler,), {"double": double})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    double: LokiDouble
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, body: Any) -> None:
        self._answer(200, json.dumps(body).encode(), "application/json")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/loki/api/v1/push":
            status, text = self.double.push({k.lower(): v for k, v in self.headers.items()}, body)
            self._answer(status, text.encode())
        elif url.path == "/loki/api/v1/delete":
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            with self.double.lock:
                request_id = f"d{len(self.double.deletes) + 1}"
                self.double.deletes.append(
                    {
                        "request_id": request_id,
                        "query": q.get("query", ""),
                        "start_time": float(q.get("start", 0)),
                        "end_time": float(q.get("end", 0)),
                        "status": "received",
                    }
                )
            self._answer(204)
        else:
            self._answer(404, b"404 page not found")

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/loki/api/v1/query_range":
            self._json(
                self.double.query_range(
                    q.get("query", "{}"),
                    int(q.get("start", 0)),
                    int(q.get("end", 2**62)),
                    int(q.get("limit", 100)),
                    q.get("direction", "backward"),
                )
            )
        elif url.path == "/loki/api/v1/delete":
            with self.double.lock:
                self._json(list(self.double.deletes))
        elif url.path == "/ready":
            self._answer(200, b"ready")
        else:
            self._answer(404, b"404 page not found")

    def do_DELETE(self) -> None:
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/loki/api/v1/delete":
            with self.double.lock:
                for request in self.double.deletes:
                    if request["request_id"] == q.get("request_id"):
                        request["status"] = "canceled"
            self._answer(204)
        else:
            self._answer(404, b"404 page not found")


# ------------------------------------------------------------------------------- decoding


def labels_text(labels: dict[str, str]) -> str:
    """Labels as Loki prints them: `{a="1", b="2"}`, names sorted."""
    inner = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def parse_labels(text: str) -> dict[str, str]:
    """`{a="1", b="2"}` -> dict (what a protobuf stream carries as its labels string)."""
    return {k: json.loads(f'"{v}"') for k, v in SELECTOR_PAIR.findall(text)}


def rfc3339(ts_ns: int) -> str:
    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_json(body: bytes) -> list[tuple[dict[str, str], list[Entry]]]:
    doc = json.loads(body)
    out = []
    for stream in doc["streams"]:
        entries = [Entry(int(v[0]), v[1], dict(v[2]) if len(v) > 2 else {}) for v in stream["values"]]
        out.append((dict(stream["stream"]), entries))
    return out


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """Protobuf wire format: (field number, varint or bytes) pairs."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            size, pos = _varint(data, pos)
            out.append((number, data[pos : pos + size]))
            pos += size
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def decode_protobuf(data: bytes) -> list[tuple[dict[str, str], list[Entry]]]:
    out = []
    for number, stream in _fields(data):
        assert number == 1 and isinstance(stream, bytes)
        labels: dict[str, str] = {}
        entries: list[Entry] = []
        for n, value in _fields(stream):
            if n == 1:
                assert isinstance(value, bytes)
                labels = parse_labels(value.decode())
            elif n == 2:
                assert isinstance(value, bytes)
                entries.append(_entry(value))
        out.append((labels, entries))
    return out


def _entry(data: bytes) -> Entry:
    seconds = nanos = 0
    line = ""
    metadata: dict[str, str] = {}
    for n, value in _fields(data):
        assert isinstance(value, bytes)
        if n == 1:
            for m, v in _fields(value):
                assert isinstance(v, int)
                seconds, nanos = (v, nanos) if m == 1 else (seconds, v)
        elif n == 2:
            line = value.decode()
        elif n == 3:
            pair = {m: v for m, v in _fields(value)}
            name, val = pair.get(1, b""), pair.get(2, b"")
            assert isinstance(name, bytes) and isinstance(val, bytes)
            metadata[name.decode()] = val.decode()
    return Entry(seconds * 1_000_000_000 + nanos, line, metadata)
