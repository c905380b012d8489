"""Where things live inside an archive folder. One place, so writer, reader and retention agree.

    <archive>/
      logs/day=YYYY-MM-DD/level=LEVEL/part-<unix_ms>-<uuid>.parquet   canonical records
      dead_letters/day=YYYY-MM-DD/part-<unix_ms>-<uuid>.parquet       rejected lines, verbatim
      state/checkpoints.json                                          source positions (default state dir)
      state/spool/                                                    stdin spooled to disk
      .lock                                                           held by the one writer

Partitions are hive-style so DuckDB and polars prune by `day` and `level` without opening files.
`day` is the UTC date of `ts`. A part is written as `.tmp-<name>.partial` and renamed: the
temporary name matches no reader's glob, and a writer that starts removes any left by a crash.

What is logpipe's: a regular file named `part-*.parquet` in a folder named like a partition,
reached from the archive without following a symlink. Readers, compaction and retention walk
the archive with `walk_parts` and so agree on that set; anything else (a user's file, a link
to elsewhere) is never read as data, never merged and never deleted.
"""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Final

DEFAULT_ARCHIVE: Final = Path("logpipe-data")
LOGS_DIR: Final = "logs"
DEAD_LETTERS_DIR: Final = "dead_letters"
STATE_DIR: Final = "state"
LOCK_FILE: Final = ".lock"
COMPACT_LOCK_FILE: Final = ".compact.lock"
TMP_PREFIX: Final = ".tmp-"
PART_SUFFIX: Final = ".parquet"
RANGES_METADATA_KEY: Final = b"logpipe.ranges"
# How parts are laid out, which readers rely on too (a dictionary column is cheap to carry).
# Dictionary-encode only columns with few distinct values: for ids and messages the dictionary
# costs time and grows the file. `attrs` is in: the extra fields of one call site repeat (module,
# function, line), and where they do not, the writer falls back to plain pages once the
# dictionary passes its 1 MB limit. So is `event_id`: a part stores it as its source's prefix
# (see event_ids.py), one value per source.
DICTIONARY_COLUMNS: Final = [
    "event_id",
    "level",
    "logger",
    "service",
    "host",
    "method",
    "endpoint",
    "source",
    "message_key",
    "status",
    "reason",
    "source_id",
    "attrs",
]

PART_PREFIX: Final = "part-"

_PARTITION_RE: Final = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True, slots=True)
class Partition:
    """A (day, level) folder of the logs table; level is None for dead letters."""

    table: str
    day: date
    level: str | None = None

    def relpath(self) -> Path:
        path = Path(self.table) / f"day={self.day.isoformat()}"
        return path / f"level={self.level}" if self.level is not None else path


TMP_SUFFIX: Final = ".partial"


def temp_path(final: Path) -> Path:
    """Where a part is written before it is renamed to `final` (never matched by `*.parquet`)."""
    return final.with_name(f"{TMP_PREFIX}{final.name}{TMP_SUFFIX}")


def remove_temp_files(archive: Path, older_than_s: float | None = None) -> int:
    """Delete temporary parts a crashed writer left behind.

    With the exclusive lock every temporary part is stale; shared writers (`logpipe ingest`)
    only remove those older than `older_than_s`, which no live writer can still be writing.
    """
    cutoff = None if older_than_s is None else time.time() - older_than_s
    removed = 0
    for path in walk_parts(archive).temps:  # only `.tmp-part-*.parquet.partial`, never through a link
        try:
            if cutoff is not None and path.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            path.unlink()
            removed += 1
        except FileNotFoundError:
            continue
    return removed


def logs_glob(archive: Path) -> str:
    return str(archive / LOGS_DIR / "day=*" / "level=*" / f"*{PART_SUFFIX}")


def dead_letters_glob(archive: Path) -> str:
    return str(archive / DEAD_LETTERS_DIR / "day=*" / f"*{PART_SUFFIX}")


def default_state_dir(archive: Path) -> Path:
    return archive / STATE_DIR


def parse_day_dir(name: str) -> date | None:
    """`day=2026-11-20` -> date(2026, 11, 20); anything else -> None (never ours to touch)."""
    match = _PARTITION_RE.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def is_part_name(name: str) -> bool:
    """A finished part's name as the writer and compaction make it (`part-*.parquet`)."""
    return name.startswith(PART_PREFIX) and name.endswith(PART_SUFFIX) and "/" not in name


def is_temp_part_name(name: str) -> bool:
    """A part still being written (`.tmp-part-*.parquet.partial`)."""
    return (
        name.startswith(TMP_PREFIX)
        and name.endswith(TMP_SUFFIX)
        and is_part_name(name[len(TMP_PREFIX) : -len(TMP_SUFFIX)])
    )


def is_level_dir_name(name: str) -> bool:
    return name.startswith("level=") and len(name) > len("level=")


@dataclass(slots=True)
class Walk:
    """What `walk_parts` found: logpipe's parts, and what it stepped over (relative paths)."""

    parts: list[Path] = field(default_factory=list)
    temps: list[Path] = field(default_factory=list)
    symlinks: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)


def walk_parts(
    archive: Path, tables: tuple[str, ...] = (LOGS_DIR, DEAD_LETTERS_DIR), *, days: Callable[[date], bool] | None = None
) -> Walk:
    """Every finished part of `tables`, found without following a symlink; with `days`, only
    those of the day folders it keeps (the others are not looked into).

    Paths are `archive / table / ...` as given (so callers can take `relative_to(archive)`).
    A symlink anywhere below the archive is listed in `symlinks` and not entered; a file or
    folder that is not logpipe's (wrong name, not a regular file) in a partition is listed in
    `foreign`. Folders whose names are not partitions are not looked into at all.
    """
    walk = Walk()
    for table in tables:
        root = archive / table
        kind = _kind(root)
        if kind == "link":
            walk.symlinks.append(table)
        if kind != "dir":
            continue
        for day in _entries(root):
            rel_day = f"{table}/{day.name}"
            named = parse_day_dir(day.name)
            if named is None or (days is not None and not days(named)):
                continue
            if day.is_symlink():
                walk.symlinks.append(rel_day)
                continue
            if not day.is_dir(follow_symlinks=False):
                continue
            if table == LOGS_DIR:
                for level in _entries(Path(day.path)):
                    if not is_level_dir_name(level.name):
                        continue
                    if level.is_symlink():
                        walk.symlinks.append(f"{rel_day}/{level.name}")
                    elif level.is_dir(follow_symlinks=False):
                        _collect(Path(level.path), f"{rel_day}/{level.name}", walk)
            else:
                _collect(Path(day.path), rel_day, walk)
    walk.parts.sort()
    return walk


def _kind(path: Path) -> str:
    try:
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return "missing"
    return "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "other"


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []  # removed meanwhile (retention) or replaced: nothing of ours to read there


def _collect(folder: Path, rel: str, walk: Walk) -> None:
    for entry in _entries(folder):
        if entry.is_symlink():
            walk.symlinks.append(f"{rel}/{entry.name}")
        elif is_part_name(entry.name) and entry.is_file(follow_symlinks=False):
            walk.parts.append(folder / entry.name)
        elif is_temp_part_name(entry.name) and entry.is_file(follow_symlinks=False):
            walk.temps.append(folder / entry.name)
        else:
            walk.foreign.append(f"{rel}/{entry.name}")


def part_files(archive: Path) -> list[Path]:
    """Every finished data file of both tables (temporary files, links and foreign files excluded)."""
    return walk_parts(archive).parts
