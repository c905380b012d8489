"""DiskSpace's rules, one at a time (the real full disk is tests/ship/test_disk_full.py)."""

from __future__ import annotations

import errno
import os
import threading

import pytest

from logpipe.diskspace import DiskSpace, Full, Store
from logpipe.errors import TransientError
from logpipe.observe.readiness import Snapshot, not_ready
from logpipe.sinks.retry import RetryPolicy

QUICK = RetryPolicy(max_backoff_s=0.01)


class Flaky:
    """A write that fails with `code` `failures` times, then returns how often it was called."""

    def __init__(self, failures: int, code: int = errno.ENOSPC) -> None:
        self.failures, self.code, self.calls = failures, code, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(self.code, os.strerror(self.code), "/archive/logs/.tmp-part-1.parquet.partial")
        return self.calls


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_waits_until_the_write_succeeds(code: int) -> None:
    space = DiskSpace(wait=True, policy=QUICK)
    write = Flaky(3, code)
    assert space.retrying("archive", "3 records not written", write) == 4
    assert space.retries() == {"archive": 3, "state": 0}
    assert space.full() == {}  # written again: no longer full


def test_full_while_waiting_names_the_store_and_the_file() -> None:
    space = DiskSpace(wait=True, policy=RetryPolicy(max_backoff_s=0.2))
    seen: list[dict[Store, Full]] = []

    def write() -> None:
        seen.append(space.full())
        if len(seen) < 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/state/.tmp-checkpoints.json")

    space.retrying("state", "checkpoints not committed", write)
    assert seen[0] == {} and list(seen[2]) == ["state"]
    assert "no space left on device writing /state/.tmp-checkpoints.json" in seen[2]["state"].reason


def test_a_run_that_ends_does_not_wait() -> None:
    """wait=False (`--once`): the first ENOSPC is raised, for the person to read."""
    write = Flaky(1)
    with pytest.raises(OSError) as raised:
        DiskSpace(wait=False, policy=QUICK).retrying("archive", "x", write)
    assert raised.value.errno == errno.ENOSPC and write.calls == 1


def test_other_errors_are_not_waited_for() -> None:
    write = Flaky(1, errno.EACCES)
    with pytest.raises(PermissionError):
        DiskSpace(wait=True, policy=QUICK).retrying("archive", "x", write)
    assert write.calls == 1


def test_interrupt_ends_the_wait_with_nothing_acknowledged() -> None:
    """SIGTERM while waiting: TransientError at once (the flush acknowledges nothing)."""
    space = DiskSpace(wait=True, policy=RetryPolicy(max_backoff_s=3600))
    started = threading.Event()

    def write() -> None:
        started.set()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/archive/x")

    def stop_when_started() -> None:
        started.wait(10)
        space.interrupt()

    timer = threading.Thread(target=stop_when_started)
    timer.start()
    with pytest.raises(TransientError, match="shutting down with 5 records not written"):
        space.retrying("archive", "5 records not written", write)
    timer.join()


def test_not_ready_while_a_store_waits_for_space() -> None:
    well = Snapshot(
        started=True,
        stopping=False,
        sinks_down=(),
        waiting=True,
        since_progress_s=0.0,
        stuck_after_s=30.0,
        heartbeat_age_s=0.5,
    )
    assert not_ready(well) == []
    from dataclasses import replace

    full = replace(well, disk_full=(("archive", "no space left on device writing /a/x", 42.4),))
    assert not_ready(full) == ["disk full: archive waiting for space for 42s (no space left on device writing /a/x)"]
