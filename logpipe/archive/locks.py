"""logpipe's one lock (`Lock`: a flock on a file or a folder) and the locks it guards an archive with.

- The writer lock: the archive's `logs` folder. `logpipe ship` holds it exclusively (one agent per
  archive); the consumers of a `logpipe ingest` group and `logpipe archive compact` share it;
  retention takes it exclusively for a moment to remove emptied folders.
- The compaction lock: the archive's `dead_letters` folder. One compaction at a time, and
  retention deletes no partition while one runs.
- The readers' lock: the archive folder itself. Readers (`logpipe sql`, `query`, `export`,
  `tail`) hold it shared while they list parts and read them; compaction and retention take it
  exclusively only to remove parts. One folder, one lock: flock locks of one process on two
  descriptors of the same folder exclude each other, so each lock has its own folder.
- The retention run lock (retention/run.py): a file, so that a second nightly run fails at once.

The writer and compaction locks are also taken on their file (`.lock`, `.compact.lock`), as
earlier versions of logpipe did, so that an older agent and a newer one still exclude each other,
and `.lock` names its holder.

Why folders: flock(2) locks an open file, and a folder can be opened and locked like any file.
A lock file can be deleted while it is held (people delete `.lock` when they take it for stale);
the next process then created a new `.lock`, locked that, and wrote beside the first (20,000
duplicates). `logs` and `dead_letters` hold the archive's data and logpipe never removes them;
the holder checks (`still_names`) before it writes that the path still names the folder it locked.

Why flock: the lock belongs to the open descriptor, so it ends when the holder closes it or dies
(kill -9 included): there is never a stale lock to clean up. Descriptors are opened close-on-exec,
so a program the holder starts does not keep the lock after the holder is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Final, Self

from logpipe.archive.layout import COMPACT_LOCK_FILE, DEAD_LETTERS_DIR, LOCK_FILE, LOGS_DIR
from logpipe.errors import ArchiveError

POLL_S: Final = 0.02  # how often a waiting lock tries again (flock has no timeout of its own)
_FILE_FLAGS: Final = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
_FOLDER_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class Busy(Exception):
    """Another process holds the lock; `holder` is what its lock file says ("pid 123")."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class Lock:
    """One flock on a lock file or a folder, shared or exclusive, held until `release` or the end of
    a `with` block.

    `wait_s` 0 fails at once; otherwise it tries again every POLL_S until `wait_s` has passed.
    Another holder still there then: `Busy`. A lock file that is a symbolic link is refused
    (`ArchiveError`): whoever can write its folder could otherwise point it at any file and
    have logpipe truncate it. `unguarded_ok`: where the file system cannot flock (some network
    file systems), go on without the lock (`guarded` False) instead of raising the OSError.
    """

    def __init__(
        self, path: Path, *, shared: bool = False, wait_s: float = 0.0, folder: bool = False, unguarded_ok: bool = False
    ) -> None:
        self.path = path
        self.shared = shared
        self.guarded = True
        self._fd = os.open(path, _FOLDER_FLAGS) if folder else _open_lock_file(path)
        try:
            if not _flock(self._fd, shared=shared, wait_s=wait_s):
                raise Busy("another process" if folder else read_holder(path))
        except OSError:
            self.release()
            if not unguarded_ok:
                raise
            self.guarded = False
        except BaseException:
            self.release()
            raise

    def name_holder(self) -> None:
        """Write "pid N" into the lock file: alone when exclusive, beside the other holders when shared."""
        if not self.shared:
            os.ftruncate(self._fd, 0)
        os.write(self._fd, f"pid {os.getpid()}\n".encode())  # O_APPEND: after what is there

    def still_names(self, path: Path) -> bool:
        """Does `path` still name the file or folder this lock holds (not moved away, deleted, replaced)?"""
        if self._fd < 0:
            return False
        try:
            now, held = os.stat(path), os.fstat(self._fd)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def release(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the only descriptor releases the flock
            self._fd = -1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class FolderLock:
    """A lock on a folder, then on the file beside it that names the holder (see module doc).

    Waits up to `wait_s` for both together. `name_holder` False: take the lock without writing
    this process into the file (retention, which holds it for a moment).
    """

    def __init__(
        self, folder: Path, file: Path, *, shared: bool = False, wait_s: float = 0.0, name_holder: bool = True
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        deadline = time.monotonic() + wait_s
        try:
            self._folder = Lock(folder, shared=shared, wait_s=wait_s, folder=True)
        except Busy:
            raise Busy(read_holder(file)) from None
        try:
            # An older logpipe holds the file only: it is busy all the same.
            self._file = Lock(file, shared=shared, wait_s=max(0.0, deadline - time.monotonic()))
            if name_holder:
                self._file.name_holder()
        except BaseException:
            self._folder.release()
            raise

    def still_names(self, path: Path) -> bool:
        """Does `path` still name the folder this lock holds (not moved away, deleted, replaced)?"""
        return self._folder.still_names(path)

    def release(self) -> None:
        self._file.release()
        self._folder.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def writer_lock(archive: Path, *, shared: bool = False, name_holder: bool = True) -> FolderLock:
    """The archive's writer lock (exclusive for an agent, shared by ingest consumers); raises Busy."""
    return FolderLock(archive / LOGS_DIR, archive / LOCK_FILE, shared=shared, name_holder=name_holder)


def compaction_lock(archive: Path, *, wait_s: float = 0.0, name_holder: bool = True) -> FolderLock:
    """The archive's compaction lock; raises Busy after `wait_s`."""
    return FolderLock(archive / DEAD_LETTERS_DIR, archive / COMPACT_LOCK_FILE, wait_s=wait_s, name_holder=name_holder)


def readers_lock(archive: Path, *, shared: bool, wait_s: float) -> Lock | None:
    """The archive's readers' lock, or None if it could not be had within `wait_s`.

    On the folder, not a file: a reader may have no right to create files in the archive. Where
    the file system refuses to lock a folder the lock is not `guarded`: it is a guard for
    readers, and its absence must not stop compaction or retention. Opening the folder may
    raise OSError.
    """
    try:
        return Lock(archive, shared=shared, wait_s=wait_s, folder=True, unguarded_ok=True)
    except Busy:
        return None


def read_holder(file: Path) -> str:
    """Who a lock file names as its holder ("pid 123"), as far as it says."""
    try:
        return file.read_text().strip() or "another process"
    except OSError:
        return "another process"


def _flock(fd: int, *, shared: bool, wait_s: float) -> bool:
    """flock `fd`, trying again until `wait_s` has passed; False if another holder is still there."""
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, mode)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
        time.sleep(POLL_S)


def _open_lock_file(file: Path) -> int:
    """The lock file, created if missing, never opened through a link (see Lock)."""
    try:
        return os.open(file, _FILE_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArchiveError(f"lock file {file} is a symbolic link; remove it (logpipe creates its own)") from None
        raise
