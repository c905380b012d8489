"""Fixtures for tests/explore: the real engines of tests/es (its eshelp module) for the ES tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "es"))

from eshelp import elasticsearch, engine, opensearch  # noqa: F401
