"""Container log envelopes: Docker json-file and Kubernetes CRI.

Both wrap the application's line in an envelope with the container runtime's time and stream,
and both split long lines into parts: Docker marks a part by a `log` value that does not end in
a newline, CRI by the tag `P` (the last part is `F`). Parts are joined into one line whose offset
is the first part's. The source cuts batches only after a final part (see `is_final_line`), so a
batch never ends inside a group. The application's line becomes the record when it is a JSON
object; a plain-text line becomes `{"message": text, "stream": ...}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import orjson

from logpipe.limits import DEAD_LETTER_HEAD_BYTES
from logpipe.model import Reject
from logpipe.parse.framing import Framed

if TYPE_CHECKING:
    import pyarrow as pa

_DOCKER_FINAL: Final = re.compile(rb'\\n"\s*,|\\n"\s*}')
_CRI_PARTIAL: Final = re.compile(rb"^\S+ \S+ P(?::\S+)? ")


@dataclass(slots=True)
class Unwrapped:
    framed: Framed
    fallback_ts: pa.Array


def is_final_line(wrapper: str, line: bytes) -> bool:
    """Can a batch end after this raw line? False inside a group of partial lines."""
    if wrapper == "cri":
        return not _CRI_PARTIAL.match(line)
    if wrapper == "docker":
        return bool(_DOCKER_FINAL.search(line))
    return True


def _inner_record(text: str, stream: str | None) -> str:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            if isinstance(orjson.loads(stripped), dict):
                return stripped
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                # Valid JSON as far as orjson looked, but past its 1,024 levels (and so past
                # MAX_DEPTH): the normaliser dead-letters it as too_deep, as it would a bare line.
                return stripped
    return orjson.dumps({"message": text.rstrip("\r\n"), "stream": stream}).decode()


def unwrap(framed: Framed, wrapper: str) -> Unwrapped:
    """Replace each envelope (or group of partial envelopes) by the application's record."""
    import pyarrow as pa

    lines: list[str] = []
    offsets: list[int] = []
    times: list[str | None] = []
    rejects = list(framed.rejects)
    group: list[str] = []
    group_offset = -1
    group_time: str | None = None
    group_stream: str | None = None

    def flush() -> None:
        nonlocal group
        if group:
            lines.append(_inner_record("".join(group), group_stream))
            offsets.append(group_offset)
            times.append(group_time)
            group = []

    for raw, off in zip(framed.lines.to_pylist(), framed.offsets.to_pylist(), strict=True):
        parsed = _parse_cri(raw) if wrapper == "cri" else _parse_docker(raw)
        if isinstance(parsed, str):
            rejects.append(Reject(off, "invalid_envelope", parsed, raw.encode()[:DEAD_LETTER_HEAD_BYTES]))
            continue
        time, stream, content, final = parsed
        if not group:
            group_offset, group_time, group_stream = off, time, stream
        group.append(content)
        if final:
            flush()
    flush()  # a group cut by the end of input is kept rather than lost
    return Unwrapped(
        Framed(pa.array(lines, pa.large_string()), pa.array(offsets, pa.int64()), rejects),
        pa.array(times, pa.string()),
    )


def _parse_cri(raw: str) -> tuple[str, str, str, bool] | str:
    parts = raw.rstrip("\r").split(" ", 3)
    if len(parts) < 3 or parts[1] not in ("stdout", "stderr"):
        return "not a CRI log line (<time> <stream> <tag> <line>)"
    tag = parts[2].split(":")[0]
    if tag not in ("P", "F"):
        return f"unknown CRI tag {parts[2]!r}"
    return parts[0], parts[1], parts[3] if len(parts) == 4 else "", tag == "F"


def _parse_docker(raw: str) -> tuple[str | None, str | None, str, bool] | str:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return f"invalid Docker json-file line: {exc}"
    if not isinstance(obj, dict) or not isinstance(obj.get("log"), str):
        return "Docker json-file line without a string 'log'"
    log: str = obj["log"]
    time = obj.get("time")
    stream = obj.get("stream")
    return (
        time if isinstance(time, str) else None,
        stream if isinstance(stream, str) else None,
        log,
        log.endswith("\n"),
    )
