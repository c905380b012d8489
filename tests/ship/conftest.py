"""Fixtures for the shipping tests (helpers live in shiphelp.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from shiphelp import Run, run_logpipe


@pytest.fixture
def logpipe() -> Callable[..., Run]:
    """Run the real CLI in a subprocess: `logpipe("ship", "--once", path, ...)`."""
    return run_logpipe
