"""Keep the agent's resident memory close to what it actually uses.

Shipping allocates and frees tens of megabytes per batch. glibc raises its mmap threshold after
the first large free, after which such blocks come from the heap and are rarely given back, so
RSS ratchets up to several times the live data. Pinning the threshold (and trimming) keeps large
blocks in mmap, returned on free.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_allocators(mmap_threshold: int = 1 << 20) -> None:
    """Best effort: on anything but glibc this does nothing."""
    with contextlib.suppress(OSError, AttributeError, TypeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
        libc.mallopt(_M_TRIM_THRESHOLD, mmap_threshold * 4)
