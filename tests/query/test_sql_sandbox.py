"""`logpipe sql` and every archive connection read the archive and nothing else (issue #12, item 10).

No other file (`/proc/self/environ`, `/etc/passwd`, a file beside the archive), no extension
downloaded or loaded, no setting changed back, nothing written: each attempt is one red line and
exit 2, while `SELECT count(*) FROM logs` still answers with the number of lines shipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from logpipe.archive.reader import open_archive
from tests.support.cli import run_cli as logpipe

LINES = 40


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive shipped by the real agent, and a secret file right beside it."""
    tmp = tmp_path_factory.mktemp("sandbox")
    log = tmp / "app.log"
    log.write_text(
        "".join(
            json.dumps({"asctime": "2026-11-20T10:00:00Z", "levelname": "INFO", "message": f"m{i}"}) + "\n"
            for i in range(LINES)
        )
    )
    run = logpipe("ship", "--once", str(log), "--archive", str(tmp / "archive"), "--no-progress")
    assert run.returncode == 0, run.stderr
    (tmp / "secret.txt").write_text("beside the archive")
    return tmp / "archive"


ESCAPES = {
    "environ": "SELECT * FROM read_text('/proc/self/environ')",
    "passwd": "SELECT * FROM read_csv('/etc/passwd')",
    "glob": "SELECT * FROM glob('/etc/*')",
    "beside": "SELECT * FROM read_text('{archive}/../secret.txt')",
    "state": "SELECT * FROM read_text('{archive}/state/checkpoints.json')",
    "replacement-scan": "SELECT * FROM '/etc/passwd'",
    "sqlite-autoinstall": "SELECT * FROM sqlite_scan('{archive}/x.db', 't')",
    "install": "INSTALL sqlite",
    "attach": "ATTACH '{archive}/x.db' AS x (TYPE sqlite)",
    "set": "SET enable_external_access = true",
    "copy": "COPY (SELECT 1) TO '{archive}/../escape.csv'",
}


class TestSqlCommand:
    def test_the_archive_is_still_readable(self, archive: Path) -> None:
        run = logpipe("sql", "SELECT count(*) AS n FROM logs", "--archive", str(archive), "--format", "json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [{"n": LINES}]

    @pytest.mark.parametrize("case", sorted(ESCAPES))
    def test_an_escape_is_one_red_line(self, archive: Path, case: str) -> None:
        statement = ESCAPES[case].format(archive=archive)
        run = logpipe("sql", statement, "--archive", str(archive), "--format", "csv")
        assert run.returncode == 2, (run.stdout, run.stderr)
        assert run.stdout == ""
        assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr
        assert "automatically install" not in run.stderr  # no download was even tried
        assert not (archive.parent / "escape.csv").exists()


class TestConnection:
    """The connection itself is confined, not only the SELECT-only door of `logpipe sql`."""

    @pytest.mark.parametrize("case", sorted(ESCAPES))
    def test_every_escape_fails_on_the_connection(self, archive: Path, case: str) -> None:
        con = open_archive(archive)
        try:
            with pytest.raises(duckdb.Error):
                con.execute(ESCAPES[case].format(archive=archive)).fetchall()
            assert con.execute("SELECT count(*) FROM logs").fetchone() == (LINES,)
        finally:
            con.close()

    def test_settings_are_locked(self, archive: Path) -> None:
        con = open_archive(archive)
        try:
            for setting in (
                "enable_external_access",
                "autoinstall_known_extensions",
                "autoload_known_extensions",
                "lock_configuration",
            ):
                with pytest.raises(duckdb.Error):
                    con.execute(f"SET {setting} = {'false' if setting == 'lock_configuration' else 'true'}")
            with pytest.raises(duckdb.Error):
                con.execute("SET allowed_directories = ['/']")
            with pytest.raises(duckdb.Error):
                con.execute("RESET enable_external_access")
            values = dict(
                con.execute(
                    "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', "
                    "'autoinstall_known_extensions', 'autoload_known_extensions', 'lock_configuration')"
                ).fetchall()
            )
            assert values == {
                "enable_external_access": "false",
                "autoinstall_known_extensions": "false",
                "autoload_known_extensions": "false",
                "lock_configuration": "true",
            }
        finally:
            con.close()

    def test_canned_queries_and_exports_run_confined(self, archive: Path, tmp_path: Path) -> None:
        """The query API and export use the same confined connection and still work."""
        import pyarrow.parquet as pq

        import logpipe.query as q
        from logpipe.read.archive_sql import connect

        con = connect(archive)
        try:
            with pytest.raises(duckdb.Error):
                con.execute("SELECT * FROM read_text('/proc/self/environ')").fetchall()
            assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
        finally:
            con.close()
        table = q.run("dead_letters", archive, {"since": "2026-11-01T00:00:00Z"})
        assert table.num_rows == 0
        out = tmp_path / "e.parquet"
        run = logpipe(
            "export",
            "--since",
            "2026-11-20T00:00:00Z",
            "--until",
            "2026-11-21T00:00:00Z",
            "--archive",
            str(archive),
            "--out",
            str(out),
        )
        assert run.returncode == 0, run.stderr
        assert pq.read_metadata(out).num_rows == LINES
