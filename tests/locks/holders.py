"""Other processes holding logpipe's locks, for the tests of this folder (see lock_holder.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

HOLDER = Path(__file__).with_name("lock_holder.py")


class Holder:
    """Another process holding (or failing to take) a lock; it lets go when its stdin closes."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HOLDER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        self.child: int | None = None
        line = self.proc.stdout.readline().strip()
        if line.startswith("child "):
            self.child = int(line.split()[1])
            line = self.proc.stdout.readline().strip()
        self.said = line

    def let_go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        assert self.proc.wait(timeout=30) == 0

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def end(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


def hold(holders: list[Holder], *args: str) -> Holder:
    holder = Holder(*args)
    holders.append(holder)
    return holder
