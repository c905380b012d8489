"""The optional snappy codec, imported only when a protobuf push is encoded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from logpipe.errors import MissingDependencyError

if TYPE_CHECKING:
    from logpipe.sinks.loki.config import LokiConfig


def cramjam() -> Any:
    """The `cramjam` module (snappy for protobuf pushes), or a message naming the extra to install."""
    try:
        import cramjam as module
    except ImportError:
        raise MissingDependencyError(
            "Loki's protobuf encoding needs snappy: pip install 'logpipe[loki]' (or use ?encoding=json)"
        ) from None
    return module


def require(config: LokiConfig) -> None:
    """What pushes with these settings need: snappy for protobuf (the contract every sink folder keeps)."""
    if config.encoding == "protobuf":
        cramjam()
