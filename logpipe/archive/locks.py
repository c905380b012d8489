"""The locks that guard an archive, held on its folders so that deleting a lock file lets nobody in.

- The writer lock: the archive's `logs` folder. `logpipe ship` holds it exclusively (one agent per
  archive); the consumers of a `logpipe ingest` group and `logpipe archive compact` share it;
  retention takes it exclusively for a moment to remove emptied folders.
- The compaction lock: the archive's `dead_letters` folder. One compaction at a time, and
  retention deletes no partition while one runs.
- (The archive folder itself carries the readers' lock that compaction takes before it removes
  the parts it merged: see layout.lock_readers. One folder, one lock: flock locks of one process
  on two descriptors of the same folder exclude each other, so each lock has its own folder.)

Each lock is also taken on its file (`.lock`, `.compact.lock`), as earlier versions of logpipe
did, so that an older agent and a newer one still exclude each other, and `.lock` names its holder.

Why folders: flock(2) locks an open file, and a folder can be opened and locked like any file.
A lock file can be deleted while it is held (people delete `.lock` when they take it for stale);
the next process then created a new `.lock`, locked that, and wrote beside the first (20,000
duplicates). `logs` and `dead_letters` hold the archive's data and logpipe never removes them;
the holder checks (`still_names`) before it writes that the path still names the folder it locked.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path
from typing import IO

from logpipe.archive.layout import COMPACT_LOCK_FILE, DEAD_LETTERS_DIR, LOCK_FILE, LOGS_DIR
from logpipe.errors import ArchiveError


class Busy(Exception):
    """Another process holds the lock; `holder` is what its lock file says ("pid 123")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class FolderLock:
    """A non-blocking flock on a folder, then on a file that names the holder (see module doc)."""

    def __init__(self, folder: Path, file: Path, *, shared: bool = False) -> None:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self._fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        self._fh: IO[str] | None = None
        try:
            try:
                fcntl.flock(self._fd, mode)
            except BlockingIOError:
                raise Busy(_holder(file)) from None
            self._fh = _open_lock_file(file)
            try:
                fcntl.flock(self._fh, mode)
            except BlockingIOError:
                raise Busy(_holder(file)) from None  # an older logpipe holds the file only
        except BaseException:
            self.release()
            raise
        if not shared:
            self._fh.seek(0)
            self._fh.truncate()
        self._fh.write(f"pid {os.getpid()}\n")
        self._fh.flush()

    def still_names(self, path: Path) -> bool:
        """Does `path` still name the folder this lock holds (not moved away, deleted, replaced)?"""
        try:
            now, held = os.stat(path), os.fstat(self._fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        if self._fh is not None and not self._fh.closed:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
        if self._fd >= 0:
            os.close(self._fd)  # closing the only descriptor of the folder releases its flock
            self._fd = -1


def writer_lock(archive: Path, *, shared: bool = False) -> FolderLock:
    """The archive's writer lock (exclusive for an agent, shared by ingest consumers); raises Busy."""
    return FolderLock(archive / LOGS_DIR, archive / LOCK_FILE, shared=shared)


def compaction_lock(archive: Path) -> FolderLock:
    """The archive's compaction lock; raises Busy."""
    return FolderLock(archive / DEAD_LETTERS_DIR, archive / COMPACT_LOCK_FILE)


def _open_lock_file(file: Path) -> IO[str]:
    """The lock file, never through a link: whoever can write the archive could otherwise point
    `.lock` at any file and have the agent truncate it and write its pid there."""
    try:
        fd = os.open(file, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArchiveError(f"lock file {file} is a symbolic link; remove it (logpipe creates its own)") from None
        raise
    return os.fdopen(fd, "a+")  # held open for the lock


def _holder(file: Path) -> str:
    try:
        return file.read_text().strip() or "another process"
    except OSError:
        return "another process"
