"""Log records a test writes and can recognise wherever they land (the `seq` each one carries)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def record(seq: int, *, level: str = "INFO", request: str | None = None, **extra: Any) -> dict[str, Any]:
    """A python-json-logger-shaped record whose message carries a unique sequence number."""
    rec: dict[str, Any] = {
        "timestamp": f"2026-11-2{seq % 3}T10:{seq // 60 % 60:02d}:{seq % 60:02d}.{seq % 1000:03d}+00:00",
        "level": level,
        "logger": "shop.web",
        "message": f"event seq={seq}",
        "seq": seq,
    }
    if request is not None:
        rec["request_id"] = request
    rec.update(extra)
    return rec


def write_records(path: Path, records: Iterable[dict[str, Any]], mode: str = "a") -> int:
    """Append (or write) one JSON line per record; the number of bytes written."""
    data = "".join(json.dumps(r) + "\n" for r in records)
    with open(path, mode, encoding="utf-8") as fh:
        fh.write(data)
    return len(data.encode())
