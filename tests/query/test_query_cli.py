"""`logpipe query ...` and `logpipe export` through the real entry point (error edge included)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qexpected as expected
from qdata import Generated, iso


def _since(gen: Generated, hours: float = 48) -> list[str]:
    return ["--since", iso(gen.now - timedelta(hours=hours)), "--until", iso(gen.now)]


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class TestErrorsCommand:
    def test_json_rows_match_plain_python(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "errors", "--archive", str(generated.archive), *_since(generated), "--format", "json")
        assert res.code == 0, res.err
        rows = json.loads(res.out)
        want = expected.errors(generated.records, generated.now - timedelta(hours=48), generated.now)
        assert [(r["message_key"], r["count"]) for r in rows] == [(w["message_key"], w["count"]) for w in want]
        assert list(rows[0]) == [
            "message_key",
            "count",
            "first_seen",
            "last_seen",
            "sample_message",
            "top_endpoints",
            "top_services",
            "sample_error",
        ]
        assert rows[0]["first_seen"].endswith("Z") and _ts(rows[0]["first_seen"]) == want[0]["first_seen"]

    def test_relative_window(self, cli: Any, generated: Generated) -> None:
        """`--since 1h` means the last hour before now (records avoid the edge by 3 minutes)."""
        res = cli("query", "errors", "--archive", str(generated.archive), "--since", "1h", "--format", "ndjson")
        now = datetime.now(UTC)
        want = expected.errors(generated.records, now - timedelta(hours=1), now)
        if not want:
            assert res.code == 0 and res.out == "" and res.err == ""  # #13: empty is not an error
            return
        rows = [json.loads(line) for line in res.out.splitlines()]
        assert [(r["message_key"], r["count"]) for r in rows] == [(w["message_key"], w["count"]) for w in want]

    def test_table_has_histogram_above_it(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "errors", "--archive", str(generated.archive), *_since(generated, 30))
        assert res.code == 0, res.err
        total = sum(expected.error_timeline(generated.records, generated.now - timedelta(hours=30), generated.now, 40))
        first, chart = res.out.splitlines()[0], res.out.split("\n\n")[0]
        assert first.startswith("errors per 45m,") and f"{total} in all" in first
        assert "┤" in chart and "█" in chart
        assert res.out.index("┤") < res.out.index("message_key")

    def test_stack_traces_only_with_stack(self, cli: Any, generated: Generated) -> None:
        """The table leaves the multi-line traces out unless asked; json always has them."""
        args = ("query", "errors", "--archive", str(generated.archive), *_since(generated))
        plain, stacked = cli(*args), cli(*args, "--stack")
        assert plain.code == stacked.code == 0, (plain.err, stacked.err)
        assert "Traceback" not in plain.out and "sample_error" not in plain.out
        assert "sample_error" in stacked.out and "Traceback" in stacked.out
        rows = json.loads(cli(*args, "--format", "json").out)
        want = expected.errors(generated.records, generated.now - timedelta(hours=48), generated.now)
        assert [r["sample_error"] for r in rows] == [w["sample_error"] for w in want]

    def test_csv(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "errors", "--archive", str(generated.archive), *_since(generated), "--format", "csv")
        rows = list(csv.DictReader(io.StringIO(res.out)))
        want = expected.errors(generated.records, generated.now - timedelta(hours=48), generated.now)
        assert [int(r["count"]) for r in rows] == [w["count"] for w in want]


class TestJourneyCommand:
    def test_json_matches_plain_python(self, cli: Any, generated: Generated) -> None:
        res = cli(
            "query",
            "journey",
            "--user",
            "u2",
            "--archive",
            str(generated.archive),
            *_since(generated),
            "--format",
            "json",
        )
        assert res.code == 0, res.err
        want = expected.journey(generated.records, generated.now - timedelta(hours=48), generated.now, user="u2")
        rows = json.loads(res.out)
        assert [(_ts(r["ts"]), r["request_id"], r["user_id"], r["message"]) for r in rows] == [
            (w[0], w[2], w[3], w[10]) for w in want
        ]

    def test_table_title_counts(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "journey", "--user", "u2", "--archive", str(generated.archive), *_since(generated))
        want = expected.journey(generated.records, generated.now - timedelta(hours=48), generated.now, user="u2")
        assert res.code == 0 and f"journey of user u2: {len(want)} records" in res.out

    def test_needs_a_subject(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "journey", "--archive", str(generated.archive))
        assert res.code == 2 and res.err.strip() == "error: journey needs exactly one of --user, --session or --request"


class TestJourneyReadsAtNarrowWidths:
    """#13: the journey table is sessions → requests → records: headings, then one line a record."""

    @staticmethod
    def _headings(rows: list[dict[str, Any]], width: int) -> list[str]:
        """The session and request headings the table should print, worked out here from the JSON rows:
        a request's heading names its access line's method and endpoint, cut to the width."""
        endpoint: dict[Any, str] = {}
        for r in rows:
            if r["request_id"] is not None and r["endpoint"] and r["request_id"] not in endpoint:
                endpoint[r["request_id"]] = " ".join(x for x in (r["method"], r["endpoint"]) if x)
        want: list[str] = []
        last: tuple[Any, Any] | None = None
        for r in rows:
            session, request = r["session_id"], r["request_id"]
            if last is None or session != last[0]:
                want.append(f"session {session}" if session is not None else "(no session)")
            if last is None or (session, request) != last:
                line = f"  request {request}" if request is not None else "  (no request)"
                if request in endpoint:
                    line += f"  {endpoint[request]}"
                want.append(line if len(line) <= width else line[: width - 1] + "…")
            last = (session, request)
        return want

    @staticmethod
    def _shows_message(line: str, message: str) -> bool:
        """The line ends with the message, or with a cut of it (at least 10 characters) and `…`."""
        text = message.replace("\n", "⏎ ")
        if line.endswith(text.rstrip()):
            return True
        if not line.endswith("…"):
            return False
        return any(line[:-1].endswith(text[:k].rstrip()) for k in range(len(text), min(len(text), 10) - 1, -1))

    @pytest.mark.parametrize("width", [80, 120])
    def test_headings_and_one_line_a_record(
        self, cli: Any, monkeypatch: pytest.MonkeyPatch, generated: Generated, width: int
    ) -> None:
        monkeypatch.setenv("COLUMNS", str(width))
        args = ("query", "journey", "--user", "u2", "--archive", str(generated.archive), *_since(generated))
        table = cli(*args)
        assert table.code == 0, table.err
        lines = table.out.splitlines()
        too_wide = [line for line in lines if len(line) > width]
        assert not too_wide, too_wide[:3]
        rows = json.loads(cli(*args, "--format", "json").out)
        assert rows and any(r["request_id"] is not None for r in rows)
        assert lines[0].startswith(f"journey of user u2: {len(rows)} records")
        headings = [line for line in lines[1:] if not line.startswith("    ")]
        assert headings == self._headings(rows, width)
        header, *records = [line for line in lines[1:] if line.startswith("    ")]
        assert header.split()[:2] == ["ts", "level"] and "message" in header.split()
        assert "session_id" not in header and "request_id" not in header and "user_id" not in header
        assert len(records) == len(rows)  # every record once, in the JSON's order
        for line, row, time in zip(records, rows, _short([r["ts"] for r in rows]), strict=True):
            assert line.startswith(f"    {time}  "), (line, time)
            assert str(row["level"]) in line.split(), (line, row["level"])
            assert self._shows_message(line, row["message"]), (line, row["message"])
        if width >= 120:  # room for the endpoint too (at 80 it is left out, as `logpipe search` leaves out path)
            assert "endpoint" in header.split()
            for line, row in zip(records, rows, strict=True):
                assert row["endpoint"] is None or row["endpoint"] in line.split(), (line, row["endpoint"])


