"""`logpipe retention plan|apply|export`: level-based retention (library in logpipe.retention)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from logpipe.cli.app import app
from logpipe.words import counted

if TYPE_CHECKING:
    from logpipe.retention.policy import Policy
    from logpipe.retention.run import Report

retention_app = typer.Typer(
    help="Delete logs past their level's age: archive, Elasticsearch/OpenSearch, Loki.", no_args_is_help=True
)
app.add_typer(retention_app, name="retention")

PolicyOpt = Annotated[
    Path | None,
    typer.Option(
        "--policy", help="Retention policy file (YAML); default: the policy shipped with logpipe.", show_default=False
    ),
]
ArchiveOpt = Annotated[
    Path | None,
    typer.Option("--archive", help="Archive folder (overrides the policy's archive.path).", show_default=False),
]
BackendOpt = Annotated[str, typer.Option("--backend", help="archive, es, loki or all (the policy's `enforce` list).")]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Pretend it is this time (ISO 8601 or 3d = three days ago): time travel for checks."),
]
FormatOpt = Annotated[str, typer.Option("--format", help="table or json.")]
WideOpt = Annotated[
    bool, typer.Option("--wide", help="Table: print what a row's line cuts or leaves out in full below it.")
]


def _load(path: Path | None, archive: Path | None = None) -> Policy:
    from logpipe.retention.policy import default_policy_path, load, with_archive

    policy = load(path if path is not None else default_policy_path())
    if archive is not None:
        policy = with_archive(policy, archive)
    for warning in policy.warnings:
        sys.stderr.write(f"warning: {warning}\n")
    return policy


def _now(text: str | None) -> datetime:
    from logpipe.read.timeexpr import parse_time, utc_now

    return utc_now() if text is None else parse_time(text, now=utc_now())


def _check(backend: str, fmt: str | None = None) -> None:
    from logpipe.errors import UsageError

    if backend not in ("all", "archive", "es", "loki"):
        raise UsageError(f"--backend is one of archive, es, loki, all (not {backend!r})")
    if fmt is not None and fmt not in ("table", "json"):
        raise UsageError(f"--format is table or json (not {fmt!r})")


@retention_app.command("plan")
def plan_cmd(
    policy_file: PolicyOpt = None,
    archive: ArchiveOpt = None,
    backend: BackendOpt = "all",
    now: NowOpt = None,
    fmt: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """What would be deleted now: per backend, target, level and cutoff, with counts and sizes."""
    from logpipe.retention.run import plan

    _check(backend, fmt)
    policy = _load(policy_file, archive)
    _warn_if_nothing_enforced(policy, backend)
    moment = _now(now)
    report = plan(policy, moment, backend)
    _print(report, moment, fmt, wide=wide)
    _exit(1 if report.failed else 0)


@retention_app.command("apply")
def apply_cmd(
    policy_file: PolicyOpt = None,
    archive: ArchiveOpt = None,
    backend: BackendOpt = "all",
    now: NowOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and write would-delete audit lines to stderr; delete nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation (nightly jobs).")] = False,
    fmt: FormatOpt = "table",
    wide: WideOpt = False,
) -> None:
    """Delete what the plan lists. Exit 0: all done; 1: some action failed (the rest done); 2: bad policy."""
    from logpipe.archive import access
    from logpipe.errors import UsageError
    from logpipe.retention.run import apply, plan

    _check(backend, fmt)
    policy = _load(policy_file, archive)
    _warn_if_nothing_enforced(policy, backend)
    moment = _now(now)
    if not yes and not dry_run:
        if not sys.stdin.isatty():
            raise UsageError("retention apply deletes data: pass --yes (or --dry-run to see what it would do)")
        _print(plan(policy, moment, backend), moment, fmt, wide=wide)
        typer.confirm("Delete all of the above?", abort=True)
    # Its audit and lock files are readable as the archive's folder says.
    umask = access.follow(policy.archive) if policy.archive is not None else None
    try:
        report = apply(policy, moment, backend, dry_run=dry_run)
    finally:
        if umask is not None:
            os.umask(umask)
    _print(report, moment, fmt, applied=not dry_run, wide=wide)
    _exit(report.exit_code)


@retention_app.command("export")
def export_cmd(
    target: Annotated[str, typer.Option("--target", help="ilm (Elasticsearch), ism (OpenSearch) or loki.")],
    policy_file: PolicyOpt = None,
) -> None:
    """Print the server-side equivalent of the policy: ILM + index templates, ISM, or Loki retention_stream."""
    from logpipe.errors import UsageError
    from logpipe.retention.export import TARGETS, export

    if target not in TARGETS:
        raise UsageError(f"--target is one of {', '.join(TARGETS)} (not {target!r})")
    policy = _load(policy_file)
    text, warnings = export(policy, target)
    for warning in warnings:
        sys.stderr.write(f"warning: {warning}\n")
    typer.echo(text, nl=False)


def _warn_if_nothing_enforced(policy: Policy, backend: str) -> None:
    from logpipe.retention.run import nothing_enforced

    reason = nothing_enforced(policy, backend)
    if reason is not None:
        sys.stderr.write(f"warning: {reason}\n")


def _print(report: Report, now: datetime, fmt: str, *, applied: bool = False, wide: bool = False) -> None:
    if fmt == "json":
        import json

        doc: dict[str, object] = {
            "now": now.isoformat().replace("+00:00", "Z"),
            "actions": [a.as_dict() for a in report.actions],
            "notes": report.notes,
        }
        if applied:
            doc.update(done=report.done, failed=report.failed, skipped=report.skipped)
        typer.echo(json.dumps(doc, indent=2))
        return
    from logpipe.read.render import print_table

    columns = ("backend", "action", "target", "level", "service", "cutoff", "count", "size", "state")
    rows = [
        (
            a.backend,
            a.kind,
            a.target if a.request is None or a.backend == "loki" else f"{a.request['method']} {a.request['path']}",
            a.level,
            a.service or "*",
            a.cutoff.strftime("%Y-%m-%d"),
            a.count,
            a.bytes,
            a.state,
        )
        for a in report.actions
    ]
    out = sys.stdout
    if rows:
        cell_text: dict[str, Callable[[Any], str]] = {"count": lambda n: "?" if n is None else f"{n:,}", "size": _size}
        title = f"retention at {now.isoformat(timespec='seconds')}"
        print_table(columns, rows, out, title=title, formatters=cell_text, wide=wide)
    for note in report.notes:
        out.write(f"note: {note}\n")
    summary = counted(len(report.actions), "action")
    if applied:
        summary += f": {report.done} done, {report.failed} failed, {report.skipped} skipped (already pending)"
    elif report.failed:
        summary += f"; {counted(report.failed, 'backend')} could not be planned"
    out.write(summary + "\n")


def _exit(code: int) -> None:
    """sys.exit, not typer.Exit: the root runs click with standalone_mode=False, which turns
    typer.Exit into a return value that main() does not pass on, so the code would be lost."""
    sys.stdout.flush()
    sys.exit(code)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
