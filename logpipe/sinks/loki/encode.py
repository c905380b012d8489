"""Canonical records -> Loki streams -> push request bodies. Pure functions, no I/O.

The columnar part (line text, label and metadata values, stream keys, time order) is done by
polars in one pass; only the final protobuf framing walks entries in Python, because varints do
not vectorise. Requests are cut so that each stays under a byte and an entry bound, and entries
are in time order within each stream, which Loki needs (older Loki refuses out-of-order entries;
newer Loki accepts them only within a window).

Label values of `level` are lower case (`error`, `warning`, `info`, `debug`, …), the convention
of Grafana and of Loki's `retention_stream` selectors (`{level="debug"}`). `level_label` is the
one place that says so; retention uses it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from logpipe.schema import COLUMN_NAMES
from logpipe.sinks.loki.config import COLUMN_FIELDS, label_name

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

    from logpipe.sinks.loki.config import LokiConfig

# Columns every prepared frame has besides one column per label/metadata field (named by label name).
TS: Final = "_ts_ns"
LINE: Final = "_line"
OFFSET: Final = "_offset"
ORIGIN: Final = "_origin"
STREAM: Final = "_stream"
ENTRY_OVERHEAD: Final = 32  # bytes of framing per entry (JSON: `["<19 digits>","",{}],`)
_RFC3339_RE: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_STREAM_IN_REASON_RE: Final = re.compile(r"(\{[^{}]*\})")


def level_label(level: str) -> str:
    """The `level` label value of a canonical level: lower case (`WARNING` -> `warning`)."""
    return level.lower()


def field_expr(name: str) -> pl.Expr:
    """The value of a label/metadata field: a canonical column, or a top-level key of `attrs`."""
    import polars as pl

    key = label_name(name)
    if name == "level":
        return pl.col("level").cast(pl.Utf8).str.to_lowercase().alias(key)
    if name in COLUMN_FIELDS:
        return pl.col(name).cast(pl.Utf8).alias(key)
    # `attrs` is JSON text; a key with dots or quotes cannot be a label name anyway.
    return pl.col("attrs").str.json_path_match(f"$.{key}").alias(key)


def line_expr(mode: str) -> pl.Expr:
    """The log line: the record as JSON (nulls left out, `attrs` nested as an object), or the message."""
    import polars as pl

    if mode == "message":
        return pl.col("message").fill_null("").alias(LINE)
    ts = pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("ts")
    doc = pl.struct([ts, *(pl.col(c) for c in _DOC_COLUMNS)]).struct.json_encode()
    # No unescaped `,"` can occur inside a JSON string, so this removes only null members.
    doc = doc.str.replace_all(r',"[a-z_]+":null', "")
    attrs = pl.col("attrs")
    has_attrs = attrs.is_not_null() & (attrs != "{}")
    with_attrs = pl.concat_str([doc.str.strip_suffix("}"), pl.lit(',"attrs":'), attrs, pl.lit("}")])
    return pl.when(has_attrs).then(with_attrs).otherwise(doc).alias(LINE)


# The members of a JSON line after `ts` (formatted first): every column in schema order but the
# derived `message_key`, and `attrs`, which `line_expr` nests as an object at the end.
_DOC_COLUMNS: Final = tuple(c for c in COLUMN_NAMES if c not in ("ts", "message_key", "attrs"))


def prepare(records: pa.Table, config: LokiConfig, origin: int = 0) -> pl.DataFrame:
    """One batch as a frame: time in ns, line, offset, origin, and each label/metadata field."""
    import polars as pl

    frame = pl.from_arrow(records)
    assert isinstance(frame, pl.DataFrame)
    fields = [*config.labels, *config.metadata]
    return frame.select(
        (pl.col("ts").dt.epoch("us") * 1000).alias(TS),
        line_expr(config.line),
        pl.col("offset").alias(OFFSET),
        pl.lit(origin, dtype=pl.Int32).alias(ORIGIN),
        *(field_expr(name) for name in fields),
    )


def frame_bytes(frame: pl.DataFrame) -> int:
    """What a prepared frame holds in memory (for backpressure)."""
    return int(frame.estimated_size())


def stream_key_expr(labels: Sequence[str]) -> pl.Expr:
    """`{env="prod", level="error", service="api"}`: names sorted, empty values left out.

    The same text Loki prints when it names a stream in an error, so a 400's reason can be
    matched back to the entries it is about.
    """
    import polars as pl

    parts: list[pl.Expr] = []
    for name in sorted(labels):
        value = pl.col(name).str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
        value = value.str.replace_all("\n", "\\n", literal=True)
        parts.append(
            pl.when(pl.col(name).is_null() | (pl.col(name) == ""))
            .then(None)
            .otherwise(pl.concat_str([pl.lit(f'{name}="'), value, pl.lit('"')]))
        )
    inner = pl.concat_list(parts).list.drop_nulls().list.join(", ") if parts else pl.lit("")
    return pl.concat_str([pl.lit("{"), inner, pl.lit("}")]).alias(STREAM)


@dataclass(slots=True)
class Stream:
    """Entries of one stream in one request, in time order; `rows` index the flush's frame."""

    key: str
    labels: dict[str, str]
    ts: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    metadata: list[list[tuple[str, str]]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)


