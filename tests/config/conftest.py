"""Fixtures for the config tests (helpers live in confighelp.py)."""

from __future__ import annotations

import subprocess

import pytest
from confighelp import ROOT, VL_URL


@pytest.fixture(scope="session")
def victorialogs() -> str:
    """The real VictoriaLogs of scripts/services (left running for others)."""
    result = subprocess.run([str(ROOT / "scripts" / "services"), "up", "victorialogs"], capture_output=True,
                            text=True, timeout=1200)  # fmt: skip
    if result.returncode != 0:
        pytest.fail(f"scripts/services up victorialogs failed:\n{result.stderr[-3000:]}")
    return VL_URL
