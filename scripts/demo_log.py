"""Write a realistic web-service log the way a real service writes it: through logpipe.logging.

A small in-process shop API (an ASGI callable) is wrapped in logpipe.logging's
RequestContextMiddleware and called directly with HTTP scopes, no server; `logpipe.logging.setup`
writes the JSON lines. A simulated clock spreads the requests over the last six hours and gives
each downstream call a realistic duration, so the sample has users, sessions, slow requests and
errors with real tracebacks, and still takes a second or two to write.

Lines logged before a request is authenticated carry only its request_id (as in real services);
logpipe's request-context enrichment fills in the user and session.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import random
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import logpipe.logging as lplog

SPAN_S = 6 * 3600
ENDPOINTS = [  # method, path template, typical downstream time in ms
    ("GET", "/api/users/{}", 40),
    ("GET", "/api/orders/{}", 80),
    ("POST", "/api/orders", 220),
    ("GET", "/api/products/{}/reviews", 120),
    ("GET", "/health", 2),
    ("POST", "/api/cart/{}/checkout", 450),
]
ERROR_RATE = 0.03
log = logging.getLogger("shop.web")


class PaymentDeclined(Exception):
    pass


class InventoryTimeout(TimeoutError):
    pass


class SimClock:
    """Unix seconds that move only when the simulation says so (timestamps and durations alike)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance_ms(self, ms: float) -> None:
        self.now += ms / 1000


@dataclass
class Shop:
    """The application: what a handler does, logs and fails at, with simulated time."""

    rng: random.Random
    clock: SimClock

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        method, path = scope["method"], scope["path"]
        base_ms = next(ms for m, t, ms in ENDPOINTS if m == method and _matches(t, path))
        log.debug("cache lookup took %d us", self.rng.randint(5, 900))
        user = _header(scope, b"authorization")
        if user:
            session = _header(scope, b"cookie").removeprefix("session=")
            lplog.set_user(user.removeprefix("Bearer "), session_id=session)
        duration = self.rng.expovariate(1 / base_ms)
        self.clock.advance_ms(duration)
        if duration > base_ms * 3:
            log.warning("slow downstream call: %.0f ms", duration)
        status = 201 if method == "POST" else 200
        if user and self.rng.random() < ERROR_RATE:
            status = self._fail()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": b"{}"})

    def _fail(self) -> int:
        kind = self.rng.randrange(3)
        if kind == 0:
            try:
                _charge_card(self.rng.randint(1, 10_000))
            except PaymentDeclined as exc:
                log.exception("payment declined for order %s", exc.args[0])
                return 402
        if kind == 1:
            try:
                _reserve_stock(self.rng.randint(800, 3_000))
            except InventoryTimeout as exc:
                log.exception("timeout talking to inventory after %s ms", exc.args[0])
                return 503
        # Not caught here: the middleware logs it (with the traceback) and the server answers 500.
        return _load_profile(f"user-{self.rng.randint(200, 10_000)}")


def _charge_card(order: int) -> None:
    _gateway("charge", order)


def _gateway(operation: str, order: int) -> None:
    raise PaymentDeclined(order, operation)


def _reserve_stock(waited_ms: int) -> None:
    raise InventoryTimeout(waited_ms)


PROFILES: dict[str, int] = {}


def _load_profile(user: str) -> int:
    return PROFILES[user]


def _matches(template: str, path: str) -> bool:
    want, got = template.split("/"), path.split("/")
    return len(want) == len(got) and all(w in ("{}", g) for w, g in zip(want, got, strict=True))


def _header(scope: dict[str, Any], name: bytes) -> str:
    return next((v.decode() for k, v in scope["headers"] if k == name), "")


async def serve(app: lplog.RequestContextMiddleware, scope: dict[str, Any]) -> None:
    """What an ASGI server does for one request, minus the network."""

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        pass

    with contextlib.suppress(Exception):  # the server answers 500; the middleware logged it
        await app(scope, receive, send)


def request_scope(rng: random.Random, users: list[str], n: int) -> dict[str, Any]:
    method, template, _ = rng.choice(ENDPOINTS)
    headers = []
    if template != "/health":
        user = rng.choice(users)
        # A user's session changes every few hundred requests; crc32 keeps it the same across runs.
        session = f"sess-{zlib.crc32(f'{user}:{n // 500}'.encode()) & 0xFFFF:04x}"
        headers += [(b"authorization", f"Bearer {user}".encode()), (b"cookie", f"session={session}".encode())]
    if rng.random() < 0.3:  # came through a proxy that already named the request
        headers.append((b"x-request-id", f"edge-{rng.getrandbits(64):016x}".encode()))
    path = template.format(rng.randint(1, 99_999))
    return {"type": "http", "method": method, "path": path, "headers": headers}


class LineCounter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.lines += 1
        return True


def busy(moment: float) -> float:
    """How busy the shop is at a UTC moment: days over nights, weekdays over weekends."""
    hour = (moment % 86400) / 3600
    weekday = int(moment // 86400 + 3) % 7  # 1970-01-01 was a Thursday: 0 is Monday
    day = 0.15 + (1.0 if 8 <= hour < 20 else 0.0) + (0.6 if 11 <= hour < 14 else 0.0)
    return day * (0.45 if weekday >= 5 else 1.0)


def arrivals(start: float, span_s: float) -> list[float]:
    """The cumulative share of requests by each minute of the span (even over a span under a day)."""
    minutes = max(1, int(span_s // 60))
    weights = [1.0 if span_s < 86400 else busy(start + m * 60) for m in range(minutes)]
    total, cumulative = sum(weights), []
    running = 0.0
    for w in weights:
        running += w
        cumulative.append(running / total)
    return cumulative


def arrival(cumulative: list[float], start: float, span_s: float, share: float) -> float:
    """The moment by which `share` of the requests have arrived (linear within a minute)."""
    m = bisect.bisect_left(cumulative, share)
    if m >= len(cumulative):
        return start + span_s
    before = cumulative[m - 1] if m else 0.0
    within = (share - before) / (cumulative[m] - before) if cumulative[m] > before else 0.0
    return start + (m + within) * span_s / len(cumulative)


async def write(rng: random.Random, clock: SimClock, lines: int, counter: LineCounter, span_s: float = SPAN_S) -> None:
    start = clock.now
    cumulative = arrivals(start, span_s)
    app = lplog.RequestContextMiddleware(
        Shop(rng, clock),
        logger="shop.access",
        clock=clock,
        new_id=lambda: str(uuid.UUID(int=rng.getrandbits(128), version=4)),
    )
    users = [f"user-{i}" for i in range(1, 200)]
    n = 0
    while counter.lines < lines:
        # Requests arrive evenly over a short span, by hour and weekday over days; one never starts
        # before the previous one ended.
        clock.now = max(clock.now, arrival(cumulative, start, span_s, counter.lines / lines))
        await serve(app, request_scope(rng, users, n))
        n += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hours", type=float, default=SPAN_S / 3600, help="the span, ending now (a day or more: busier by day)"
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    span_s = args.hours * 3600
    clock = SimClock(time.time() - span_s)
    counter = LineCounter()
    with open(args.out, "w", encoding="utf-8") as out:
        handler = lplog.setup(service="shop", level="INFO", stream=out, clock=clock)
        logging.getLogger("shop").setLevel(logging.DEBUG)  # the app's own debug lines, not asyncio's
        handler.addFilter(counter)
        asyncio.run(write(random.Random(args.seed), clock, args.lines, counter, span_s))
        logging.getLogger().removeHandler(handler)


if __name__ == "__main__":
    main()
