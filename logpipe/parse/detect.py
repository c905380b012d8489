"""Guess a file's format from its first lines. `--format NAME` overrides the guess."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, Final

import orjson

from logpipe.model import ResolvedFormat
from logpipe.parse.profiles import PROFILES, PYTHON_JSON, Profile

_CRI: Final = re.compile(rb"^\d{4}-\d{2}-\d{2}T\S+ (?:stdout|stderr) [PF](?::\S+)?(?: |$)")


def _shape(obj: dict[str, Any]) -> str:
    keys = obj.keys()
    if {"log", "stream", "time"} <= keys and len(keys) <= 4 and isinstance(obj.get("log"), str):
        return "docker"
    if isinstance(obj.get("record"), dict) and "text" in keys:
        return "loguru"
    if "@timestamp" in keys and ("log.level" in keys or "ecs.version" in keys or "ecs" in keys):
        return "ecs"
    level = obj.get("level")
    if isinstance(level, int) and not isinstance(level, bool) and ("msg" in keys or "v" in keys):
        return "pino"
    if "event" in keys and "message" not in keys and "msg" not in keys:
        return "structlog"
    if "msg" in keys and "ts" in keys and ("caller" in keys or "logger" in keys or "stacktrace" in keys):
        return "zap"
    if "msg" in keys and "time" in keys and isinstance(level, str):
        return "logrus"
    if isinstance(level, str) and level.islower() and "message" in keys and "levelname" not in keys:
        return "winston"
    return PYTHON_JSON.name


def detect(sample: Iterable[bytes]) -> Profile:
    """The profile most lines of `sample` look like; python-json-logger when nothing is known."""
    votes: Counter[str] = Counter()
    for line in sample:
        line = line.strip()
        if not line:
            continue
        if _CRI.match(line):
            votes["cri"] += 1
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            votes[_shape(obj)] += 1
    if not votes:
        return PYTHON_JSON
    return PROFILES[votes.most_common(1)[0][0]]


def sample_lines(head: bytes, limit: int = 32) -> list[bytes]:
    """Complete lines from the first bytes of a file, for `detect`."""
    lines = head.split(b"\n")
    if not head.endswith(b"\n"):
        lines = lines[:-1]
    return lines[:limit]


HEAD_BYTES: Final = 64 << 10  # how much of a file's start detection samples


def resolve_format(override: str | None, head: Callable[[int], bytes]) -> ResolvedFormat:
    """A file's format for the file source (its `FormatDetector`): the profile `--format` names,
    else the one its first bytes (`head(HEAD_BYTES)`, read only then) look like; with the wrapper's rule
    for where a batch may end."""
    from logpipe.parse.wrappers import is_final_line

    profile = PROFILES[override] if override and override != "auto" else detect(sample_lines(head(HEAD_BYTES)))
    final_line = None if profile.wrapper is None else functools.partial(is_final_line, profile.wrapper)
    return ResolvedFormat(profile.name, final_line)
