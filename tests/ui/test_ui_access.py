"""Who may read `logpipe ui` (#20 item 7): real HTTP requests against a real `logpipe ui` process.

`--bind 0.0.0.0` used to switch the Host check off, with no warning and no authentication:
`Host: evil.example` got 200 and records (DNS rebinding). Now the Host allow-list holds on any
address (`--allow-host` adds names), credentials can be required (a token or a user and
password, from the environment or `--auth-file`, never printed), serving beyond loopback
without them prints a warning, and every answer carries a Content-Security-Policy,
`X-Frame-Options: DENY` and `X-Content-Type-Options: nosniff`; the page still works under them.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from uihelp import Served, rendered

TOKEN = "tök-3n_of-the-test-9f2c"  # not ASCII: credentials are compared as UTF-8 bytes
USER, PASSWORD = "oncall", "pässword:with:colons"
NO_CREDENTIALS = {"LOGPIPE_UI_TOKEN": "", "LOGPIPE_UI_USER": "", "LOGPIPE_UI_PASSWORD": ""}


def _port(served: Served) -> int:
    port = urllib.parse.urlsplit(served.url).port
    assert port is not None
    return port


def request(
    served: Served, path: str = "/api/summary", *, host: str | None = None, auth: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One GET to the server's port on 127.0.0.1 with exactly the Host (and Authorization) given."""
    conn = http.client.HTTPConnection("127.0.0.1", _port(served), timeout=60)
    headers = {"Host": host or f"127.0.0.1:{_port(served)}"}
    if auth is not None:
        headers["Authorization"] = auth
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _without_credentials(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment for the server: no credentials inherited, only those given."""
    return {**NO_CREDENTIALS, **(env or {})}


@pytest.fixture(scope="module")
def archive(ui_data: dict[str, Any]) -> str:
    return str(ui_data["archive"])


@pytest.fixture(scope="module")
def wildcard(serve: Callable[..., Served], archive: str) -> Served:
    """On every interface, with no credentials, as the issue's report ran it."""
    return serve("--archive", archive, "--bind", "0.0.0.0:0", env=_without_credentials())


@pytest.fixture(scope="module")
def named(serve: Callable[..., Served], archive: str) -> Served:
    """On every interface, with one more name allowed."""
    return serve(
        "--archive", archive, "--bind", "0.0.0.0:0", "--allow-host", "logs.example", env=_without_credentials()
    )


class TestHostAllowList:
    def test_a_foreign_host_is_refused_on_a_wildcard_bind(self, wildcard: Served) -> None:
        status, _, body = request(wildcard, host="evil.example")
        assert status == 400
        assert b'"total"' not in body
        status, _, _ = request(wildcard, host=f"evil.example:{_port(wildcard)}")
        assert status == 400

    @pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "logs.example", "LOGS.example"])
    def test_listed_names_are_answered(self, named: Served, ui_data: dict[str, Any], name: str) -> None:
        status, _, body = request(named, host=f"{name}:{_port(named)}")
        assert status == 200, body
        assert json.loads(body)["total"] == len(ui_data["objects"])
        assert request(named, host="evil.example")[0] == 400

    def test_only_the_localhost_names_without_allow_host(self, wildcard: Served) -> None:
        assert request(wildcard, host=f"localhost:{_port(wildcard)}")[0] == 200
        assert request(wildcard, host=f"logs.example:{_port(wildcard)}")[0] == 400

    def test_a_wildcard_address_is_not_a_name(self, wildcard: Served) -> None:
        status, _, _ = request(wildcard, host=f"0.0.0.0:{_port(wildcard)}")
        assert status == 400

    def test_a_domain_pattern(self, serve: Callable[..., Served], archive: str) -> None:
        served = serve("--archive", archive, "--allow-host", "*.example.org", env=_without_credentials())
        assert request(served, host="logs.example.org")[0] == 200
        assert request(served, host="example.org.evil.example")[0] == 400

    def test_warns_beyond_loopback_without_credentials(self, wildcard: Served) -> None:
        warning = [line for line in wildcard.started if line.startswith("warning:")]
        assert len(warning) == 1 and "without authentication" in warning[0], wildcard.started

    def test_no_warning_on_loopback(self, serve: Callable[..., Served], archive: str) -> None:
        served = serve("--archive", archive, env=_without_credentials())
        assert not [line for line in served.started if "warning" in line], served.started

    @pytest.mark.parametrize("bad", ["", "http://logs.example", "logs.example:8080", "a b"])
    def test_a_bad_allow_host_is_one_red_line(self, archive: str, bad: str) -> None:
        from tests.support.cli import run_cli

        run = run_cli("ui", "--archive", archive, "--bind", "127.0.0.1:0", "--allow-host", bad, timeout=60)
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and "--allow-host" in run.stderr


