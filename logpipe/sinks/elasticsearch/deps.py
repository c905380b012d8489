"""The clients the Elasticsearch/OpenSearch sink needs, checked before it starts (the [es] extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from logpipe.engine.config import EsConfig


def require(config: EsConfig) -> None:
    """MissingDependencyError naming `pip install 'logpipe[es]'` unless both clients are there:
    which one talks to the engine is known only once it answers."""
    from logpipe.engine.adapter import require_clients

    require_clients()
