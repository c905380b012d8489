"""Sinks: where batches of canonical records are delivered. Every sink has the same shape.

    base       the Sink contract (send, flush, buffered/in-flight bytes, interrupt, health,
               describe, close; the outage and dead-letter rules), and the Sinks group
    registry   which sink a `--to` URL names, by its scheme
    retry      the one retry policy: capped backoff until the server recovers or interrupt()
    targets    URLs and a config -> the sinks of one agent, in flush order
    routing    level routes; meter: where sinks report their requests

One folder per sink, each with config, deps, encode, health and sink: archive (the default,
and every sink's dead-letter store), elasticsearch, loki, kafka. Settings derive from
`logpipe.secrets.SinkSettings`, so none shows a secret.
"""
