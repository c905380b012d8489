"""Fixtures for tests/ui: an archive, `logpipe ui` serving it as a real process, and Chromium.

The browser is Debian's Chromium (/usr/bin/chromium, installed by `make test`) driven by
Playwright's Python client; Playwright's own browser download is never used. Chromium starts
with the flags this machine needs (no background networking: its outbound connections are
refused here) and a fresh profile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from uihelp import CHROMIUM, CHROMIUM_FLAGS, Served, ship

from tests.support.exdata import generate

UI_LINES = 3000


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[..., Served]]:
    """`serve(*args)`: start `logpipe ui ARGS --bind 127.0.0.1:0`; every one is stopped at the end."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        served = Served(list(args), env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture(scope="session")
def ui_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The explore tests' generated log (every record known), shipped into an archive."""
    folder = tmp_path_factory.mktemp("ui")
    objects = generate(UI_LINES)
    return {"archive": ship(folder, objects), "objects": objects}


@pytest.fixture(scope="session")
def ui_server(ui_data: dict[str, Any], serve: Callable[..., Served]) -> Served:
    return serve("--archive", str(ui_data["archive"]))


# Module scope, not session: Playwright's sync API keeps an asyncio loop marked running in this
# thread while it is started, and pytest runs some tests/ui modules early (those taking the
# session-scoped `engine` parameter) and others' asyncio.run() tests after them; the browser must
# be closed when pytest leaves each module.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A new page (own context: no cookies or storage shared between tests), 1280x800."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"the page threw: {errors}"


# The Errors, Patterns and Journey views' data: the demo's log, shipped (tests/ui/groupsdata.py).
from groupsdata import groups_data, groups_es, groups_server  # noqa: E402, F401
