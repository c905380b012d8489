"""Elasticsearch and OpenSearch: the sink (`--to es://HOST:PORT`) and what the query backend shares.

    config   URL + environment -> EsConfig (auth, TLS, index pattern, limits); secrets masked
    health   which engine answers (`GET /`), and whether it is up
    adapter  one small interface over the official `elasticsearch` and `opensearch-py` clients
    encode   canonical records -> bulk items, index names, the index template (pure)
    sink     EsSink: buffered bulk indexing, item-level retry and dead letters, backpressure

Nothing here imports a client until an engine is contacted: `pip install 'logpipe[es]'`.
"""
