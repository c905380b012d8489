"""Write a realistic web-service log with python-json-logger: requests, users, sessions, errors.

Only the first line of each request names the user and session (as real services often do);
later lines carry just the request_id, which logpipe's request-context enrichment fills in.
"""

from __future__ import annotations

import argparse
import logging
import random
import time
import uuid
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

ENDPOINTS = [
    ("GET", "/api/users/{}", 40),
    ("GET", "/api/orders/{}", 80),
    ("POST", "/api/orders", 220),
    ("GET", "/api/products/{}/reviews", 120),
    ("GET", "/health", 2),
    ("POST", "/api/cart/{}/checkout", 450),
]
ERRORS = [
    ("payment declined for order {}", "PaymentError"),
    ("timeout talking to inventory after {} ms", "TimeoutError"),
    ("user {} not found", "KeyError"),
]


def build_logger(out: Path) -> logging.Logger:
    out.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out, mode="w", encoding="utf-8")
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{name}{module}{funcName}{lineno}{message}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp=True,  # ISO 8601 in UTC from record.created
        )
    )
    logger = logging.getLogger("shop.web")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    return logger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    logger = build_logger(args.out)
    start = time.time() - 3600 * 6
    written = 0
    clock = {"now": start}
    base_factory = logging.getLogRecordFactory()

    def at_simulated_time(*a: object, **kw: object) -> logging.LogRecord:
        # Spread the sample over the last six hours instead of the few seconds it takes to write.
        record = base_factory(*a, **kw)  # type: ignore[arg-type]
        record.created = clock["now"]
        record.msecs = (clock["now"] % 1) * 1000
        return record

    logging.setLogRecordFactory(at_simulated_time)
    users = [f"user-{i}" for i in range(1, 200)]
    while written < args.lines:
        method, template, base_ms = rng.choice(ENDPOINTS)
        user = rng.choice(users)
        session = f"sess-{hash((user, written // 500)) & 0xFFFF:04x}"
        request = str(uuid.UUID(int=rng.getrandbits(128)))
        path = template.format(rng.randint(1, 99_999))
        clock["now"] = start + written * (6 * 3600 / args.lines)
        ctx = {"request_id": request}
        logger.info("request started", extra={**ctx, "user_id": user, "session_id": session,
                                                "method": method, "path": path}, stacklevel=1)  # fmt: skip
        logger.debug("cache lookup took %d us", rng.randint(5, 900), extra=ctx)
        duration = rng.expovariate(1 / base_ms)
        status = 200
        written += 3
        if rng.random() < 0.03:
            message, kind = rng.choice(ERRORS)
            status = 500
            try:
                raise RuntimeError(kind)
            except RuntimeError:
                logger.error(message.format(rng.randint(1, 10_000)), exc_info=True,
                             extra={**ctx, "method": method, "path": path})  # fmt: skip
            written += 1
        elif duration > base_ms * 3:
            logger.warning("slow downstream call: %.0f ms", duration, extra=ctx)
            written += 1
        logger.info("request finished", extra={**ctx, "method": method, "path": path,
                                                 "status": status, "duration_ms": round(duration, 3)})  # fmt: skip
    for handler in logger.handlers:
        handler.close()


if __name__ == "__main__":
    main()
