"""`/api/summary`: what the page is looking at (store, record count, first and last time)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from logpipe.read.filters import Field, Filter
from logpipe.ui.api import Handler, Params

if TYPE_CHECKING:
    from logpipe.read.store import Store

MAX_LEVELS: Final = 50  # far more than the level names a service uses


def summary(store: Store, params: Params) -> dict[str, Any]:
    """Records in all, the first and last `ts`, and the count per level (most first)."""
    everything = Filter()
    found = store.facets(everything, [Field("level")], MAX_LEVELS)
    top = found.tops.get("level")
    levels = list(top.values) if top else []
    if top and top.missing:
        levels.append((None, top.missing))
    levels.sort(key=lambda lv: (-lv[1], lv[0] is None, lv[0] or ""))
    first, last = store.extent(everything) if found.total else (None, None)
    return {
        "backend": store.kind,
        "source": store.describe(),
        "total": int(found.total),
        "first": first,
        "last": last,
        "levels": [{"level": lv, "count": int(n)} for lv, n in levels],
    }


ROUTES: list[tuple[str, Handler]] = [("summary", summary)]
