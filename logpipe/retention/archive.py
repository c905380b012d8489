"""Retention on the Parquet archive: drop the day partitions of each level past its cutoff.

Only folders named like the layout writes them (`logs/day=YYYY-MM-DD/level=LEVEL` with a
canonical LEVEL) are considered; anything else in the folder is not ours and is never touched.
Dead letters are kept: they are evidence of lines that could not be read, not logs of a level.

Safe beside a running agent and compaction:
- Each partition is removed under the archive's compaction lock (`.compact.lock`, the one the
  sinks take), so a compaction never merges parts that retention is deleting. When compaction
  holds it, the action waits a little and then fails (exit 1; the next run does it).
- Finished parts are unlinked one by one (an unlink is atomic for readers); temporary parts of
  a writer are left alone. Emptied folders are removed at the end of a run, and only when no
  writer holds the archive's `.lock`, because a writer creates a folder just before writing in it.
- A partition holds every service, so a level is kept for the longest age any service override
  asks for: deleting earlier would delete the overriding service's records too.
"""

from __future__ import annotations

import contextlib
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Final

from logpipe.archive.layout import (
    COMPACT_LOCK_FILE,
    LOGS_DIR,
    PART_SUFFIX,
    TMP_PREFIX,
    parse_day_dir,
)
from logpipe.archive.locks import Busy, FolderLock, compaction_lock, writer_lock
from logpipe.errors import TerminalError, TransientError
from logpipe.retention.policy import LEVELS, Policy
from logpipe.retention.run import Action
from logpipe.retention.window import boundary, day_is_expired

LOCK_WAIT_S: Final = 10.0  # LOGPIPE_RETENTION_LOCK_WAIT_S overrides it


class ArchiveBackend:
    name = "archive"

    def __init__(self, policy: Policy) -> None:
        assert policy.archive is not None
        self.policy = policy
        self.root = policy.archive
        self.notes: list[str] = []
        self._compaction_busy = False

    def plan(self, now: datetime) -> list[Action]:
        logs = self.root / LOGS_DIR
        if not self.root.is_dir():
            raise TerminalError(f"archive {self.root} does not exist")
        for level in LEVELS:
            if self.policy.overridden(level) and self.policy.longest(level) != self.policy.levels[level]:
                self.notes.append(f"{level} is kept for the longest service age ({_age(self.policy.longest(level))}): "
                                  f"partitions hold every service, and {', '.join(self.policy.overridden(level))} "
                                  "override it")  # fmt: skip
        actions: list[Action] = []
        for day_dir in sorted(logs.iterdir()) if logs.is_dir() else []:
            day = parse_day_dir(day_dir.name)
            if day is None or not day_dir.is_dir():
                continue
            for level_dir in sorted(day_dir.iterdir()):
                level = level_dir.name.removeprefix("level=")
                if not level_dir.name.startswith("level=") or level not in LEVELS or not level_dir.is_dir():
                    continue
                age = self.policy.longest(level)
                if age is None:
                    continue
                cut = boundary(now, age, self.policy.max_clock_skew)
                if not day_is_expired(day, cut):
                    continue
                parts = _parts(level_dir)
                if not parts:
                    continue
                actions.append(Action("archive", "drop-partition", level_dir.relative_to(self.root).as_posix(),
                                      level, None, cut, count=_rows(parts), bytes=_size(parts),
                                      handle=level_dir, store=str(self.root)))  # fmt: skip
        return actions

    def apply(self, action: Action) -> int | None:
        folder: Path = action.handle
        # After one timeout the compaction is known to be long: fail the rest at once rather
        # than wait again for every partition.
        with _compaction_lock(self.root, wait=not self._compaction_busy) as got:
            if not got:
                self._compaction_busy = True
                raise TransientError(f"archive {self.root}: a compaction holds {COMPACT_LOCK_FILE}; "
                                     "partition left for the next run")  # fmt: skip
            parts = _parts(folder)
            rows = _rows(parts)
            for part in parts:
                try:
                    part.unlink()
                except FileNotFoundError:
                    continue
        return rows

    def finish(self, now: datetime) -> None:
        """Remove expired partition folders left empty (by this run or an earlier one).

        Only while no writer holds the archive's `.lock`: a writer creates a folder just before
        it writes into it, so removing one under a running writer could fail its write. Empty
        folders are harmless to readers (they glob `*.parquet`), so waiting a night costs nothing.
        """
        logs = self.root / LOGS_DIR
        if not logs.is_dir():
            return
        try:
            lock = writer_lock(self.root)  # on the `logs` folder, not only `.lock` (archive/locks.py)
        except Busy:
            self.notes.append("a writer holds the archive: emptied folders are left for a later run")
            return
        except OSError:
            return
        removed = 0
        try:
            for day_dir in logs.iterdir():
                day = parse_day_dir(day_dir.name)
                if day is None or not day_dir.is_dir():
                    continue
                for level_dir in day_dir.iterdir():
                    level = level_dir.name.removeprefix("level=")
                    age = self.policy.longest(level) if level in LEVELS else None
                    if age is None or not day_is_expired(day, boundary(now, age, self.policy.max_clock_skew)):
                        continue
                    try:
                        level_dir.rmdir()  # fails unless empty: nothing but empty folders goes
                        removed += 1
                    except OSError:
                        continue
                with contextlib.suppress(OSError):
                    day_dir.rmdir()
        finally:
            lock.release()
        if removed:
            self.notes.append(f"removed {removed} emptied partition folder(s)")

    def close(self) -> None:
        pass


class _compaction_lock:
    """Hold the compaction lock (the one the sinks take, archive/locks.py) while a partition goes."""

    def __init__(self, root: Path, *, wait: bool) -> None:
        self.root = root
        self.wait_s = float(os.environ.get("LOGPIPE_RETENTION_LOCK_WAIT_S", LOCK_WAIT_S)) if wait else 0.0
        self.held = False
        self._lock: FolderLock | None = None

    def __enter__(self) -> bool:
        """True when the lock is held; False after waiting `wait_s` in vain."""
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                self._lock = compaction_lock(self.root)  # see archive/locks.py
                self.held = True
                return True
            except Busy:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            self._lock.release()


def _parts(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"*{PART_SUFFIX}") if not p.name.startswith(TMP_PREFIX) and p.is_file())


def _rows(parts: list[Path]) -> int:
    import pyarrow.parquet as pq

    total = 0
    for part in parts:
        try:
            total += pq.read_metadata(part).num_rows
        except (OSError, ValueError):
            continue  # removed meanwhile (compaction) or unreadable: its size still counts
    return total


def _size(parts: list[Path]) -> int:
    total = 0
    for part in parts:
        try:
            total += os.stat(part).st_size
        except FileNotFoundError:
            continue
    return total


def _age(age: object) -> str:
    return "forever" if age is None else str(age)
