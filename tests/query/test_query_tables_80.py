"""Tables at 80 columns: one line a row, keys and numbers whole (#20 item 17).

The real CLI (a subprocess, COLUMNS=80) draws `query errors` (with and without `--stack`),
`retention plan` and `sql` over the generated archive; every line must fit 80 cells, every row
be one line, and the key columns read whole, compared with plain Python over the records
(`qexpected.errors`) or, for retention, with the same plan as JSON.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from qdata import Generated, iso
from qexpected import errors

from tests.support.cli import run_cli

WIDTH = 80


def lines_fit(text: str) -> list[str]:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > WIDTH]
    assert too_wide == [], "lines wider than 80 columns"
    return lines


def body_rows(lines: list[str]) -> list[list[str]]:
    """The cells of each row line of a boxed table (detail lines, indented under a row, left out)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("┡"))
    end = next(i for i, line in enumerate(lines) if line.startswith("└"))
    rows = [line for line in lines[start + 1 : end] if not line.startswith("│   ")]
    return [[c.strip() for c in line.split("│")[1:-1]] for line in rows]


def header(lines: list[str]) -> list[str]:
    first = next(line for line in lines if line.startswith("┃"))
    return [c.strip() for c in first.split("┃")[1:-1]]


def short(moment: datetime) -> str:
    return moment.strftime("%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def whole_or_cut(cell: str, text: str) -> bool:
    return cell == text or (cell.endswith("…") and text.startswith(cell[:-1]) and len(cell) > 4)


def window(generated: Generated) -> tuple[datetime, datetime, list[str]]:
    since, until = generated.now - timedelta(hours=48), generated.now
    return since, until, ["--since", iso(since), "--until", iso(until)]


def test_errors_is_one_line_a_group_with_its_numbers_and_times_whole(generated: Generated) -> None:
    since, until, args = window(generated)
    expected = errors(generated.records, since, until)
    assert len({short(g["first_seen"])[:5] for g in expected}) > 1, "the groups should span days"
    result = run_cli("query", "errors", "--archive", str(generated.archive), *args, columns=WIDTH)
    assert result.code == 0, result.err
    lines = lines_fit(result.out)
    names = header(lines)
    assert names[:4] == ["message_key", "count", "first_seen", "last_seen"]
    rows = body_rows(lines)
    assert len(rows) == len(expected)
    for cells in rows:
        count, first, last = cells[1:4]
        (group,) = [g for g in expected if (short(g["first_seen"]), short(g["last_seen"])) == (first, last)]
        assert count == f"{group['count']:,}"
        assert whole_or_cut(cells[0], group["message_key"]), cells[0]
    # --wide: the same one line a group, the rest of each group below it, still within 80.
    wide = run_cli("query", "errors", "--archive", str(generated.archive), *args, "--wide", columns=WIDTH)
    wide_lines = lines_fit(wide.out)
    assert len(body_rows(wide_lines)) == len(expected)
    for group in expected:
        assert f"top_services: {group['top_services']}"[: WIDTH - 6] in wide.out


def test_errors_stack_prints_each_trace_below_its_group(generated: Generated) -> None:
    since, until, args = window(generated)
    expected = errors(generated.records, since, until)
    traced = [g for g in expected if g["sample_error"]]
    assert traced, "no group has a stack trace: the test would prove nothing"
    result = run_cli("query", "errors", "--archive", str(generated.archive), *args, "--stack", columns=WIDTH)
    assert result.code == 0, result.err
    lines = lines_fit(result.out)
    assert len(body_rows(lines)) == len(expected)
    details = [line[4:-2].rstrip() for line in lines if line.startswith("│   ")]
    for group in traced:
        for part in group["sample_error"].splitlines():
            assert ("  " + part)[: WIDTH - 6].rstrip() in details
    # Only the traces add lines: the table, a line a group, and each trace's lines (and its name).
    top = next(i for i, line in enumerate(lines) if line.startswith("┏"))
    bottom = next(i for i, line in enumerate(lines) if line.startswith("└"))
    assert bottom - top + 1 == 4 + len(expected) + sum(1 + len(g["sample_error"].splitlines()) for g in traced)


def test_retention_plan_is_one_line_an_action_with_its_keys_whole(generated: Generated) -> None:
    args = ("retention", "plan", "--archive", str(generated.archive), "--backend", "archive")
    now = ("--now", iso(generated.now + timedelta(days=3650)))  # everything is past its age
    plan = json.loads(run_cli(*args, *now, "--format", "json", columns=WIDTH).out)
    actions: list[dict[str, Any]] = plan["actions"]
    assert len(actions) > 3
    result = run_cli(*args, *now, columns=WIDTH)
    assert result.code == 0, result.err
    lines = lines_fit(result.out)
    names = header(lines)
    rows = body_rows(lines)
    assert len(rows) == len(actions)
    assert {"level", "cutoff", "count"} <= set(names)
    assert "target" in names
    for cells in rows:
        shown = dict(zip(names, cells, strict=True))
        # The target (a partition's path) may be cut; with its level it still names one action.
        (action,) = [a for a in actions if whole_or_cut(shown["target"], a["target"]) and a["level"] == shown["level"]]
        assert shown["cutoff"] == action["cutoff"][:10]
        assert shown["count"] == f"{action['count']:,}"


def test_sql_shows_significant_digits(generated: Generated) -> None:
    result = run_cli(
        "sql",
        "SELECT 0.0217::DOUBLE AS share, 1234.56::DOUBLE AS big, 2::DOUBLE / 3 AS third",
        "--archive",
        str(generated.archive),
        columns=WIDTH,
    )
    assert result.code == 0, result.err
    rows = body_rows(lines_fit(result.out))
    assert rows == [["0.0217", "1,234.6", "0.667"]]
