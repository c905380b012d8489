"""Fixtures and markers for every test folder (the helpers themselves live in tests/support)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import preload
from tests.support.services import FIXTURES, elasticsearch, engine, kafka, opensearch, victorialogs  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `services` every test that uses a real server: through a fixture of tests/support/services
    (the fixture closure includes fixtures of fixtures), or by saying so (`pytestmark`)."""
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """The fast loop, `pytest -m 'not services'`, spreads over two workers per core (pytest-xdist):
    most of its tests wait on the processes they start. `-n N` (`-n 0`: one process) overrides."""
    options = config.option
    if (
        not hasattr(config, "workerinput")  # an xdist worker runs this hook too, with -n cleared
        and "not services" in (options.markexpr or "")
        and getattr(options, "numprocesses", 0) is None
        and not options.collectonly
        and not options.usepdb
    ):
        options.numprocesses = 2 * (os.cpu_count() or 1)
        options.dist = "worksteal"
        options.tx = ["popen"] * options.numprocesses  # what xdist derives from -n, should its hook run first


def pytest_configure(config: pytest.Config) -> None:
    """`python -m logpipe` children come from the preloaded server (tests/support/preload.py)
    unless LOGPIPE_TEST_EXEC=1 (make test, and so CI: every child a real exec)."""
    if os.environ.get("LOGPIPE_TEST_EXEC") != "1":
        preload.install()


def pytest_unconfigure(config: pytest.Config) -> None:
    preload.uninstall()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A test marked `fresh_interpreter` gets real execs only, whatever the mode."""
    preload.exec_only(item.get_closest_marker("fresh_interpreter") is not None)
    try:
        yield
    finally:
        preload.exec_only(False)
