"""Fixtures for tests/es (helpers and fixture definitions live in eshelp.py: test modules import
that, since every test folder has a conftest.py and only one module can be named conftest)."""

from __future__ import annotations

from eshelp import elasticsearch, engine, opensearch, prefix  # noqa: F401
