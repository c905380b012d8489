"""Whether the engine answers, and which one it is (`GET /`, see `logpipe.engine.health`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from logpipe.errors import LogpipeError
from logpipe.sinks.base import Health

if TYPE_CHECKING:
    from logpipe.engine.config import EsConfig


def check(config: EsConfig, timeout_s: float = 5.0) -> Health:
    """The engine and its version, or why it cannot be reached (credentials, TLS, down)."""
    from logpipe.engine.health import probe

    try:
        return Health(True, config.display_url, probe(config, timeout_s=timeout_s).describe())
    except LogpipeError as exc:
        return Health(False, config.display_url, config.mask(str(exc)))
