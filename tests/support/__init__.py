"""Helpers every test folder shares: the CLI in a subprocess (cli), a free port (net), waiting for
an event (wait), the real servers of scripts/services (services), and archive reads (archive).

Importable as `tests.support` because pytest puts the repository root on sys.path
(`pythonpath` in pyproject.toml); test folders import it instead of each other."""
