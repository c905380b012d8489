"""Plan and apply over the enforced backends: actions, the run lock, audit lines, the outcome.

A plan is a list of `Action`s, computed fresh by every backend from what is there now. Apply
recomputes the plan under the run lock (so it acts on what exists, not on a stale printout),
then performs the actions one by one: a failed action is recorded and the rest still run. Each
action performed, failed or skipped writes one JSON audit line, so a nightly job leaves a trail
that an operator can alert on (`"status": "failed"`).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import orjson

from logpipe.archive.locks import Busy, Lock
from logpipe.errors import LogpipeError, TerminalError
from logpipe.retention.policy import Policy


@dataclass(slots=True)
class Action:
    """One deletion: a partition, an index, a `_delete_by_query` or a Loki delete request."""

    backend: str
    kind: str  # drop-partition | delete-index | delete-by-query | loki-delete
    target: str
    level: str
    service: str | None
    cutoff: datetime
    count: int | None = None
    bytes: int | None = None
    state: str = "planned"  # planned | pending (Loki already has this request)
    request: dict[str, Any] | None = None
    handle: Any = field(default=None, repr=False)  # backend-private (paths, index names)
    store: str = ""  # which archive folder / engine / Loki: audit lines must say where

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend,
            "kind": self.kind,
            "target": self.target,
            "level": self.level,
            "service": self.service or "*",
            "cutoff": self.cutoff.isoformat().replace("+00:00", "Z"),
            "count": self.count,
            "bytes": self.bytes,
            "state": self.state,
        }
        if self.store:
            out["store"] = self.store
        if self.request is not None:
            out["request"] = self.request
        return out


class Backend(Protocol):
    name: str
    notes: list[str]

    def plan(self, now: datetime) -> list[Action]: ...

    def apply(self, action: Action) -> int | None:
        """Perform one action; the number of records/documents deleted when known."""
        ...

    def finish(self, now: datetime) -> None:
        """Tidy up after the actions of an apply (not a dry run)."""
        ...

    def close(self) -> None: ...


@dataclass
class Report:
    actions: list[Action]
    notes: list[str]
    failed: int = 0
    done: int = 0
    skipped: int = 0

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def backends(policy: Policy, only: str) -> list[Backend]:
    """The backends to act on: the policy's `enforce` list, narrowed by `--backend`."""
    names = list(policy.enforce) if only == "all" else [only]
    out: list[Backend] = []
    for name in names:
        if name == "archive":
            if policy.archive is None:
                raise _not_configured(policy, name)
            from logpipe.retention.archive import ArchiveBackend

            out.append(ArchiveBackend(policy))
        elif name == "es":
            if policy.es is None:
                raise _not_configured(policy, name)
            from logpipe.retention.es import EsBackend

            out.append(EsBackend(policy))
        elif name == "loki":
            if policy.loki is None or policy.loki.config is None:
                raise _not_configured(policy, name)
            from logpipe.retention.loki import LokiBackend

            out.append(LokiBackend(policy))
    return out


def nothing_enforced(policy: Policy, only: str) -> str | None:
    """Why a run over `only` would act on no backend at all (the CLI warns), or None."""
    if only == "all" and not policy.enforce:
        return f"{policy.source}: `enforce` lists no backend, so there is nothing to do"
    return None


def _not_configured(policy: Policy, name: str) -> LogpipeError:
    from logpipe.errors import UsageError

    return UsageError(f"retention policy {policy.source}: backend {name!r} has no `{name}:` section")


def plan(policy: Policy, now: datetime, only: str = "all") -> Report:
    """What each backend would delete now. A backend that cannot be reached is a failed plan."""
    actions: list[Action] = []
    notes = list(policy.warnings)
    failed = 0
    for backend in backends(policy, only):
        try:
            actions.extend(backend.plan(now))
        except LogpipeError as exc:
            failed += 1
            notes.append(f"{backend.name}: cannot plan: {exc}")
        finally:
            notes.extend(f"{backend.name}: {n}" for n in backend.notes)
            backend.close()
    return Report(actions, notes, failed=failed)


class Audit:
    """Append-only JSON lines, each fsynced: the record of what a run did."""

    def __init__(self, policy: Policy, run_id: str, *, dry_run: bool) -> None:
        self.run_id = run_id
        self.dry_run = dry_run
        self._stderr = policy.audit_stderr
        self._file: IO[bytes] | None = None
        if policy.audit_path is not None and not dry_run:
            policy.audit_path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(policy.audit_path, "ab")  # noqa: SIM115 - kept open for the run

    def write(self, event: str, **fields: Any) -> None:
        line = orjson.dumps(
            {
                "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "run": self.run_id,
                "event": event,
                "dry_run": self.dry_run,
                **fields,
            }
        )
        if self._file is not None:
            self._file.write(line + b"\n")
            self._file.flush()
            os.fsync(self._file.fileno())
        if self._stderr:
            sys.stderr.write(line.decode() + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def run_lock(path: Path) -> Lock:
    """The run's lock, not waited for: a second run fails at once instead of queueing behind the first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        held = Lock(path)
    except Busy as busy:
        raise TerminalError(f"another retention run holds {path} ({busy.holder}); not starting a second one") from None
    held.name_holder()
    return held


def apply(policy: Policy, now: datetime, only: str = "all", *, dry_run: bool = False) -> Report:
    """Plan under the lock, then act; every action gets an audit line whatever its outcome."""
    run_id = uuid.uuid4().hex[:12]
    with run_lock(policy.lock_file()):
        audit = Audit(policy, run_id, dry_run=dry_run)
        try:
            audit.write(
                "start",
                policy=str(policy.source),
                now=now.isoformat().replace("+00:00", "Z"),
                backends=list(policy.enforce) if only == "all" else [only],
            )
            report = Report([], list(policy.warnings))
            for backend in backends(policy, only):
                try:
                    _apply_backend(backend, now, audit, report, dry_run=dry_run)
                finally:
                    report.notes.extend(f"{backend.name}: {n}" for n in backend.notes)
                    backend.close()
            audit.write(
                "end", done=report.done, failed=report.failed, skipped=report.skipped, exit_code=report.exit_code
            )
        finally:
            audit.close()
    return report


def _apply_backend(backend: Backend, now: datetime, audit: Audit, report: Report, *, dry_run: bool) -> None:
    try:
        actions = backend.plan(now)
    except LogpipeError as exc:
        report.failed += 1
        audit.write("failed", backend=backend.name, kind="plan", error=str(exc))
        return
    report.actions.extend(actions)
    for action in actions:
        if action.state == "pending":
            report.skipped += 1
            audit.write("skipped", reason="an identical request is already pending", **action.as_dict())
            continue
        if dry_run:
            audit.write("would-delete", **action.as_dict())
            continue
        try:
            deleted = backend.apply(action)
        except LogpipeError as exc:
            report.failed += 1
            audit.write("failed", error=str(exc), **action.as_dict())
            continue
        report.done += 1
        fields = action.as_dict()
        if deleted is not None:
            fields["deleted"] = deleted
        audit.write("deleted", **fields)
    if not dry_run:
        backend.finish(now)
