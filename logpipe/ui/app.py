"""The ASGI application: the page's static files and every feature module's JSON routes.

Read-only by construction: only GET (and HEAD) routes exist, so anything else is 405. Every
request passes `access.Guard` first: the Host header must be on the allow-list on any address
(a page on another site cannot reach this one through a DNS name it rebinds to this address),
credentials when they are set, and every answer carries the page's Content-Security-Policy.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from logpipe.read.store import Store
from logpipe.ui.access import LOCAL_NAMES, Credentials, Guard
from logpipe.ui.api import ClientGone, Handler, Params, encode, log, status_of

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

STATIC: Final = Path(__file__).resolve().parent / "static"
DISCONNECT_POLL_S: Final = 0.25  # how often a running request looks whether its client is still there
# Each module's ROUTES are served under /api/. One line per feature.
FEATURES: Final = (
    "logpipe.ui.summary",
    "logpipe.ui.discover",
    "logpipe.ui.slow",
    "logpipe.ui.traffic",
    "logpipe.ui.errors",
    "logpipe.ui.patterns",
    "logpipe.ui.journey",
)


def feature_routes(modules: Sequence[str] = FEATURES) -> list[tuple[str, Handler]]:
    routes: list[tuple[str, Handler]] = []
    for name in modules:
        routes.extend(importlib.import_module(name).ROUTES)
    return routes


def create_app(
    store: Store, *, hosts: Sequence[str] = LOCAL_NAMES, credentials: Credentials | None = None
) -> Starlette:
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    routes: list[Route | Mount] = [
        Route("/", _index, methods=["GET"]),
        Route("/favicon.ico", _favicon, methods=["GET"]),
    ]
    for path, handler in feature_routes():
        routes.append(Route(f"/api/{path}", _endpoint(store, handler), methods=["GET"]))
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    middleware = [Middleware(Guard, hosts=tuple(hosts), credentials=credentials or Credentials())]
    return Starlette(routes=routes, middleware=middleware)


async def _index(request: Request) -> Response:
    from starlette.responses import FileResponse

    # The page's state lives in its query string; every URL of it is this one file.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def _favicon(request: Request) -> Response:
    from starlette.responses import FileResponse

    # Browsers ask for /favicon.ico whatever the page links: the page's icon (SVG), not a 404.
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})


def _endpoint(store: Store, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import Response

    from logpipe.read.timeexpr import utc_now

    async def endpoint(request: Request) -> Response:
        params = Params(dict(request.query_params), utc_now())
        work = asyncio.ensure_future(run_in_threadpool(handler, store, params))
        try:
            await _until_done_or_gone(work, request, params)
            body = work.result()
            status = 200
        except Exception as exc:
            status, message = status_of(exc)
            if status == 500:
                log.error("GET %s failed", request.url.path, exc_info=exc)
            elif isinstance(exc, ClientGone):
                log.warning("GET %s stopped: %s", request.url.path, exc)
            body = {"error": message}
        return Response(
            encode(body), status_code=status, media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    return endpoint


async def _until_done_or_gone(work: asyncio.Future[Any], request: Request, params: Params) -> None:
    """Wait for the handler; when the client disconnects first, tell it (`params.gone`) to stop.

    The handler runs in a thread, which cannot be interrupted: it stops at its next look at
    `params.gone` (`Params.while_connected`), so a page closed mid-request frees its core.
    """
    try:
        while not work.done():
            await asyncio.wait({work}, timeout=DISCONNECT_POLL_S)
            if not work.done() and await request.is_disconnected():
                params.gone.set()
                await asyncio.wait({work})
    finally:
        if not work.done():  # this coroutine was cancelled: stop the handler too
            params.gone.set()
            work.add_done_callback(lambda done: done.cancelled() or done.exception())
