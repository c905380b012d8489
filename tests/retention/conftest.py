"""Fixtures for tests/retention (helpers and fixture definitions live in retentionhelp.py: test modules import
that, since every test folder has a conftest.py and only one module can be named conftest)."""

from __future__ import annotations

from retentionhelp import archive_policy, loki, prefix, shipped_100_days  # noqa: F401
