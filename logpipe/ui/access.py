"""Who may read the page: the Host allow-list, optional credentials, and the browser's own walls.

- **Host allow-list, on every address.** A page on another site can point its own name at this
  server's address (DNS rebinding); the browser then sends that name as `Host`. Only the names
  listed answer: the localhost names, the bound address (unless it is a wildcard such as
  0.0.0.0, which no client sends), and each `--allow-host NAME` (`*.example.com` for a domain's
  names, `*` to switch the check off, e.g. behind a proxy that checks it). Others get 400.
- **Credentials.** A bearer token (`LOGPIPE_UI_TOKEN`) or a user and password
  (`LOGPIPE_UI_USER`, `LOGPIPE_UI_PASSWORD`), from the environment or from an `--auth-file`
  (YAML: `token:`, or `user:` and `password:`). With them every request, the page's own files
  included, needs `Authorization: Bearer TOKEN` or HTTP Basic (with a token: any user name and
  the token as the password, so a browser's own prompt works). Compared in constant time, never
  printed, never echoed.
- **Headers on every answer**: a Content-Security-Policy that lets the page load only its own
  scripts, styles and API (no inline script or style, no frame, no form posted elsewhere),
  `X-Frame-Options: DENY`, `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from logpipe.errors import UsageError

ENV_TOKEN: Final = "LOGPIPE_UI_TOKEN"
ENV_USER: Final = "LOGPIPE_UI_USER"
ENV_PASSWORD: Final = "LOGPIPE_UI_PASSWORD"
ENV_AUTH_FILE: Final = "LOGPIPE_UI_AUTH_FILE"

LOCAL_NAMES: Final = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_ADDRESSES: Final = frozenset({"0.0.0.0", "::", ""})

# The page is its own files (/static/...) and its API (fetch to /api/...); its styles are
# set through the DOM (`node.style`), which a policy without 'unsafe-inline' allows.
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
REALM: Final = 'Basic realm="logpipe ui", charset="UTF-8"'

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Asgi = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True, slots=True, repr=False)
class Credentials:
    """What a request must present (nothing set: no authentication). Secrets stay out of repr."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @property
    def required(self) -> bool:
        return bool(self.token or self.user)

    def __repr__(self) -> str:
        kinds = [k for k, v in (("token", self.token), ("user and password", self.user)) if v]
        return f"Credentials({', '.join(kinds) or 'none'})"


def credentials_from(env: Mapping[str, str], auth_file: Path | None = None) -> Credentials:
    """The credentials from `auth_file` when given, else from the environment; checked whole."""
    if auth_file is not None:
        values = _read_auth_file(auth_file)
        where = str(auth_file)
        token, user, password = values.get("token"), values.get("user"), values.get("password")
    else:
        where = "the environment"
        # An empty variable is an unset one (`Environment=LOGPIPE_UI_TOKEN=` in a unit file).
        token, user, password = (env.get(name) or None for name in (ENV_TOKEN, ENV_USER, ENV_PASSWORD))
    for name, value in (("token", token), ("user", user), ("password", password)):
        if value is not None and not value.strip():
            raise UsageError(f"the ui {name} in {where} is empty")
    if bool(user) != bool(password):
        raise UsageError(f"give the ui user and password together ({ENV_USER} and {ENV_PASSWORD}, in {where})")
    if user is not None and ":" in user:
        raise UsageError(f"the ui user in {where} may not contain ':' (HTTP Basic splits on it)")
    return Credentials(token, user, password)


def _read_auth_file(path: Path) -> dict[str, str]:
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read --auth-file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError:
        raise UsageError(f"--auth-file {path} is not YAML (expected token:, or user: and password:)") from None
    if not isinstance(raw, dict) or not raw or set(raw) - {"token", "user", "password"}:
        raise UsageError(f"--auth-file {path} holds token:, or user: and password: (and nothing else)")
    for key, value in raw.items():
        # YAML reads `password: 0123` as the number 123: only text is the characters written.
        if value is not None and not isinstance(value, str):
            raise UsageError(f"--auth-file {path}: {key} must be text (quote it: {key}: '...')")
    return {str(k): v for k, v in raw.items() if v is not None}


def authorized(header: str | None, credentials: Credentials) -> bool:
    """Whether an `Authorization` header value proves `credentials` (always, when none are set)."""
    if not credentials.required:
        return True
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return credentials.token is not None and _same(value, credentials.token)
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 (UnicodeDecodeError)
        return False
    if not sep:
        return False
    by_token = credentials.token is not None and _same(password, credentials.token)
    # Both halves compared every time (`&`, not `and`): how far a guess got does not show in time.
    by_user = (
        credentials.user is not None
        and credentials.password is not None
        and _same(user, credentials.user) & _same(password, credentials.password)
    )
    return by_token or by_user


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# --- the Host allow-list ---------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bound_host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The Host names answered: localhost names, the bound address (not a wildcard), `extra`."""
    names = list(LOCAL_NAMES)
    if bound_host not in WILDCARD_ADDRESSES:
        names.append(f"[{bound_host}]" if ":" in bound_host else bound_host)
    for name in extra:
        names.append(check_host_name(name))
    return tuple(dict.fromkeys(n.lower() for n in names))


def check_host_name(name: str) -> str:
    """An `--allow-host` value: a name or address, `*.domain`, or `*`; no port, no scheme."""
    text = name.strip()
    if not text or any(c in text for c in "/@ ") or (text.count(":") == 1 and not text.startswith("[")):
        raise UsageError(f"--allow-host wants a host name or address without port or scheme, not {name!r}")
    if ":" in text and not text.startswith("["):
        text = f"[{text}]"  # an IPv6 address as a Host header writes it
    return text


def host_of(header: str) -> str:
    """The name in a Host header, without its port (`[::1]:8080` -> `[::1]`)."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[: text.find("]") + 1] if "]" in text else text
    return text.rpartition(":")[0] if ":" in text else text


def host_allowed(header: str | None, allowed: Sequence[str]) -> bool:
    if "*" in allowed:
        return True
    name = host_of(header or "")
    if not name:
        return False
    return any(name == a or (a.startswith("*.") and name.endswith(a[1:])) for a in allowed)


# --- the ASGI wrapper ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Guard:
    """Wraps the app: security headers on every answer, then the Host check, then credentials."""

    app: Asgi
    hosts: tuple[str, ...]
    credentials: Credentials = field(default_factory=Credentials)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":  # lifespan
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if not host_allowed(headers.get("host"), self.hosts):
            name = host_of(headers.get("host", "")) or "(none)"
            await _answer(
                send_with_headers, 400, f"Host {name} is not served here (start logpipe ui with --allow-host NAME)"
            )
            return
        if not authorized(headers.get("authorization"), self.credentials):
            await _answer(send_with_headers, 401, "authentication required", [(b"www-authenticate", REALM.encode())])
            return
        await self.app(scope, receive, send_with_headers)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A websocket passes the same Host and credential checks; a refused one is closed before it
        is accepted (the client sees HTTP 403), with nothing read from it."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if host_allowed(headers.get("host"), self.hosts) and authorized(headers.get("authorization"), self.credentials):
            await self.app(scope, receive, send)
            return
        await send({"type": "websocket.close", "code": 1008})  # policy violation


async def _answer(send: Send, status: int, text: str, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = (text + "\n").encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