@pytest.fixture(scope="module")
def by_token(serve: Callable[..., Served], archive: str) -> Served:
    return serve("--archive", archive, "--bind", "0.0.0.0:0", env=_without_credentials({"LOGPIPE_UI_TOKEN": TOKEN}))


@pytest.fixture(scope="module")
def by_password(serve: Callable[..., Served], archive: str) -> Served:
    env = {"LOGPIPE_UI_USER": USER, "LOGPIPE_UI_PASSWORD": PASSWORD}
    return serve("--archive", archive, env=_without_credentials(env))


class TestCredentials:
    @pytest.mark.parametrize("path", ["/", "/static/app.js", "/api/summary", "/api/search?q=level%3E%3DERROR"])
    def test_nothing_without_credentials(self, by_token: Served, path: str) -> None:
        status, headers, body = request(by_token, path)
        assert status == 401
        assert headers["www-authenticate"].startswith("Basic ")  # a browser asks for them
        assert TOKEN.encode() not in body

    @pytest.mark.parametrize(
        "auth",
        [
            "Bearer wrong",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            basic("anyone", "wrong"),
            f"Basic {TOKEN}",
            "Basic not-base64!",
            f"Token {TOKEN}",
            "",
        ],
    )
    def test_wrong_credentials_are_refused(self, by_token: Served, auth: str) -> None:
        assert request(by_token, auth=auth)[0] == 401

    def test_the_token_as_bearer_or_as_a_basic_password(self, by_token: Served, ui_data: dict[str, Any]) -> None:
        status, _, body = request(by_token, auth=f"Bearer {TOKEN}")
        assert status == 200 and json.loads(body)["total"] == len(ui_data["objects"])
        assert request(by_token, auth=basic("anyone", TOKEN))[0] == 200

    def test_the_host_check_holds_with_credentials(self, by_token: Served) -> None:
        assert request(by_token, host="evil.example", auth=f"Bearer {TOKEN}")[0] == 400

    def test_no_warning_with_credentials_and_the_secret_never_printed(self, by_token: Served) -> None:
        assert not [line for line in by_token.started if "warning" in line], by_token.started
        assert request(by_token)[0] == 401
        assert by_token.proc.stderr is not None
        by_token.proc.terminate()
        printed = "".join(by_token.started) + by_token.proc.stderr.read()
        assert TOKEN not in printed

    @pytest.mark.parametrize(
        ("user", "password", "status"),
        [(USER, PASSWORD, 200), (USER, "wrong", 401), ("root", PASSWORD, 401), (USER, PASSWORD + "x", 401)],
    )
    def test_user_and_password(self, by_password: Served, user: str, password: str, status: int) -> None:
        assert request(by_password, auth=basic(user, password))[0] == status
        assert request(by_password, auth=f"Bearer {PASSWORD}")[0] == 401

    def test_from_an_auth_file(self, serve: Callable[..., Served], archive: str, tmp_path: Path) -> None:
        auth_file = tmp_path / "ui-auth.yaml"
        auth_file.write_text(f"user: {USER}\npassword: '{PASSWORD}'\n", encoding="utf-8")
        served = serve("--archive", archive, "--auth-file", str(auth_file), env=_without_credentials())
        assert request(served)[0] == 401
        assert request(served, auth=basic(USER, PASSWORD))[0] == 200

    def test_a_number_in_the_auth_file_is_refused(self, archive: str, tmp_path: Path) -> None:
        from tests.support.cli import run_cli

        auth_file = tmp_path / "ui-auth.yaml"
        auth_file.write_text("token: 0123\n", encoding="utf-8")  # YAML: the number 123, not "0123"
        run = run_cli("ui", "--archive", archive, "--auth-file", str(auth_file), env=_without_credentials(), timeout=60)
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip().splitlines() == [
            f"error: --auth-file {auth_file}: token must be text (quote it: token: '...')"
        ]

    @pytest.mark.parametrize(
        "env",
        [{"LOGPIPE_UI_USER": USER}, {"LOGPIPE_UI_PASSWORD": PASSWORD}, {"LOGPIPE_UI_TOKEN": "  "}],
        ids=["user-alone", "password-alone", "blank-token"],
    )
    def test_half_given_credentials_are_one_red_line(self, archive: str, env: dict[str, str]) -> None:
        from tests.support.cli import run_cli

        run = run_cli("ui", "--archive", archive, "--bind", "127.0.0.1:0", env=_without_credentials(env), timeout=60)
        assert run.returncode == 2, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert PASSWORD not in run.stderr


