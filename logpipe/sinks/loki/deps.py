"""The optional snappy codec, imported only when a protobuf push is encoded."""

from __future__ import annotations

from typing import Any

from logpipe.errors import MissingDependencyError


def cramjam() -> Any:
    """The `cramjam` module (snappy for protobuf pushes), or a message naming the extra to install."""
    try:
        import cramjam as module
    except ImportError:
        raise MissingDependencyError(
            "Loki's protobuf encoding needs snappy: pip install 'logpipe[loki]' (or use ?encoding=json)"
        ) from None
    return module
