# logpipe build. `make demo` and `make test` are the whole quick start on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The normaliser is Rust (native/): cargo comes from rustup, which installs it here.
export PATH := $(HOME)/.cargo/bin:$(PATH)
NATIVE := native/Cargo.toml native/Cargo.lock $(wildcard native/src/*.rs)
DEMO   := demo
# What `make demo` asks the archive: per endpoint template, its requests (access lines, the records
# with a status), distinct users, p95 latency and 5xx answers (tests/producer checks it against the log).
DEMO_SQL := SELECT endpoint, count(*) AS requests, count(DISTINCT user_id) AS users, round(quantile_cont(duration_ms, 0.95), 1) AS p95_ms, count(*) FILTER (WHERE status >= 500) AS server_errors FROM logs WHERE status IS NOT NULL GROUP BY endpoint ORDER BY requests DESC, endpoint

.PHONY: demo test check lint typecheck native-lint native-test unit bench bench-es clean

# PYTHONWARNINGS: setuptools says how it wires an editable install of this flat layout (a meta path
# finder: "Editable installation ... Please be careful with folders ..."), information and not a
# problem, which pip prints as a BuildBackendWarning block at the top of `make demo`. Only that
# message is filtered; any other warning or error of the install still shows.
$(STAMP): pyproject.toml $(NATIVE)
	@command -v cargo >/dev/null || { echo "error: cargo not found: install Rust with rustup (https://rustup.rs)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## demo: write a week of realistic application log (through logpipe.logging), ship it into ./logpipe-data, show what is there
demo: $(STAMP)
	@test -f $(DEMO)/app.log || $(PY) scripts/demo_log.py --out $(DEMO)/app.log --lines 50000 --hours 168
	$(VENV)/bin/logpipe ship --once $(DEMO)/app.log --archive logpipe-data
	$(VENV)/bin/logpipe sql "$(DEMO_SQL)" --archive logpipe-data
	$(VENV)/bin/logpipe query errors --since 7d --archive logpipe-data
	@echo "look around in a browser: $(VENV)/bin/logpipe ui --archive logpipe-data  (then open http://127.0.0.1:8080/)"

## test: lint, type-check and run the whole suite (the native crate's own tests first)
test: $(STAMP) lint typecheck native-lint native-test unit

# clippy and rustfmt come with rustup's default profile; a minimal one lacks them.
native-lint:
	@cargo clippy --version >/dev/null 2>&1 && cargo fmt --version >/dev/null 2>&1 || { echo "error: clippy and rustfmt not found: rustup component add clippy rustfmt"; exit 1; }
	cargo fmt --check --manifest-path native/Cargo.toml
	cargo clippy --quiet --release --all-targets --manifest-path native/Cargo.toml -- -D warnings

native-test:
	cargo test --quiet --release --manifest-path native/Cargo.toml

lint: $(STAMP)
	$(VENV)/bin/ruff check logpipe tests benchmarks scripts
	$(VENV)/bin/ruff format --check logpipe tests benchmarks scripts

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The suite talks to real servers (tests/es, tests/loki, tests/kafka): scripts/services starts the ones not running,
# and stops exactly those again when pytest ends, pass or fail.
TEST_SERVICES ?= opensearch elasticsearch victorialogs kafka

# tests/ui drive Debian's Chromium through Playwright (never Playwright's own browser download).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "error: tests/ui need Debian's chromium package at $(CHROMIUM)"; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# LOGPIPE_TEST_EXEC=1: every `logpipe` a test starts is a real exec, as users start it (tests/support/preload.py).
unit: $(STAMP) $(CHROMIUM)
	LOGPIPE_TEST_EXEC=1 scripts/services run $(TEST_SERVICES) -- $(VENV)/bin/pytest -q

## check: the fast loop: lint, types and every test that needs no server, on every core, logpipe preloaded
check: $(STAMP) $(CHROMIUM) lint typecheck
	$(VENV)/bin/pytest -q -m 'not services'

bench: $(STAMP)
	$(PY) benchmarks/ship_throughput.py

## bench-es: 1M lines through logpipe into OpenSearch against a bare client bulk loop
bench-es: $(STAMP)
	scripts/services run opensearch -- $(PY) benchmarks/es_ingest.py

clean:
	rm -rf $(VENV) logpipe-data $(DEMO) .mypy_cache .ruff_cache .pytest_cache native/target logpipe/_native*.so
