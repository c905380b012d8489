"""A request whose client is gone stops (#20 item 10), against a real `logpipe ui` process.

The failpoint `ui-pattern-record` makes the server pause 10 ms per record it mines, so mining
the session archive's 3,000 records takes some 30 s. The client sends `GET /api/patterns?from=1`
on a raw socket and closes it a second later; the server must then stop mining: it logs that it
stopped and after how many records, well before all 3,000 (the count is the server's own).
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from uihelp import Served, duck

from tests.support.wait import wait_until

STOPPED = re.compile(r"GET /api/patterns stopped: the client went away after ([\d,]+) records")


def _lines_of(served: Served) -> list[str]:
    """The server's stderr lines as they come (read by a thread, so the test never blocks on it)."""
    lines: list[str] = []
    stream = served.proc.stderr
    assert stream is not None

    def read() -> None:
        for line in stream:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_patterns_request_stops_when_its_client_goes(ui_data: dict[str, Any], serve: Callable[..., Served]) -> None:
    served = serve("--archive", str(ui_data["archive"]), env={"LOGPIPE_FAILPOINTS": "ui-pattern-record=0.01"})
    said = _lines_of(served)
    where = urllib.parse.urlsplit(served.url)
    assert where.hostname is not None and where.port is not None
    with socket.create_connection((where.hostname, where.port), timeout=10) as client:
        client.sendall(f"GET /api/patterns?from=1 HTTP/1.1\r\nHost: {where.hostname}\r\n\r\n".encode())
        time.sleep(1.0)  # the server is mining (3,000 records at 10 ms each)
    found = wait_until("the server to stop mining for the departed client", lambda: _stopped(said), timeout_s=25)
    ((records,),) = duck(ui_data["archive"], "SELECT count(*) FROM logs")
    assert found is not None and 0 < found < records, said
    assert served.proc.poll() is None  # still serving


def _stopped(lines: list[str]) -> int | None:
    for line in lines:
        match = STOPPED.search(line)
        if match:
            return int(match.group(1).replace(",", ""))
    return None