class TestSlowCommand:
    def test_json_matches_plain_python(self, cli: Any, generated: Generated) -> None:
        res = cli(
            "query",
            "slow",
            "--archive",
            str(generated.archive),
            *_since(generated),
            "--threshold",
            "300ms",
            "--format",
            "json",
        )
        assert res.code == 0, res.err
        want = expected.slow(generated.records, generated.now - timedelta(hours=48), generated.now, 300.0)
        rows = json.loads(res.out)
        assert [r["key"] for r in rows] == [w["key"] for w in want]
        assert [r["p95_ms"] for r in rows] == pytest.approx([w["p95_ms"] for w in want])

    def test_by_service_table(self, cli: Any, generated: Generated) -> None:
        res = cli(
            "query",
            "slow",
            "--archive",
            str(generated.archive),
            *_since(generated),
            "--threshold",
            "0",
            "--by",
            "service",
        )
        assert res.code == 0 and "service" in res.out and "%" in res.out


class TestCatalogCommands:
    def test_list(self, cli: Any) -> None:
        res = cli("query", "list", "--format", "json")
        names = [r["name"] for r in json.loads(res.out)]
        assert {"errors", "journey", "slow"} <= set(names)

    def test_list_takes_archive_like_every_query_command(self, cli: Any, generated: Generated) -> None:
        """`query list --archive DIR` (as `query errors --archive DIR`) lists the catalog, not "No such option" (#20 item 18)."""
        res = cli("query", "list", "--format", "json", "--archive", str(generated.archive), "--backend", "archive")
        assert res.code == 0, res.err
        assert json.loads(res.out) == json.loads(cli("query", "list", "--format", "json").out)

    @pytest.mark.parametrize("name", ["errors", "journey", "slow"])
    def test_since_help_names_the_querys_default(self, cli: Any, name: str) -> None:
        """`--since` says its default, the one in the query's own file (#20 item 18)."""
        from logpipe.read.catalog import load_catalog

        (since,) = [p for p in load_catalog(None)[name].params if p.name == "since"]
        res = cli("query", name, "--help")
        assert res.code == 0 and since.default
        assert f"(default: {since.default})" in " ".join(res.out.replace("│", " ").split())

    def test_named_query_with_params(self, cli: Any, generated: Generated, tmp_path: Path) -> None:
        (tmp_path / "by_level.sql").write_text(
            "-- description: records of one level\n-- param level: string\n-- param since: time = 7d\n"
            "-- columns: level, n\nSELECT level, count(*) AS n FROM logs WHERE level = $level AND ts >= $since "
            "GROUP BY level\n"
        )
        res = cli(
            "query",
            "by_level",
            "--param",
            "level=WARNING",
            "--since",
            "30d",
            "--queries",
            str(tmp_path),
            "--archive",
            str(generated.archive),
            "--format",
            "json",
        )
        assert res.code == 0, res.err
        assert json.loads(res.out) == [
            {"level": "WARNING", "n": sum(1 for r in generated.records if r["level"] == "WARNING")}
        ]

    def test_table_drops_columns_no_row_fills(self, cli: Any, generated: Generated, tmp_path: Path) -> None:
        """#13: a table shows only columns with something in them; machine formats keep them all."""
        (tmp_path / "with_empty.sql").write_text(
            "-- description: levels and an empty column\n-- columns: level, nothing, n\n"
            "SELECT level, CAST(NULL AS VARCHAR) AS nothing, count(*) AS n FROM logs GROUP BY level ORDER BY level\n"
        )
        given = ("query", "with_empty", "--queries", str(tmp_path), "--archive", str(generated.archive))
        table = cli(*given)
        assert table.code == 0, table.err
        header = next(line for line in table.out.splitlines() if line.startswith("┃"))
        assert "level" in header and "n" in header.split("┃")[-2] and "nothing" not in header
        as_json = json.loads(cli(*given, "--format", "json").out)
        assert as_json and all(row["nothing"] is None for row in as_json)

    def test_named_builtin(self, cli: Any, generated: Generated) -> None:
        res = cli(
            "query",
            "error_timeline",
            "-p",
            "buckets=5",
            *_since(generated),
            "--archive",
            str(generated.archive),
            "--format",
            "csv",
        )
        assert res.code == 0, res.err
        counts = [int(r["count"]) for r in csv.DictReader(io.StringIO(res.out))]
        assert counts == expected.error_timeline(
            generated.records, generated.now - timedelta(hours=48), generated.now, 5
        )


