"""What a running process writes, read while it runs: wait for a line instead of sleeping."""

from __future__ import annotations

import threading
from typing import IO

from tests.support.wait import wait_until


class Lines:
    """Every line of `pipe` (a child's stderr, say), collected by a thread as it arrives, so the
    child never blocks on a full pipe and a test can wait for what it logs."""

    def __init__(self, pipe: IO[bytes] | IO[str]) -> None:
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[bytes] | IO[str]) -> None:
        for raw in pipe:
            self._lines.append(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)

    def text(self) -> str:
        """Everything read so far."""
        return "".join(self._lines)

    def wait_for(self, needle: str, timeout_s: float = 60.0) -> str:
        """The first line containing `needle`, once there is one."""
        return wait_until(
            f"{needle!r} in the output", lambda: next((x for x in list(self._lines) if needle in x), ""), timeout_s
        )

    def close(self, timeout_s: float = 10.0) -> str:
        """Everything, after the pipe ended (the process exited)."""
        self._thread.join(timeout_s)
        return self.text()
