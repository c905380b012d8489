"""Who may read the archive and the state: its owner only (the default), its group, or everyone.

Log lines carry secrets (a password in a query string, a token in a header), and a log file is
often readable by its owner only. Its records must not become readable by others on the way:

    readable_by   files   folders
    owner         0600    0700      the default
    group         0640    0750      a team that reads the archive as a group
    everyone      0644    0755

Every file and folder a writer creates in the archive or the state (parts, dead letters,
checkpoints, the stdin spool, the compaction journal, lock files, partition folders) gets these
modes through the umask the writer sets when it starts (`restrict`): one setting for the whole
process, so no file is readable by others even for a moment (pyarrow creates its files itself),
and nothing is missed. Those processes write nothing else. A stricter umask of the user is
kept: the setting never opens more than the umask allows.

`logpipe ship` is configured (`archive.readable_by`, `--readable-by`) and takes from the
archive's folder and the state folder what the setting does not allow (`prepare`), so that what
an older logpipe wrote there, at the umask's modes, is closed too. It never widens a folder:
switching an existing archive from owner to group is a `chmod -R g+rX` of the operator's. The other writers (`ingest`, `archive compact`,
`retention apply`) follow the archive's folder (`follow`): its mode says who may read.

What a person asks logpipe to write elsewhere (`logpipe export`, `query --output`) is theirs:
made with their own umask, like any file they create.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Final, Literal

__all__ = ["FILE_MODES", "FOLDER_MODES", "READABLE_BY", "ReadableBy", "follow", "prepare", "readable_by_of", "restrict"]

log = logging.getLogger("logpipe.archive.access")

ReadableBy = Literal["owner", "group", "everyone"]
READABLE_BY: Final[tuple[ReadableBy, ...]] = ("owner", "group", "everyone")
DEFAULT: Final[ReadableBy] = "owner"
UMASKS: Final[dict[ReadableBy, int]] = {"owner": 0o077, "group": 0o027, "everyone": 0o022}
FILE_MODES: Final[dict[ReadableBy, int]] = {k: 0o666 & ~m for k, m in UMASKS.items()}
FOLDER_MODES: Final[dict[ReadableBy, int]] = {k: 0o777 & ~m for k, m in UMASKS.items()}


def readable_by_of(mode: int) -> ReadableBy:
    """Who a folder's mode lets read what is in it."""
    if mode & stat.S_IROTH:
        return "everyone"
    if mode & stat.S_IRGRP:
        return "group"
    return "owner"


def restrict(readable_by: ReadableBy) -> int:
    """Set this process's umask so that what it creates is readable as `readable_by` says (or
    less, if the umask was stricter); the umask before, to restore."""
    before = os.umask(0o077)
    os.umask(before | UMASKS[readable_by])
    return before


def prepare(readable_by: ReadableBy, *folders: Path) -> int:
    """For a configured writer (`ship`): restrict the umask, then create `folders` (the archive,
    the state folder) and narrow each to the folder mode, if this user owns it. The umask before."""
    before = restrict(readable_by)
    umask = before | UMASKS[readable_by]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        info = folder.stat()
        mode = stat.S_IMODE(info.st_mode)
        # Only ever narrowed: what the setting does not allow is taken away; nothing is added
        # (a folder an operator closed stays closed, and widening is theirs to do). The setgid
        # and sticky bits stay (a setgid archive folder gives its group to what is made in it).
        want = (mode & ~0o777) | (mode & FOLDER_MODES[readable_by] & ~umask)
        if info.st_uid == os.geteuid() and mode != want:
            try:
                os.chmod(folder, want)
            except OSError as exc:
                # A file system without modes (some network and FAT mounts): what is created in
                # it still gets the umask's modes, as far as it keeps any.
                log.warning(
                    "folder mode not set",
                    extra={"event": "folder_mode_not_set", "path": str(folder), "reason": os.strerror(exc.errno or 0)},
                )
                continue
            log.info(
                "folder mode set",
                extra={
                    "event": "folder_mode_set",
                    "path": str(folder),
                    "mode": f"{want:04o}",
                    "readable_by": readable_by,
                },
            )
    return before


def follow(archive: Path) -> int:
    """For a writer without the setting (`ingest`, `archive compact`, `retention apply`): restrict
    the umask as the archive's folder says (owner only for an archive not made yet). The umask before."""
    try:
        readable_by = readable_by_of(archive.stat().st_mode)
    except FileNotFoundError:
        readable_by = DEFAULT
    return restrict(readable_by)
