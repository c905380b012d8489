"""Helpers every test folder shares, so none copies another's or edits sys.path:

- cli: the real `logpipe` in a subprocess (`run_cli`, `Run`, `LOGPIPE`, `ROOT`);
- net: a free local port; wait: `wait_until` (fails naming the event) and `poll` (the last value);
- process: `Lines`, a child's stderr read while it runs, to wait for what it logs;
- services: the servers of scripts/services, their URLs (`scripts/services env`) and fixtures;
  tests/conftest.py marks `services` every test that uses one;
- engines: Elasticsearch/OpenSearch read and cleaned with the standard library;
- archive: an archive's Parquet rows and checkpoints read independently of logpipe;
- records: recognisable log records; exdata: the explore and ui tests' generated log;
- loki_double: the in-process stand-in for Loki's push, query and delete APIs.
- disk: a tmpfs of the test's own, for a real full disk or read-only mount.

Importable as `tests.support` because pytest puts the repository root on sys.path
(`pythonpath` in pyproject.toml)."""
