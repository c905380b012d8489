"""Settings of the Elasticsearch/OpenSearch sink: `EsConfig`, parsed from an `es://` URL.

They live in `logpipe.engine.config` because the query backend reads the same engines with the
same settings and must not import the shipping side; this module is the sink's name for them.
"""

from __future__ import annotations

from typing import Final

from logpipe.engine.config import EsConfig, parse_target

SCHEMES: Final = ("es", "es+http", "es+https", "http", "https")


def parse(url: str) -> EsConfig:
    """`es://user:pw@host:9200?index=...` (plus LOGPIPE_ES_* variables) -> EsConfig."""
    return parse_target(url)


__all__ = ["SCHEMES", "EsConfig", "parse"]