class TestCleanErrors:
    """Each failure is one line on stderr and a non-zero exit; a traceback only with --debug."""

    @pytest.mark.parametrize(
        ("args", "code", "message"),
        [
            (["query", "errors", "--since", "yesterday"], 2, "bad time expression 'yesterday'"),
            (["query", "slow", "--threshold", "fast"], 2, "bad duration 'fast'"),
            (["query", "slow", "--by", "host"], 2, "expects one of endpoint, service"),
            (["query", "errors", "--format", "xml"], 2, "unknown format 'xml'"),
            (["query", "error_timeline", "--param", "bogus=1"], 2, "has no parameter 'bogus'"),
            (["query", "error_timeline", "--param", "bogus"], 2, "--param expects k=v"),
            (["query", "nope"], 2, "unknown query 'nope'"),
            (["query", "errors", "--since", "1h", "--until", "2h"], 2, "must be before"),
        ],
    )
    def test_usage_errors(self, cli: Any, generated: Generated, args: list[str], code: int, message: str) -> None:
        res = cli(*args, "--archive", str(generated.archive))
        assert res.code == code, res.err
        assert message in res.err and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
        assert res.out == ""

    def test_click_usage_error_is_one_line(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "slow", "--no-such-option", "--archive", str(generated.archive))
        assert res.code == 2 and "No such option" in res.err and "Traceback" not in res.err

    def test_missing_archive(self, cli: Any, tmp_path: Path) -> None:
        res = cli("query", "errors", "--archive", str(tmp_path / "nowhere"))
        assert res.code == 1 and res.err.startswith("error: no archive at") and len(res.err.splitlines()) == 1

    def test_empty_result(self, cli: Any, generated: Generated) -> None:
        res = cli(
            "query",
            "errors",
            "--archive",
            str(generated.archive),
            "--since",
            "2001-01-01",
            "--until",
            "2001-01-02",
            "--format",
            "json",
        )
        # #13: an empty result is not an error: `[]` and exit 0 (it was one red line and exit 1).
        assert (res.code, json.loads(res.out), res.err) == (0, [], "")
        for fmt, out in (
            ("csv", "message_key,count,first_seen,last_seen,sample_message,top_endpoints,top_services,sample_error\n"),
            ("ndjson", ""),
        ):
            res = cli(
                "query",
                "errors",
                "--archive",
                str(generated.archive),
                "--since",
                "2001-01-01",
                "--until",
                "2001-01-02",
                "--format",
                fmt,
            )
            assert (res.code, res.out, res.err) == (0, out, "")
        res = cli(
            "query", "errors", "--archive", str(generated.archive), "--since", "2001-01-01", "--until", "2001-01-02"
        )
        assert (res.code, res.err) == (0, "")
        assert res.out == "no ERROR or CRITICAL records from 2001-01-01 00:00:00 to 2001-01-02 00:00:00 UTC\n"

    def test_empty_journey(self, cli: Any, generated: Generated) -> None:
        res = cli("query", "journey", "--user", "nobody", "--archive", str(generated.archive))
        assert res.code == 0 and res.err == "" and res.out.startswith("no records for user 'nobody'")
        res = cli("query", "journey", "--user", "nobody", "--archive", str(generated.archive), "--format", "json")
        assert (res.code, json.loads(res.out)) == (0, [])

    def test_debug_shows_the_traceback(self, cli: Any, generated: Generated) -> None:
        with pytest.raises(Exception, match="bad time expression"):
            cli("--debug", "query", "errors", "--since", "yesterday", "--archive", str(generated.archive))


