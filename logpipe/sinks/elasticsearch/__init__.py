"""The Elasticsearch/OpenSearch sink (`logpipe ship --to es://HOST:PORT`).

    config   EsConfig from an es:// URL (defined in `logpipe.engine.config`, shared with queries)
    encode   canonical records -> bulk items, index names, the index template (pure)
    sink     EsSink: buffered bulk indexing, item-level retry and dead letters, backpressure
    health   which engine answers, and its version

Connection settings, the engine probe and the client adapter are in `logpipe.engine`, which
the query backend shares.
"""
