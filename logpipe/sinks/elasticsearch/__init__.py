"""The Elasticsearch/OpenSearch sink (`logpipe ship --to es://HOST:PORT`).

    encode   canonical records -> bulk items, index names, the index template (pure)
    sink     EsSink: buffered bulk indexing, item-level retry and dead letters, backpressure

Connection settings, the engine probe and the client adapter are in `logpipe.engine`, which
the query backend shares.
"""
