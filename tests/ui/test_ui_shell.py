"""The server and the page's shell: summary, read-only, local-only, errors as one sentence."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from uihelp import Served, duck


def test_summary_counts_what_duckdb_counts(ui_server: Served, ui_data: dict[str, Any]) -> None:
    status, body = ui_server.get("/api/summary")
    assert status == 200
    ((total, first, last),) = duck(ui_data["archive"], "SELECT count(*), min(ts), max(ts) FROM logs")
    assert body["total"] == total == len(ui_data["objects"])
    assert body["first"].startswith(first.strftime("%Y-%m-%dT%H:%M:%S"))
    assert body["last"].startswith(last.strftime("%Y-%m-%dT%H:%M:%S"))
    levels = dict(duck(ui_data["archive"], "SELECT level, count(*) FROM logs GROUP BY 1"))
    assert {lv["level"]: lv["count"] for lv in body["levels"]} == levels


def test_the_page_shows_the_total(ui_server: Served, ui_data: dict[str, Any], page: Any) -> None:
    page.goto(ui_server.url)
    page.wait_for_selector("#summary[data-total]")
    shown = page.inner_text("#summary")
    assert f"{len(ui_data['objects']):,} records" in shown
    assert str(ui_data["archive"]) in shown


def test_the_favicon_is_served(ui_server: Served) -> None:
    """`/favicon.ico`, which browsers ask for on their own, is the page's icon, not a 404 (#20 item 18)."""
    with urllib.request.urlopen(ui_server.url + "favicon.ico", timeout=30) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("image/svg+xml")
        icon = response.read()
    assert icon.startswith(b"<svg") and len(icon) < 2048


def test_only_get_is_served(ui_server: Served) -> None:
    request = urllib.request.Request(ui_server.url + "api/summary", data=b"{}", method="POST")
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("POST was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 405


def test_a_foreign_host_header_is_refused(ui_server: Served) -> None:
    # A page elsewhere that rebinds its own name to 127.0.0.1 sends its own name as Host.
    request = urllib.request.Request(ui_server.url + "api/summary", headers={"Host": "evil.example:8080"})
    try:
        urllib.request.urlopen(request, timeout=30)
        raise AssertionError("a foreign Host was answered")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400


def test_missing_archive_is_one_red_line(serve: Callable[..., Served], tmp_path: Any) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "logpipe", "ui", "--archive", str(tmp_path / "none"), "--bind", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"error: no archive at {tmp_path / 'none'} (ship some logs first: logpipe ship FILE)"
    ]


def test_binds_loopback_by_default() -> None:
    from logpipe.ui.server import DEFAULT_BIND, parse_bind

    assert parse_bind(DEFAULT_BIND).host == "127.0.0.1"
    assert parse_bind(":9000").host == "127.0.0.1"
