"""Source positions, committed only after every sink holds the data they cover.

One JSON file, versioned, written to a temp name, fsynced, renamed, and the folder fsynced, so a
crash leaves either the old or the new file, never a torn one. Keyed by source identity (the
file fingerprint), not by path, so rotation keeps positions.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from logpipe.errors import ArchiveError

VERSION: Final = 1
FILENAME: Final = "checkpoints.json"


@dataclass(slots=True)
class Checkpoint:
    offset: int
    path: str
    dev: int = 0
    ino: int = 0
    updated: float = 0.0


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash at any point leaves the old or the new content."""
    tmp = path.with_name(f".tmp-{path.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    except OSError as exc:
        # os.write names no file: name the one that could not be written (a full disk).
        raise OSError(exc.errno, exc.strerror, str(tmp)) from exc
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a disk filling up): a short file must never be renamed
    into place, so write the rest or fail."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[written:]


class CheckpointStore:
    """Positions of every source the agent has read, by source id."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        state_dir.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, Checkpoint] = self._load()

    def _load(self) -> dict[str, Checkpoint]:
        if not self.path.exists():
            return {}
        try:
            doc: dict[str, Any] = orjson.loads(self.path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ArchiveError(f"checkpoint file {self.path} is not valid JSON: {exc}") from exc
        if doc.get("version") != VERSION:
            raise ArchiveError(
                f"checkpoint file {self.path} has version {doc.get('version')!r}; this logpipe reads {VERSION}"
            )
        return {sid: Checkpoint(**entry) for sid, entry in doc.get("sources", {}).items()}

    def get(self, source_id: str) -> Checkpoint | None:
        return self._entries.get(source_id)

    def items(self) -> list[tuple[str, Checkpoint]]:
        return list(self._entries.items())

    def advance(self, source_id: str, offset: int, path: str, dev: int, ino: int) -> None:
        """Record a delivered position in memory; `commit` makes it durable."""
        current = self._entries.get(source_id)
        if current is not None and current.offset > offset:
            return  # positions only move forward
        self._entries[source_id] = Checkpoint(offset, path, dev, ino, time.time())

    def forget_older_than(self, seconds: float, keep: set[str]) -> None:
        """Drop positions of sources not seen for `seconds` (except `keep`), so the file stays small."""
        cutoff = time.time() - seconds
        self._entries = {k: v for k, v in self._entries.items() if v.updated >= cutoff or k in keep}

    def commit(self) -> None:
        doc = {"version": VERSION, "sources": {k: asdict(v) for k, v in self._entries.items()}}
        write_atomic(self.path, orjson.dumps(doc, option=orjson.OPT_INDENT_2))

    def mtime(self) -> float:
        with contextlib.suppress(FileNotFoundError):
            return self.path.stat().st_mtime
        return 0.0
