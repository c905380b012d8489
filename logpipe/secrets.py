"""The one base of every sink's settings: secrets never appear in repr, str or describe.

A sink config names the fields that hold a password or a token in `SECRET_FIELDS`. The base
writes `repr` (and so `str`) itself, with those fields shown as `***` when set, so a config in
a traceback, a log line or a test failure shows no secret; `describe` is the target as a
person reads it (`display_url`, never credentials); `mask` scrubs the secrets from text a
server or a client wrote (an error page can echo a header). Dataclasses that inherit it pass
`repr=False`, or the generated repr would replace this one.

It sits outside `logpipe.sinks` and imports nothing: the query backend's engine settings
(`logpipe.engine.config`) use it too, and the query side never imports the shipping side.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Final

HIDDEN: Final = "***"


class SinkSettings:
    """Mixin for frozen dataclass configs of sinks (see the module docstring)."""

    __slots__ = ()
    KIND: ClassVar[str] = ""  # the sink kind these settings are for (the registry's key)
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ()

    @property
    def display_url(self) -> str:
        """Where the sink writes, without credentials."""
        raise NotImplementedError

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values of the secret fields that are set."""
        values = (getattr(self, name) for name in self.SECRET_FIELDS)
        return tuple(value for value in values if value)

    def mask(self, text: str) -> str:
        """`text` with every secret replaced by `***` (the longest first, so no part of one shows)."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, HIDDEN)
        return text

    def describe(self) -> str:
        """The target in one line for people: the URL without credentials."""
        return self.display_url

    def __repr__(self) -> str:
        assert dataclasses.is_dataclass(self)
        shown = []
        for each in dataclasses.fields(self):
            if not each.repr:
                continue
            value = getattr(self, each.name)
            text = HIDDEN if each.name in self.SECRET_FIELDS and value else repr(value)
            shown.append(f"{each.name}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"

    def __str__(self) -> str:
        return repr(self)
