"""The catalog: every shipped file loads, headers are strict, parameters are bound."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from qdata import Generated

import logpipe.query as q
from logpipe.errors import UsageError
from logpipe.read.catalog import (
    BUILTIN_DIR,
    bind,
    get_query,
    load_catalog,
    parse_query,
    query_dirs,
)

REPO_QUERIES = Path(__file__).resolve().parents[2] / "queries" / "sql"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _parse(text: str) -> q.Query:
    return parse_query("t", text, Path("t.sql"))


class TestShippedQueries:
    def test_every_file_in_queries_loads(self) -> None:
        """Each queries/sql/*.sql parses, and the catalog holds exactly those files."""
        files = sorted(REPO_QUERIES.glob("*.sql"))
        assert {p.stem for p in files} >= {"errors", "journey", "slow", "error_timeline"}
        for path in files:
            query = parse_query(path.stem, path.read_text(encoding="utf-8"), path)
            assert query.description and query.columns
        assert sorted(load_catalog()) == [p.stem for p in files]

    def test_package_ships_the_repository_queries(self) -> None:
        """The package's sql folder is the repository's queries/sql (one source of truth)."""
        assert BUILTIN_DIR.resolve() == REPO_QUERIES.resolve()
        assert query_dirs()[0] == BUILTIN_DIR

    @pytest.mark.parametrize("name", sorted(p.stem for p in REPO_QUERIES.glob("*.sql")))
    def test_declared_columns_are_what_the_sql_returns(self, generated: Generated, name: str) -> None:
        """The header's `columns:` is the result's column list (the documented contract)."""
        query = get_query(name)
        params: dict[str, object] = {"since": generated.now - timedelta(days=3)}
        if name == "journey":
            params["user"] = "u1"
        table = q.run(name, generated.archive, params)
        assert tuple(table.column_names) == query.columns


class TestHeader:
    def test_parses_params_types_defaults_and_help(self) -> None:
        query = _parse(
            "-- description: d\n"
            "-- param since: time = 1h -- start\n"
            "-- param who: string\n"
            "-- param by: choice(a|b) = b\n"
            "-- param n: int = null\n"
            "-- columns: x, y\n"
            "SELECT $since AS x, $who || $by || $n AS y\n"
        )
        since, who, by, n = query.params
        assert (since.type, since.default, since.help, since.required) == ("time", "1h", "start", False)
        assert who.required and who.default is None
        assert by.choices == ("a", "b") and by.default == "b"
        assert n.default is None and not n.required
        assert query.columns == ("x", "y")
        assert query.sql.startswith("SELECT")

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("-- columns: x\nSELECT 1 AS x", "no `-- description:`"),
            ("-- description: d\nSELECT 1", "no `-- columns:`"),
            ("-- description: d\n-- colums: x\nSELECT 1", "unknown header 'colums'"),
            ("-- description: d\n-- columns: x\n-- param a: strin\nSELECT $a", "unknown type 'strin'"),
            ("-- description: d\n-- columns: x\n-- param a: int = many\nSELECT $a", "bad default for 'a'"),
            ("-- description: d\n-- columns: x\nSELECT $b", "undeclared parameter(s) b"),
            ("-- description: d\n-- columns: x\n-- param a: int = 1\nSELECT 1", "never used: a"),
            ("-- description: d\n-- columns: x\n", "no SQL"),
            ("-- description: d\n-- description: e\n-- columns: x\nSELECT 1", "given twice"),
        ],
    )
    def test_mistakes_name_the_file(self, text: str, message: str) -> None:
        with pytest.raises(UsageError, match=None) as info:
            _parse(text)
        assert message in str(info.value) and "t.sql" in str(info.value)


class TestBind:
    QUERY = parse_query(
        "t",
        "-- description: d\n-- param since: time = 1h\n-- param until: time = now\n"
        "-- param limit: int = 10\n-- param ok: bool = true\n-- param t: duration = 1s\n"
        "-- param by: choice(a|b) = a\n-- columns: x\n"
        "SELECT $since, $until, $limit, $ok, $t, $by",
        Path("t.sql"),
    )

    def test_defaults_and_conversions(self) -> None:
        values = bind(self.QUERY, {"limit": "3", "ok": "no", "t": "250ms", "by": "b"}, now=NOW)
        assert values == {
            "since": NOW - timedelta(hours=1),
            "until": NOW,
            "limit": 3,
            "ok": False,
            "t": 250.0,
            "by": "b",
        }

    @pytest.mark.parametrize(
        ("given", "message"),
        [
            ({"nope": "1"}, "has no parameter 'nope'"),
            ({"limit": "ten"}, "expects int"),
            ({"by": "c"}, "expects one of a, b"),
            ({"since": "yesterday"}, "bad time expression"),
            ({"since": "1h", "until": "2h"}, "must be before"),
        ],
    )
    def test_bad_values_are_usage_errors(self, given: dict[str, object], message: str) -> None:
        with pytest.raises(UsageError, match=message):
            bind(self.QUERY, given, now=NOW)

    def test_required_parameter(self) -> None:
        query = _parse("-- description: d\n-- param who: string\n-- columns: x\nSELECT $who AS x")
        with pytest.raises(UsageError, match="needs --param who=VALUE"):
            bind(query, {}, now=NOW)


HOSTILE = [
    "'; DROP VIEW logs; --",
    "u1' OR '1'='1",
    'u1"; SELECT * FROM dead_letters; --',
    "$user",
]


class TestHostileValuesAreInert:
    @pytest.mark.parametrize("value", HOSTILE)
    def test_journey_user(self, generated: Generated, value: str) -> None:
        """A hostile user id matches nothing and the archive's views survive."""
        since = generated.now - timedelta(days=3)
        assert q.journey(generated.archive, user=value, since=since).num_rows == 0
        assert q.journey(generated.archive, user="u1", since=since).num_rows > 0

    @pytest.mark.parametrize("value", HOSTILE)
    def test_user_query_param(self, generated: Generated, tmp_path: Path, value: str) -> None:
        """A user's query gets the value back verbatim: it was bound, not spliced into SQL."""
        (tmp_path / "echo.sql").write_text(
            "-- description: echo a value and count records\n-- param v: string\n"
            "-- columns: v, records\nSELECT $v AS v, (SELECT count(*) FROM logs) AS records\n"
        )
        table = q.run("echo", generated.archive, {"v": value}, queries=tmp_path)
        assert table.to_pylist() == [{"v": value, "records": len(generated.records)}]


class TestUserQueries:
    def test_user_folder_adds_and_shadows(self, generated: Generated, tmp_path: Path) -> None:
        """--queries DIR (or LOGPIPE_QUERIES) is searched before the built-ins."""
        (tmp_path / "sql").mkdir()
        (tmp_path / "sql" / "levels.sql").write_text(
            "-- description: records per level\n-- columns: level, n\n"
            "SELECT level, count(*) AS n FROM logs GROUP BY level ORDER BY level\n"
        )
        (tmp_path / "sql" / "errors.sql").write_text(
            "-- description: shadowed\n-- param since: time = 1h\n-- param until: time = now\n"
            "-- param service: string = null\n-- columns: message_key\n"
            "SELECT 'mine' AS message_key WHERE $since < $until AND $service IS NULL\n"
        )
        catalog = load_catalog(tmp_path)
        assert catalog["levels"].path.parent == tmp_path / "sql"
        assert catalog["errors"].description == "shadowed"
        assert "slow" in catalog
        levels = q.run("levels", generated.archive, queries=tmp_path).to_pylist()
        want: dict[str, int] = {}
        for rec in generated.records:
            want[rec["level"]] = want.get(rec["level"], 0) + 1
        assert {r["level"]: r["n"] for r in levels} == want

    def test_env_variable(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (tmp_path / "mine.sql").write_text("-- description: m\n-- columns: x\nSELECT 1 AS x\n")
        monkeypatch.setenv("LOGPIPE_QUERIES", str(tmp_path))
        assert "mine" in load_catalog()

    def test_unknown_query_lists_the_known(self) -> None:
        with pytest.raises(UsageError, match=r"unknown query 'nope' \(known: .*errors"):
            get_query("nope")

    def test_missing_folder(self, tmp_path: Path) -> None:
        with pytest.raises(UsageError, match="no queries folder"):
            load_catalog(tmp_path / "absent")
