"""Helpers shared by the parse/normalise/enrich tests: run bytes through the real Transformer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from logpipe.enrich.context import ContextLimits, RequestContext
from logpipe.model import Batch, RawBatch
from logpipe.parse.detect import detect, sample_lines
from logpipe.parse.profiles import FieldOverrides
from logpipe.pipeline import SourceSpec, Transformer

READ_TIME_US = 1_700_000_000_123_456
SOURCE_ID = "0123456789abcdef0123456789abcdef"


def transformer(
    labels: Mapping[str, str] | None = None,
    fields: FieldOverrides | None = None,
    limits: ContextLimits | None = None,
) -> Transformer:
    """A Transformer with no I/O options that matter; `limits` replaces the context map's bounds."""
    source = SourceSpec((), labels=dict(labels or {"host": "test-host"}), fields=(fields or FieldOverrides()).paths)
    t = Transformer([source])
    if limits is not None:
        t.context = RequestContext(limits)
    return t


def raw_batch(
    data: bytes,
    fmt: str = "python-json-logger",
    *,
    start: int = 0,
    read_time_us: int = READ_TIME_US,
    unterminated: bool = False,
    path: str = "/var/log/app.log",
) -> RawBatch:
    return RawBatch(
        SOURCE_ID,
        path,
        start,
        start + len(data),
        data,
        read_time_us,
        fmt,
        unterminated=unterminated,
    )


def run(data: bytes, fmt: str = "python-json-logger", t: Transformer | None = None, **kw: Any) -> Batch:
    """Transform `data` as one batch (with a fresh Transformer unless one is given)."""
    own = t is None
    t = t or transformer()
    try:
        return t(raw_batch(data, fmt, **kw))
    finally:
        if own:
            t.close()


def rows(batch: Batch) -> list[dict[str, Any]]:
    """Records as dicts in input order (normalise returns them unordered)."""
    return sorted(batch.records.to_pylist(), key=lambda r: r["offset"])


def attrs(row: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(row["attrs"]))


def lines(*objs: Any) -> bytes:
    """Newline-terminated JSON lines from Python values (str values are written verbatim)."""
    out = [o.encode() if isinstance(o, str) else o if isinstance(o, bytes) else json.dumps(o).encode() for o in objs]
    return b"".join(line + b"\n" for line in out)


def detect_file(path: Path) -> str:
    """The profile name detection picks from the head of a file, as the file source does."""
    return detect(sample_lines(path.read_bytes()[:65536])).name


def one(data: bytes | dict[str, Any], fmt: str = "python-json-logger", **kw: Any) -> dict[str, Any]:
    """The single record one line becomes."""
    if isinstance(data, dict):
        data = lines(data)
    got = rows(run(data, fmt, **kw))
    assert len(got) == 1, got
    return got[0]