def _short(texts: list[str | None]) -> list[str]:
    """The table's time cells, worked out here from the JSON: time of day, `MM-DD ` in front over days."""
    times = [_ts(t) for t in texts if t is not None]
    many_days = len({t.date() for t in times}) > 1
    return [
        t.strftime("%m-%d " if many_days else "") + t.strftime("%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
        for t in times
    ]


def _column(table: str, name: str) -> tuple[list[str], list[str]]:
    """The header lines and the non-blank body cells of column `name` in a boxed table."""
    header = [line.split("┃")[1:-1] for line in table.splitlines() if line.startswith("┃")]
    at = [cell.strip() for cell in header[0]].index(name)
    body = [line.split("│")[1:-1] for line in table.splitlines() if line.startswith("│")]
    return [h[at].strip() for h in header], [c[at].strip() for c in body if c[at].strip()]


class TestTablesFitEighty:
    """#13: query tables fit an 80-column terminal; times are short, the way the explore commands print them."""

    def _check(self, cli: Any, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], times: tuple[str, ...]) -> None:
        monkeypatch.setenv("COLUMNS", "80")
        table = cli(*args)
        assert table.code == 0, table.err
        assert "┏" in table.out
        too_wide = [line for line in table.out.splitlines() if len(line) > 80]
        assert not too_wide, too_wide[:3]
        rows = json.loads(cli(*args, "--format", "json").out)
        assert rows
        for name in times:
            header, cells = _column(table.out, name)
            want = _short([r[name] for r in rows])
            assert cells == want
            days = {_ts(r[name]).date().isoformat() for r in rows if r[name] is not None}
            # One day: the date is said once, under the column's name; over days each cell has MM-DD.
            assert (days == {header[1]}) if len(days) == 1 else (len(header) == 1 or header[1] == "")

    def test_errors(self, cli: Any, monkeypatch: pytest.MonkeyPatch, generated: Generated) -> None:
        self._check(
            cli,
            monkeypatch,
            ("query", "errors", "--archive", str(generated.archive), *_since(generated)),
            ("first_seen", "last_seen"),
        )

    def test_errors_within_one_day(self, cli: Any, monkeypatch: pytest.MonkeyPatch, generated: Generated) -> None:
        self._check(
            cli,
            monkeypatch,
            ("query", "errors", "--archive", str(generated.archive), *_since(generated, 3)),
            ("first_seen", "last_seen"),
        )

    def test_dead_letters(
        self, cli: Any, monkeypatch: pytest.MonkeyPatch, generated: Generated, tmp_path: Path
    ) -> None:
        from qdata import write_dead_letters

        letters = [
            {
                "received_at": generated.now - timedelta(hours=h, milliseconds=37 * h),
                "source": f"/var/log/app{h % 2}.log",
                "source_id": f"f{h % 2}",
                "offset": 100 * h,
                "reason": ("not_json", "too_long", "bad_ts")[h % 3],
                "detail": f"line {h}: expected a JSON object, found text",
                "raw": b"garbage " * 10,
            }
            for h in range(1, 40, 3)
        ]
        write_dead_letters(tmp_path, letters)
        self._check(
            cli,
            monkeypatch,
            ("query", "dead_letters", "--archive", str(tmp_path), *_since(generated)),
            ("first_seen", "last_seen"),
        )
