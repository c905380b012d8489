"""logpipe: ship structured JSON logs into a Parquet archive (and search engines), then query them."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