def plan_requests(
    frame: pl.DataFrame, labels: Sequence[str], metadata: Sequence[str], max_bytes: int, max_entries: int
) -> list[list[Stream]]:
    """Group into streams, sort each by time, and cut into requests under both bounds.

    A request holds at most `max_entries` entries and about `max_bytes` (uncompressed lines and
    metadata); a single entry larger than the bound goes alone. Requests are to be sent in order,
    so a stream cut across two requests still arrives in time order.
    """
    import polars as pl

    if frame.height == 0:
        return []
    keyed = frame.with_row_index("_row").with_columns(stream_key_expr(labels))
    keyed = keyed.sort([STREAM, TS, "_row"])
    names = [label_name(n) for n in labels]
    meta_names = [label_name(n) for n in metadata]
    columns = {name: keyed.get_column(name).to_list() for name in (*names, *meta_names)}
    keys = keyed.get_column(STREAM).to_list()
    ts = keyed.get_column(TS).to_list()
    lines = keyed.get_column(LINE).to_list()
    rows = keyed.get_column("_row").to_list()
    # JSON escapes quotes, backslashes and newlines of the line: count them, so the bound holds.
    escapes = pl.col(LINE).str.count_matches(r'["\\\n]')
    sizes = keyed.select(pl.col(LINE).str.len_bytes() + escapes).to_series().to_list()
    requests: list[list[Stream]] = []
    current: list[Stream] = []
    count = size = 0
    stream: Stream | None = None
    for i, key in enumerate(keys):
        meta = [(n, v) for n in meta_names if (v := columns[n][i]) is not None and v != ""]
        entry_size = sizes[i] + ENTRY_OVERHEAD + sum(len(n) + len(v) + 6 for n, v in meta)
        if stream is None or stream.key != key:
            entry_size += len(key) + 32  # the stream's labels and framing
        if current and (count >= max_entries or size + entry_size > max_bytes):
            if stream is not None and stream.key == key:
                entry_size += len(key) + 32  # the stream starts again in the next request
            requests.append(current)
            current, count, size, stream = [], 0, 0, None
        if stream is None or stream.key != key:
            stream = Stream(key, {n: v for n in names if (v := columns[n][i]) is not None and v != ""})
            current.append(stream)
        stream.ts.append(ts[i])
        stream.lines.append(lines[i])
        stream.metadata.append(meta)
        stream.rows.append(rows[i])
        count += 1
        size += entry_size
    if current:
        requests.append(current)
    return requests


