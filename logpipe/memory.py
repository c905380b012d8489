"""Keep an agent process's resident memory close to what it actually uses.

Measured on `ship --once` of 5M lines (benchmarks/ship_throughput.py), each of these mattered:

- glibc gives each thread that allocates a heap arena of its own; the reader, the normaliser and
  the writer thread free each other's blocks, and the arenas fragment. One arena removes that.
- glibc raises its mmap threshold after the first large free, after which such blocks come from
  the heap and are rarely given back. Pinning the threshold keeps large blocks in mmap.
- Arrow's default pool (mimalloc or jemalloc) keeps freed pages for reuse, and across the many
  differently sized tables of a long run that grows RSS by half; the system pool, under the
  setting above, returns them. Arrow reads ARROW_DEFAULT_MEMORY_POOL once, when it first
  allocates, so it is set before pyarrow is imported.
- pyarrow imports pandas, when it is installed, on the first call of many functions only to check
  whether an argument is a pandas object: 50 MB and a third of a second on every node.

Only the agent commands (`ship`, `ingest`) call `tune_agent_process`; queries and notebooks keep
the defaults, which suit short analytical runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.abc
import os
import sys
from importlib.machinery import ModuleSpec
from types import ModuleType

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def tune_agent_process(mmap_threshold: int = 1 << 20) -> None:
    """Call first thing in an agent command, before threads start. Best effort off glibc."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_ARENA_MAX, 1)
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        libc.mallopt(_M_TRIM_THRESHOLD, mmap_threshold * 4)
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    keep_pandas_out()


class _NoPandas(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds pandas, and fails to load it.

    Failing in the loader rather than the finder keeps `importlib.util.find_spec` (with which
    polars probes for pandas, without importing it) working.
    """

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name == "pandas" or name.startswith("pandas."):
            return ModuleSpec(name, self)
        return None

    def create_module(self, spec: ModuleSpec) -> None:
        raise ImportError("logpipe's agent does not load pandas")

    def exec_module(self, module: ModuleType) -> None:
        raise ImportError("logpipe's agent does not load pandas")


def keep_pandas_out() -> None:
    """Keep pandas out of this process: pyarrow then treats it as not installed."""
    if "pandas" not in sys.modules and not any(isinstance(f, _NoPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoPandas())


def give_back_freed_memory() -> None:
    """Return freed heap pages to the system now (before a memory-hungry step such as compaction)."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
