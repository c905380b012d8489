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
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Final

import orjson

from logpipe.diskspace import DiskSpace
from logpipe.errors import TerminalError

VERSION: Final = 1
FILENAME: Final = "checkpoints.json"


@dataclass(slots=True)
class Checkpoint:
    offset: int
    path: str
    dev: int = 0
    ino: int = 0
    updated: float = 0.0
    # How the file is recognised: "<length>:<hash of its first length bytes>" (see
    # logpipe.sources.files); "" in checkpoints written before it existed.
    fingerprint: str = ""
    # When this source was first seen (0 in checkpoints written before it existed): the archive's
    # parts older than that belong to another file, however alike (see archive/ledger.py).
    created: float = 0.0


class CheckpointError(TerminalError):
    """The checkpoint file is damaged. The agent refuses to start: guessing positions would re-read
    (or skip) data. Moving the file away is safe, since the archive drops what it already holds."""

    def __init__(self, path: Path, fault: str) -> None:
        super().__init__(
            f"checkpoint file {path} {fault}; fix it, or move it away to read every file again from its "
            "start (the archive drops what it already holds)"
        )


# A field's annotation -> the Python types its JSON value may have, and how a message names them.
# (A bool is an int to Python, but never a position: refused apart.)
_FIELD_TYPES: Final[dict[str, tuple[tuple[type, ...], str]]] = {
    "int": ((int,), "an integer"),
    "str": ((str,), "a string"),
    "float": ((int, float), "a number"),
}


def parse_checkpoints(doc: object) -> dict[str, Checkpoint]:
    """Checked positions from a parsed checkpoint file; ValueError says what is wrong where."""
    if not isinstance(doc, dict):
        raise ValueError(f"must be a JSON object, not {_json_type(doc)}")
    if doc.get("version") != VERSION:
        raise ValueError(f"has version {doc.get('version')!r}; this logpipe reads version {VERSION}")
    sources = doc.get("sources", {})
    if not isinstance(sources, dict):
        raise ValueError(f"has `sources` {_json_type(sources)}, expected an object")
    return {sid: _checkpoint(f"sources.{sid}", entry) for sid, entry in sources.items()}


def _checkpoint(where: str, entry: object) -> Checkpoint:
    if not isinstance(entry, dict):
        raise ValueError(f"has {where} {_json_type(entry)}, expected an object")
    known = {f.name: f for f in fields(Checkpoint)}
    for name in entry:
        if name not in known:
            raise ValueError(f"has an unknown field {where}.{name}")
    for name, spec in known.items():
        if name not in entry:
            if spec.default is MISSING:
                raise ValueError(f"lacks {where}.{name}")
            continue
        value = entry[name]
        allowed, expected = _FIELD_TYPES.get(str(spec.type), ((object,), "a value"))
        if isinstance(value, bool) or not isinstance(value, allowed):
            raise ValueError(f"has {where}.{name} {_json_type(value)}, expected {expected}")
        if name == "offset" and isinstance(value, int) and value < 0:
            raise ValueError(f"has {where}.offset {value}, expected a position >= 0")
    return Checkpoint(**entry)


def _json_type(value: object) -> str:
    """How a JSON value is named in a message: `a string ("12")`, `an array`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({orjson.dumps(value[:40]).decode()})"
    return "an array" if isinstance(value, list) else "an object"


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
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        # A failed write leaves no temporary file to hold the space a full disk lacks, and
        # os.write names no file: name the one that could not be written.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, exc.strerror, str(tmp)) from exc
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

    def __init__(self, state_dir: Path, *, space: DiskSpace | None = None) -> None:
        self.path = state_dir / FILENAME
        # A following agent waits for space to commit (the archive holds the data meanwhile,
        # and the checkpoint stays where it was: the ledger drops what is read again).
        self._space = space if space is not None else DiskSpace(wait=False)
        state_dir.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, Checkpoint] = self._load()
        # Sources identified but not yet advanced: (fingerprint, created), see `identify`.
        self._identities: dict[str, tuple[str, float]] = {}

    def _load(self) -> dict[str, Checkpoint]:
        """The file's positions; a damaged file is an error, never a silent start from zero
        (that would re-read every file: a person decides, see CheckpointError)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        try:
            return parse_checkpoints(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise CheckpointError(self.path, f"is not valid JSON ({exc})") from None
        except ValueError as exc:
            raise CheckpointError(self.path, str(exc)) from None

    def get(self, source_id: str) -> Checkpoint | None:
        return self._entries.get(source_id)

    def items(self) -> list[tuple[str, Checkpoint]]:
        return list(self._entries.items())

    def advance(self, source_id: str, offset: int, path: str, dev: int, ino: int) -> None:
        """Record a delivered position in memory; `commit` makes it durable."""
        current = self._entries.get(source_id)
        if current is not None and current.offset > offset:
            return  # positions only move forward
        now = time.time()
        if current is not None:
            fingerprint, created = current.fingerprint, current.created
        else:
            fingerprint, created = self._identities.pop(source_id, ("", now))
        self._entries[source_id] = Checkpoint(offset, path, dev, ino, now, fingerprint, created)

    def identify(self, source_id: str, fingerprint: str, path: str, dev: int, ino: int) -> None:
        """Remember which file a source is (where it is, its content fingerprint) from the moment it
        is opened: a source with no position yet gets it (and `created`) at its first `advance`."""
        current = self._entries.get(source_id)
        if current is None:
            # Kept aside until its first `advance`: the file reader calls this while the flush
            # thread may be iterating the entries (commit), so it must not add one.
            self._identities[source_id] = (fingerprint, time.time())
        else:
            # One new entry, swapped in whole: a commit meanwhile sees the old one or the new.
            self._entries[source_id] = replace(current, path=path, dev=dev, ino=ino, fingerprint=fingerprint)

    def rewind(self, source_id: str, offset: int) -> None:
        """The reader went back to `offset`, below the checkpoint (it was past the end of its file,
        or inside a line): positions count from there now. Without this a checkpoint past the
        end would stay there, `advance` would never move it, and every run would read the whole
        file again. (What is read again is not written twice: the archive's ledger drops it.)"""
        current = self._entries.get(source_id)
        if current is not None and offset < current.offset:
            current.offset = offset

    def forget_older_than(self, seconds: float, keep: set[str]) -> None:
        """Drop positions of sources not seen for `seconds` (except `keep`), so the file stays small."""
        cutoff = time.time() - seconds
        self._entries = {k: v for k, v in self._entries.items() if v.updated >= cutoff or k in keep}

    def commit(self) -> None:
        # orjson writes the dataclasses itself, 5x faster than asdict (1.1 s a commit with 100k
        # files), the same bytes. dict() is one atomic copy (identify swaps entries meanwhile).
        doc = {"version": VERSION, "sources": dict(self._entries)}
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        self._space.retrying("state", "checkpoints not committed", lambda: write_atomic(self.path, data))

    def mtime(self) -> float:
        with contextlib.suppress(FileNotFoundError):
            return self.path.stat().st_mtime
        return 0.0
