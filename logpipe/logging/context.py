"""Request context (request_id, user_id, session_id) carried in contextvars.

contextvars follow the code that handles one request: every asyncio task starts with a copy of
its parent's context, and a value set inside a `request_context` block is reset when the block
ends, so one request's ids never appear on another request's records — whether requests run
concurrently in separate tasks or one after the other in the same task or thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar, Token
from typing import Final

CONTEXT_FIELDS: Final = ("request_id", "user_id", "session_id")

_VARS: Final[dict[str, ContextVar[str | None]]] = {
    name: ContextVar(f"logpipe_{name}", default=None) for name in CONTEXT_FIELDS
}


def current() -> dict[str, str]:
    """The context fields that are set right now (unset ones are left out)."""
    values = {name: var.get() for name, var in _VARS.items()}
    return {name: value for name, value in values.items() if value is not None}


@contextlib.contextmanager
def request_context(
    request_id: str | None = None, user_id: str | None = None, session_id: str | None = None
) -> Iterator[None]:
    """Set all three fields for the block (None clears one), and restore the outer values after.

    >>> with request_context(request_id="r-1"):
    ...     current()
    {'request_id': 'r-1'}
    """
    values = {"request_id": request_id, "user_id": user_id, "session_id": session_id}
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = [
        (_VARS[name], _VARS[name].set(value)) for name, value in values.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def set_user(user_id: str | None, session_id: str | None = None) -> None:
    """Name the user (and session) of the request being handled, e.g. once it is authenticated.

    Records logged from then on in this context carry them. Inside a `request_context` block (as
    the ASGI middleware opens per request) the values end with the block.
    """
    _VARS["user_id"].set(user_id)
    if session_id is not None:
        _VARS["session_id"].set(session_id)


def set_request_id(request_id: str | None) -> None:
    """Set the request id for the current context (for code outside the middleware: jobs, workers)."""
    _VARS["request_id"].set(request_id)
