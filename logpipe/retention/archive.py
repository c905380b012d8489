"""Retention on the Parquet archive: drop the day partitions of each level past its cutoff.

Only folders named like the layout writes them (`logs/day=YYYY-MM-DD/level=LEVEL` with a
canonical LEVEL) are considered; anything else in the folder is not ours and is never touched.
Dead letters are kept: they are evidence of lines that could not be read, not logs of a level.

Never outside the archive, never what logpipe did not write:
- The archive's real path is resolved once; below it nothing is followed through a symlink. A
  linked `logs`, day or level folder or a linked part is skipped and named in the run's notes.
- Only regular files named `part-*.parquet` are deleted. Any other file in a partition is left
  and named; its folder then stays. Deletion goes through folder fds opened with O_NOFOLLOW
  (`unlinkat`), so a folder swapped for a link between the plan and the delete cannot redirect it.

Safe beside a running agent, compaction and queries:
- Each partition is removed under the archive's compaction lock (`dead_letters` and
  `.compact.lock`, the one the sinks take), so a compaction never merges parts that retention is
  deleting, and under the readers' lock (archive/locks.py), so a running query never loses a part it listed. When either is
  held, the action waits a little and then fails (exit 1; the next run does it).
- Finished parts are unlinked one by one (an unlink is atomic for readers); temporary parts of
  a writer are left alone. Emptied folders are removed at the end of a run, and only when no
  writer holds the archive's writer lock (`logs` and `.lock`), because a writer creates a folder just before writing in it.
- A partition holds every service, so a level is kept for the longest age any service override
  asks for: deleting earlier would delete the overriding service's records too.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Final

from logpipe.archive.layout import (
    COMPACT_LOCK_FILE,
    LOGS_DIR,
    is_part_name,
    parse_day_dir,
    walk_parts,
)
from logpipe.archive.locks import Busy, compaction_lock, readers_lock, writer_lock
from logpipe.errors import ArchiveError, TerminalError, TransientError
from logpipe.retention.policy import LEVELS, Policy
from logpipe.retention.run import Action
from logpipe.retention.window import boundary, day_is_expired
from logpipe.words import counted

LOCK_WAIT_S: Final = 10.0  # LOGPIPE_RETENTION_LOCK_WAIT_S overrides it
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_MAX_NAMED: Final = 5  # files named per note; the rest are counted


class ArchiveBackend:
    name = "archive"

    def __init__(self, policy: Policy) -> None:
        assert policy.archive is not None
        self.policy = policy
        self.root = policy.archive
        # Resolved once: everything below is reached from here without following a link.
        self.real_root = Path(os.path.realpath(self.root))
        self.notes: list[str] = []
        self._noted: set[str] = set()
        self._compaction_busy = False

    def plan(self, now: datetime) -> list[Action]:
        if not self.real_root.is_dir():
            raise TerminalError(f"archive {self.root} does not exist")
        for level in LEVELS:
            if self.policy.overridden(level) and self.policy.longest(level) != self.policy.levels[level]:
                self._note(
                    f"{level} is kept for the longest service age ({_age(self.policy.longest(level))}): "
                    f"partitions hold every service, and {', '.join(self.policy.overridden(level))} "
                    "override it"
                )
        walk = walk_parts(self.real_root, (LOGS_DIR,))
        for rel in walk.symlinks:
            self._note(f"{rel} is a symlink: not followed, nothing deleted through it")
        parts_of: dict[tuple[str, str], list[Path]] = {}
        for part in walk.parts:
            parts_of.setdefault((part.parent.parent.name, part.parent.name), []).append(part)
        foreign_of: dict[tuple[str, str], list[str]] = {}
        for rel in walk.foreign:
            pieces = rel.split("/")
            foreign_of.setdefault((pieces[1], pieces[2]), []).append("/".join(pieces[3:]))
        actions: list[Action] = []
        for (day_name, level_name), parts in sorted(parts_of.items()):
            expired = self._expired_level(day_name, level_name, now)
            if expired is None:
                continue
            level, cut = expired
            target = f"{LOGS_DIR}/{day_name}/{level_name}"
            if foreign_of.get((day_name, level_name)):
                self._note(_foreign_note(target, foreign_of[(day_name, level_name)]))
            actions.append(
                Action(
                    "archive",
                    "drop-partition",
                    target,
                    level,
                    None,
                    cut,
                    count=_rows(parts),
                    bytes=_size(parts),
                    handle=(day_name, level_name),
                    store=str(self.root),
                )
            )
        return actions

    def _expired_level(self, day_name: str, level_name: str, now: datetime) -> tuple[str, datetime] | None:
        """(canonical level, cutoff) when the whole partition is past its cutoff, else None."""
        day = parse_day_dir(day_name)
        level = level_name.removeprefix("level=")
        if day is None or not level_name.startswith("level=") or level not in LEVELS:
            return None
        age = self.policy.longest(level)
        if age is None:
            return None
        cut = boundary(now, age, self.policy.max_clock_skew)
        return (level, cut) if day_is_expired(day, cut) else None

    def _note(self, text: str) -> None:
        if text not in self._noted:  # apply plans again under the lock: say each thing once
            self._noted.add(text)
            self.notes.append(text)

    def apply(self, action: Action) -> int | None:
        day_name, level_name = action.handle
        # After one timeout the compaction (or a query) is known to be long: fail the rest at
        # once rather than wait again for every partition.
        wait_s = 0.0 if self._compaction_busy else _lock_wait_s()
        try:
            held = compaction_lock(self.real_root, wait_s=wait_s, name_holder=False)
        except Busy:
            self._compaction_busy = True
            raise TransientError(
                f"archive {self.root}: a compaction holds {COMPACT_LOCK_FILE}; partition left for the next run"
            ) from None
        except OSError as exc:
            raise TerminalError(
                f"archive {self.root}: cannot open {COMPACT_LOCK_FILE} "
                f"({os.strerror(exc.errno or 0)}); partition left as it is"
            ) from None
        with held:
            readers = readers_lock(self.real_root, shared=False, wait_s=wait_s)
            if readers is None:
                self._compaction_busy = True
                raise TransientError(f"archive {self.root}: queries are reading it; partition left for the next run")
            try:
                with readers, _partition_fd(self.real_root, day_name, level_name) as folder:
                    return _unlink_parts(folder)
            except OSError as exc:
                raise TerminalError(
                    f"archive {self.root}: {action.target} could not be opened as a folder of the "
                    f"archive ({os.strerror(exc.errno or 0)}); left as it is"
                ) from None

    def finish(self, now: datetime) -> None:
        """Remove expired partition folders left empty (by this run or an earlier one).

        Only while no writer holds the archive's writer lock: a writer creates a folder just before
        it writes into it, so removing one under a running writer could fail its write. Empty
        folders are harmless to readers, so waiting a night costs nothing. A folder that still
        holds anything (a file logpipe did not write, a link) is not empty and stays.
        """
        if not _is_real_dir_path(self.real_root / LOGS_DIR):
            return  # no folder to tidy (and none to create for the lock)
        try:
            held = writer_lock(self.real_root, name_holder=False)
        except Busy:
            self.notes.append("a writer holds the archive: emptied folders are left for a later run")
            return
        except (OSError, ArchiveError):
            return
        with held:
            removed = self._remove_empty_folders(now)
        if removed:
            self.notes.append(f"removed {counted(removed, 'emptied partition folder')}")

    def _remove_empty_folders(self, now: datetime) -> int:
        removed = 0
        try:
            logs = _open_dir(self.real_root, LOGS_DIR)
        except OSError:
            return 0
        try:
            for day_name in sorted(os.listdir(logs)):
                if parse_day_dir(day_name) is None or not _is_real_dir(logs, day_name):
                    continue
                try:
                    day = os.open(day_name, _DIR_FLAGS, dir_fd=logs)
                except OSError:
                    continue
                try:
                    for level_name in sorted(os.listdir(day)):
                        if self._expired_level(day_name, level_name, now) is None:
                            continue
                        try:
                            os.rmdir(level_name, dir_fd=day)  # fails unless empty (and on a link)
                            removed += 1
                        except OSError:
                            continue
                finally:
                    os.close(day)
                with contextlib.suppress(OSError):
                    os.rmdir(day_name, dir_fd=logs)
        finally:
            os.close(logs)
        return removed

    def close(self) -> None:
        pass


def _lock_wait_s() -> float:
    return float(os.environ.get("LOGPIPE_RETENTION_LOCK_WAIT_S", LOCK_WAIT_S))


def _foreign_note(target: str, names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED]) + (f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else "")
    return f"{target}: left {counted(len(names), 'file')} logpipe did not write ({shown}); the folder stays"


def _open_dir(parent: Path | int, name: str) -> int:
    """An fd of folder `name` in `parent` (a path or an fd), refusing a symlink (ELOOP)."""
    if isinstance(parent, int):
        return os.open(name, _DIR_FLAGS, dir_fd=parent)
    base = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=base)
    finally:
        os.close(base)


def _is_real_dir_path(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _is_real_dir(parent: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _partition_fd(real_root: Path, day_name: str, level_name: str) -> Iterator[int]:
    """The partition folder, reached component by component without following a link."""
    fds = [_open_dir(real_root, LOGS_DIR)]
    try:
        fds.append(_open_dir(fds[-1], day_name))
        fds.append(_open_dir(fds[-1], level_name))
        yield fds[-1]
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _unlink_parts(folder: int) -> int:
    """Unlink the regular `part-*.parquet` files of the folder fd; the rows they held."""
    import pyarrow.parquet as pq

    rows = 0
    for name in sorted(os.listdir(folder)):
        if not is_part_name(name):
            continue
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
        except OSError:
            continue  # a link (ELOOP) or removed meanwhile: not ours to delete
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            with contextlib.suppress(OSError, ValueError), os.fdopen(os.dup(fd), "rb") as fh:
                rows += pq.read_metadata(fh).num_rows
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=folder)  # unlinkat: removes this entry, never a link's target
    return rows


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
            total += os.stat(part, follow_symlinks=False).st_size
        except FileNotFoundError:
            continue
    return total


def _age(age: object) -> str:
    return "forever" if age is None else str(age)
