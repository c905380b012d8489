"""The Loki sink (`logpipe ship --to loki://HOST:PORT`), also for VictoriaLogs' Loki push API.

    config   URL + environment -> LokiConfig (auth, tenant, encoding, labels, bounds); secrets masked
    encode   canonical records -> streams (labels, time order) -> protobuf+snappy or JSON bodies
    sink     LokiSink: buffered pushes, retry with backoff, 400s dead-lettered, label guard
    health   is Loki there (`GET /ready`), for a clear first log line
    deps     the snappy codec protobuf pushes need

Protobuf needs `cramjam` (snappy): `pip install 'logpipe[loki]'`.
"""
