"""Talking to Elasticsearch and OpenSearch, shared by the sink and the query backend.

    config   URL + environment -> EsConfig (auth, TLS, index pattern, limits); secrets masked
    health   which engine answers (`GET /`), and whether it is up
    adapter  one small interface over the official `elasticsearch` and `opensearch-py` clients

It lives outside `logpipe.sinks` because the query side must never import the shipping
pipeline. Nothing here imports a client until an engine is contacted: `pip install 'logpipe[es]'`.
"""
