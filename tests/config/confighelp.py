"""Helpers for the config tests: config files, records, and independent archive reads (the real
CLI is tests/support's, re-exported for the config tests)."""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.archive import archive_rows
from tests.support.cli import LOGPIPE, ROOT
from tests.support.cli import run_cli as logpipe
from tests.support.services import url
from tests.support.wait import poll

__all__ = [
    "LEVELS",
    "LOGPIPE",
    "ROOT",
    "append",
    "archived",
    "logpipe",
    "loki_url",
    "record",
    "vl_rows",
    "write_config",
]

LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
VL_PUSH_PATH = "/insert/loki/api/v1/push?disable_message_parsing=1"  # keep the line verbatim in _msg


def loki_url(victorialogs: str) -> str:
    """A `loki://` sink URL that pushes to VictoriaLogs' Loki endpoint."""
    query = urllib.parse.urlencode({"path": VL_PUSH_PATH, "encoding": "json"})
    return f"loki://{urllib.parse.urlsplit(victorialogs).netloc}?{query}"


def write_config(path: Path, config: Mapping[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False), encoding="utf-8")
    return path


def record(seq: int, level: str, **extra: Any) -> dict[str, Any]:
    """A python-json-logger record; `seq` makes it recognisable wherever it lands."""
    return {
        "timestamp": f"2026-03-0{seq % 5 + 1}T10:00:{seq % 60:02d}.{seq % 1000:03d}+00:00",
        "levelname": level,
        "name": "shop",
        "message": f"event seq={seq}",
        "seq": seq,
        **extra,
    }


def append(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in records))
        fh.flush()
        os.fsync(fh.fileno())


def archived(archive: Path) -> list[dict[str, Any]]:
    """Every archived record as (seq, level, service, attrs), read with DuckDB from the Parquet files."""
    out = []
    for row in archive_rows(archive, ["level", "service", "attrs"]):
        extra = json.loads(row["attrs"])
        out.append({"seq": extra.pop("seq"), "level": row["level"], "service": row["service"], "attrs": extra})
    return out


def vl_rows(env: str, expected: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
    """Entries VictoriaLogs holds for this run, by its own query API (polls until `expected` are visible)."""

    def fetch() -> list[dict[str, Any]]:
        data = urllib.parse.urlencode({"query": f'{{env="{env}"}}', "limit": "100000"}).encode()
        with urllib.request.urlopen(f"{url('victorialogs')}/select/logsql/query", data=data, timeout=60) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]

    return poll(fetch, lambda rows: len(rows) >= expected, timeout_s, every_s=0.5)
