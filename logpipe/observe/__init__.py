"""logpipe watching itself: Prometheus metrics, `/health` and `/ready`, and JSON logs of its own.

- `metrics`: every metric logpipe exports, defined once, on a registry made per process.
- `readiness`: when the agent counts as alive and as ready (pure rules over a snapshot).
- `server`: the HTTP endpoints, in a daemon thread.
- `monitor`: wires the three to a running `ship` pipeline or `ingest` runner.
- `logs`: logpipe's own log lines as JSON on stderr.

prometheus_client is imported only here, and only by commands run with `--metrics-addr`.
"""
