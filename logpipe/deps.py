"""Optional extras, checked when a feature that needs one is set up: before any input is read.

A missing module would otherwise surface mid-run as a raw `ModuleNotFoundError` (or, inside a
sink's retry loop, as an outage that never ends). Here it is one MissingDependencyError, terminal,
whose message is the exact pip command; the CLI prints it as one line and exits non-zero.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

from logpipe.errors import MissingDependencyError

# (module to import, the distribution pip installs it from)
Module = tuple[str, str]


def require(feature: str, extra: str, modules: Sequence[Module]) -> None:
    """Find each module; if any is missing, one error naming them and `pip install 'logpipe[extra]'`.

    Found, not imported: the check costs nothing on start-up (the Elasticsearch client alone
    takes most of a second to import), and the feature imports what it uses when it uses it.
    """
    missing = [package for module, package in modules if not importable(module)]
    if missing:
        raise MissingDependencyError(f"{feature} needs {', '.join(missing)}: pip install 'logpipe[{extra}]'")


def importable(module: str) -> bool:
    """Whether `import module` can find it (already imported, or on the path)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module with no spec
        return False
