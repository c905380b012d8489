"""Reading `key=value` options given as text (URL query strings, query parameters).

One reading of booleans, whole numbers and choices for every target URL (`es://`, `loki://`,
`kafka://`) and the query catalog, so `gzip=yes` means the same everywhere and every wrong value
gets the same kind of one-line message naming the option.
"""

from __future__ import annotations

from typing import Final

from logpipe.errors import UsageError

TRUE: Final = frozenset({"1", "true", "yes", "on"})
FALSE: Final = frozenset({"0", "false", "no", "off"})


def flag(text: str, name: str, what: str = "option") -> bool:
    """`true`/`yes`/`1`/`on` or `false`/`no`/`0`/`off`, in any case."""
    value = text.strip().lower()
    if value in TRUE | FALSE:
        return value in TRUE
    raise UsageError(f"{what} {name} expects true or false, not {text!r}")


def whole(text: str, name: str, minimum: int = 0, what: str = "option") -> int:
    """A whole number of at least `minimum`."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{what} {name} expects a whole number, not {text!r}") from None
    if value < minimum:
        raise UsageError(f"{what} {name} must be at least {minimum}")
    return value


def choice(text: str, choices: tuple[str, ...], name: str, what: str = "option") -> str:
    """One of `choices` (compared in lower case)."""
    value = text.strip().lower()
    if value not in choices:
        raise UsageError(f"{what} {name} is one of {', '.join(choices)}, not {text!r}")
    return value
