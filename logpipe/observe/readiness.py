"""When the agent counts as alive (`/health`) and as ready (`/ready`): pure rules over a snapshot.

Alive means the event loop turns: a heartbeat task stamps it every `HEARTBEAT_S`, and a stamp
older than `STALE_AFTER_S` means the process is wedged and a restart is the cure. A sink that is
down does not make the agent unhealthy: restarting cannot bring a server back, and the agent is
doing the right thing (waiting, reading nothing more, losing nothing).

Ready means the agent is doing its job now: its sources are open, every sink's last request
succeeded, no local write (archive, checkpoints) waits for disk space, and it is not stuck,
that is, data is waiting and nothing (no flush, no successful request) has moved for
`stuck_after_s`. A fresh flush of a large backlog to a slow but working
sink is not stuck: each successful request counts as progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HEARTBEAT_S: Final = 1.0
STALE_AFTER_S: Final = 30.0
STUCK_AFTER_FLUSH_INTERVALS: Final = 10
STUCK_AFTER_MIN_S: Final = 30.0


def stuck_after_s(flush_interval_s: float) -> float:
    """How long data may wait without any progress before the agent is called stuck."""
    return max(STUCK_AFTER_MIN_S, STUCK_AFTER_FLUSH_INTERVALS * flush_interval_s)


@dataclass(frozen=True)
class Snapshot:
    started: bool  # sources open: the first discovery ran (ship) or the consumer joined (ingest)
    stopping: bool
    sinks_down: tuple[tuple[str, str], ...]  # (sink, last reason)
    waiting: bool  # records handed to the sinks and not yet flushed
    since_progress_s: float  # since the last flush or successful sink request
    stuck_after_s: float
    heartbeat_age_s: float
    disk_full: tuple[tuple[str, str, float], ...] = ()  # (store, last reason, seconds waiting for space)


def alive(snapshot: Snapshot) -> str | None:
    """None when alive, else why not."""
    if snapshot.heartbeat_age_s > STALE_AFTER_S:
        return f"event loop has not turned for {snapshot.heartbeat_age_s:.0f}s"
    return None


def not_ready(snapshot: Snapshot) -> list[str]:
    """Every reason the agent is not ready; empty when it is."""
    reasons: list[str] = []
    if not snapshot.started:
        reasons.append("starting: sources not open yet")
    if snapshot.stopping:
        reasons.append("stopping")
    reasons.extend(f"sink {name} down: {why}" if why else f"sink {name} down" for name, why in snapshot.sinks_down)
    reasons.extend(
        f"disk full: {store} waiting for space for {waited:.0f}s ({why})" for store, why, waited in snapshot.disk_full
    )
    if snapshot.waiting and snapshot.since_progress_s > snapshot.stuck_after_s:
        reasons.append(f"stuck: data waiting and nothing delivered for {snapshot.since_progress_s:.0f}s")
    return reasons