# ------------------------------------------------------------------------------------ protobuf
# logproto.PushRequest per Loki's push.proto: PushRequest{1: repeated StreamAdapter};
# StreamAdapter{1: labels string, 2: repeated EntryAdapter}; EntryAdapter{1: Timestamp,
# 2: line, 3: repeated LabelPairAdapter structuredMetadata}; LabelPairAdapter{1: name,
# 2: value}; google.protobuf.Timestamp{1: int64 seconds, 2: int32 nanos}.


def varint(value: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes((tag,)) + varint(len(payload)) + payload


def _entry(ts_ns: int, line: str, metadata: Iterable[tuple[str, str]]) -> bytes:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    stamp = b"\x08" + varint(seconds) + (b"\x10" + varint(nanos) if nanos else b"")
    body = _field(0x0A, stamp) + _field(0x12, line.encode())
    for name, value in metadata:
        body += _field(0x1A, _field(0x0A, name.encode()) + _field(0x12, value.encode()))
    return body


def encode_protobuf(streams: Sequence[Stream]) -> bytes:
    """A `logproto.PushRequest`, uncompressed (`snappy` wraps it for the wire)."""
    out = bytearray()
    for stream in streams:
        body = bytearray(_field(0x0A, stream.key.encode()))
        for ts_ns, line, meta in zip(stream.ts, stream.lines, stream.metadata, strict=True):
            body += _field(0x12, _entry(ts_ns, line, meta))
        out += _field(0x0A, bytes(body))
    return bytes(out)


def snappy(data: bytes) -> bytes:
    """Snappy block format (not framed), which Loki expects on protobuf pushes."""
    from logpipe.sinks.loki.deps import cramjam

    return bytes(cramjam().snappy.compress_raw(data))


def encode_json(streams: Sequence[Stream]) -> bytes:
    """`{"streams":[{"stream":{…},"values":[["<ns>","<line>",{metadata}],…]}]}`."""
    import orjson

    body: dict[str, Any] = {
        "streams": [
            {
                "stream": stream.labels,
                "values": [
                    [str(t), line, dict(meta)] if meta else [str(t), line]
                    for t, line, meta in zip(stream.ts, stream.lines, stream.metadata, strict=True)
                ],
            }
            for stream in streams
        ]
    }
    return bytes(orjson.dumps(body))


def encode_body(streams: Sequence[Stream], encoding: str, gzip: bool) -> bytes:
    """The HTTP body of one push request in the configured encoding."""
    if encoding == "protobuf":
        return snappy(encode_protobuf(streams))
    body = encode_json(streams)
    if gzip:
        import gzip as gz

        return gz.compress(body, compresslevel=1)
    return body


# ------------------------------------------------------------------------------- 400 reasons


def refused_rows(reason: str, streams: Sequence[Stream]) -> list[int]:
    """Rows of a request that Loki's 400 `reason` is about.

    Loki accepts the valid streams and entries of a request and names the others, one per line,
    with the stream's labels (`{level="info", service="api"}`) and, for entries out of its time
    window, the entry's time (RFC 3339, seconds). Those entries are refused; when the reason
    names no stream of the request, every entry is (the whole request was refused).
    """
    named: dict[str, list[str]] = {}
    for text in reason.splitlines():
        for match in _STREAM_IN_REASON_RE.finditer(text):
            named.setdefault(match.group(1), []).append(text)
    refused: list[int] = []
    matched_any = False
    for stream in streams:
        texts = named.get(stream.key)
        if texts is None:
            continue
        matched_any = True
        stamps = {m.group(0) for text in texts for m in _RFC3339_RE.finditer(text)}
        rows = [row for row, ts in zip(stream.rows, stream.ts, strict=True) if _second(ts) in stamps]
        refused.extend(rows or stream.rows)  # no time of ours named: the whole stream was refused
    if not matched_any:
        return [row for stream in streams for row in stream.rows]
    return refused


def _second(ts_ns: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts_ns // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
