"""A process that takes one of logpipe's locks, says so on stdout, and holds it until its stdin closes.

    python lock_holder.py KIND PATH [shared] [spawn]

KIND: file (a Lock on a lock file), folder (a Lock on a folder), writer (the archive's writer
lock), compaction (the archive's compaction lock), readers (the archive's readers' lock).
`spawn`: also start a child process that inherits whatever descriptors it may (close_fds off),
and print its pid.
It prints "held" once the lock is held, or "busy HOLDER" when it is not to be had.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from logpipe.archive.locks import Busy, FolderLock, Lock, compaction_lock, readers_lock, writer_lock


def take(kind: str, path: Path, *, shared: bool) -> Lock | FolderLock | None:
    if kind == "file":
        held = Lock(path, shared=shared)
        held.name_holder()
        return held
    if kind == "folder":
        return Lock(path, shared=shared, folder=True)
    if kind == "writer":
        return writer_lock(path, shared=shared)
    if kind == "compaction":
        return compaction_lock(path)
    if kind == "readers":
        path.mkdir(parents=True, exist_ok=True)  # the archive folder is there before any reader
        return readers_lock(path, shared=shared, wait_s=0.0)
    raise SystemExit(f"unknown kind {kind}")


def main() -> None:
    kind, path, flags = sys.argv[1], Path(sys.argv[2]), set(sys.argv[3:])
    try:
        held = take(kind, path, shared="shared" in flags)
    except Busy as busy:
        print(f"busy {busy.holder}", flush=True)
        return
    if held is None:
        print("busy", flush=True)
        return
    if "spawn" in flags:
        # The child reads our stdin, so it lives until the test closes it, whatever becomes of us.
        child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], close_fds=False)
        print(f"child {child.pid}", flush=True)
    print("held", flush=True)
    sys.stdin.read()
    held.release()


if __name__ == "__main__":
    main()
