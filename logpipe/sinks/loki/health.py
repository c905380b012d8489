"""Whether Loki answers, so the agent's first log line says so instead of a later retry storm."""

from __future__ import annotations

from typing import TYPE_CHECKING

from logpipe.sinks.base import Health

if TYPE_CHECKING:
    from logpipe.sinks.loki.config import LokiConfig


def check(config: LokiConfig, timeout_s: float = 5.0) -> Health:
    """Whether Loki says it is ready (or at least answers)."""
    answer = probe(config, timeout_s=timeout_s)
    return Health(answer.startswith(("ready", "answering")), config.display_url, answer)


def probe(config: LokiConfig, *, timeout_s: float = 5.0) -> str:
    """`GET /ready` (Loki; VictoriaLogs answers `/health` too): a one-line description, never raises.

    Loki answers 503 while its ring settles; pushes are retried anyway, so this only informs.
    """
    import urllib.error
    import urllib.request

    for path in ("/ready", "/health"):
        request = urllib.request.Request(config.url + path, headers=config.headers(), method="GET")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return f"ready ({path} answered {response.status})"
        except urllib.error.HTTPError as exc:
            if exc.code in (400, 404):
                continue  # no such endpoint here (VictoriaLogs answers /ready with 400): try the next
            return f"not ready ({path} answered {exc.code})"
        except OSError as exc:
            return f"unreachable ({config.mask(str(exc))})"
    return "answering (no readiness endpoint)"