class TestHeaders:
    @pytest.mark.parametrize(
        ("path", "host", "status"),
        [
            ("/", None, 200),
            ("/static/app.js", None, 200),
            ("/static/style.css", None, 200),
            ("/api/summary", None, 200),
            ("/api/no-such-route", None, 404),
            ("/api/summary", "evil.example", 400),
        ],
    )
    def test_every_answer_carries_them(self, wildcard: Served, path: str, host: str | None, status: int) -> None:
        got, headers, _ = request(wildcard, path, host=host)
        assert got == status
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        policy = {d.split()[0]: d.split()[1:] for d in headers["content-security-policy"].split("; ")}
        assert policy["default-src"] == ["'none'"]
        assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]  # no inline code
        assert policy["frame-ancestors"] == ["'none'"]

    def test_credentials_refused_carry_them_too(self, serve: Callable[..., Served], archive: str) -> None:
        served = serve("--archive", archive, env=_without_credentials({"LOGPIPE_UI_TOKEN": TOKEN}))
        status, headers, _ = request(served)
        assert status == 401 and headers["x-frame-options"] == "DENY" and "content-security-policy" in headers


VIEWS = ["discover", "errors", "patterns", "journey", "slow", "traffic"]


def test_the_page_works_under_its_policy_with_credentials(
    serve: Callable[..., Served], archive: str, browser: Any
) -> None:
    """Every view draws in Chromium with no policy violation, the browser sending Basic credentials."""
    served = serve("--archive", archive, env=_without_credentials({"LOGPIPE_UI_TOKEN": TOKEN}))
    refused = browser.new_context()
    assert refused.request.get(served.url).status == 401
    refused.close()
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, http_credentials={"username": "me", "password": TOKEN}
    )
    page = context.new_page()
    problems: list[str] = []
    # Chromium reports what the policy blocked on the console ("Refused to apply inline style
    # because it violates the following Content Security Policy directive ...").
    page.on("console", lambda msg: problems.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # Every file and API answer of the page loads (the browser's own /favicon.ico guess aside).
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
    )
    try:
        for view in VIEWS:
            page.goto(f"{served.url}?view={view}&range=")
            rendered(page, view)
        page.goto(f"{served.url}?view=discover&range=")
        rendered(page, "discover")
        # The facet bars' widths are set through the DOM: they apply under style-src 'self'.
        widths = page.eval_on_selector_all(".d-fbar", "els => els.map(e => e.getBoundingClientRect().width)")
        assert widths and max(widths) > 0
    finally:
        context.close()
    assert problems == []


class TestWebsocket:
    """A websocket (Loki's /tail will be one) passes the same walls: driven through the ASGI guard
    directly, as no route of the page upgrades yet."""

    @staticmethod
    def _connect(guard_hosts: tuple[str, ...], headers: list[tuple[bytes, bytes]], token: str | None) -> list[str]:
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        from logpipe.ui.access import Credentials, Guard

        reached: list[str] = []
        sent: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            reached.append(scope["type"])

        async def receive() -> dict[str, Any]:
            return {"type": "websocket.connect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        guard = Guard(app, guard_hosts, Credentials(token=token))
        # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, guard({"type": "websocket", "headers": headers}, receive, send)).result()
        return reached or [m["type"] for m in sent]

    def test_a_foreign_host_is_closed_before_the_app(self) -> None:
        assert self._connect(("localhost",), [(b"host", b"evil.example")], None) == ["websocket.close"]

    def test_missing_credentials_are_closed_before_the_app(self) -> None:
        assert self._connect(("localhost",), [(b"host", b"localhost:8080")], "s3cret") == ["websocket.close"]

    def test_an_allowed_host_with_credentials_reaches_the_app(self) -> None:
        headers = [(b"host", b"localhost:8080"), (b"authorization", b"Bearer s3cret")]
        assert self._connect(("localhost",), headers, "s3cret") == ["websocket"]
