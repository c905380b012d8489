"""Format profiles: how each logging library's JSON maps onto the canonical record.

A profile is data. Each canonical field lists the JSON paths it may come from (the first with a
non-null value wins); a path is a tuple of keys, so `("log.level",)` is one dotted key (as
ecs-logging writes it) and `("log", "level")` is a nested one. A few fields combine several paths
(ECS durations are nanoseconds, loguru splits an exception in parts): each such rule has a name
here and is implemented by the native normaliser (native/src/normalise.rs, `Combine`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Final

Path = tuple[str, ...]

# The canonical columns a profile reads from the JSON, in schema order, which is also the order of
# the native normaliser's field positions (native/src/normalise.rs). The normaliser computes the
# other columns: endpoint, message_key, attrs, source, offset, event_id.
FIELDS: Final = (
    "ts",
    "level",
    "message",
    "logger",
    "service",
    "host",
    "request_id",
    "user_id",
    "session_id",
    "trace_id",
    "method",
    "path",
    "status",
    "duration_ms",
    "error",
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """Where one canonical field comes from: candidate paths, and how their values combine.

    `combine` is "first" (the first non-null path wins) or a named rule over the values of the
    paths by position: "nanos_to_millis" ({0} or {1}, in ns), "ecs_error" (stack trace {0}/{1},
    else "type: message" from {2}/{3} and {4}/{5}), "loguru_error" ("type: value" from {0} and
    {1}, a newline, then the rendered text {2}).
    """

    paths: tuple[Path, ...]
    combine: str = "first"
    # With "first", per path: the factor that turns its number into the field's unit (1000 for
    # a duration in seconds read as duration_ms). Empty: every path is in the field's unit.
    scales: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Profile:
    """One input shape. `root` is the object whose remaining keys become `attrs`; `lift` names
    sub-objects (loguru's `extra`) whose keys are lifted into `attrs` beside the root's."""

    name: str
    fields: Mapping[str, FieldSpec]
    level_numbers: str = "auto"  # auto | pino | syslog | python
    root: Path = ()
    lift: tuple[Path, ...] = ()
    drop: tuple[str, ...] = ()  # extra root keys that are renderings of others (loguru "text")
    wrapper: str | None = None  # docker | cri: the line is an envelope around the real record
    description: str = ""

    def alias_groups(self) -> tuple[tuple[str, ...], ...]:
        """For each field read from top-level keys of the root, those keys in priority order.

        Only the alias a record's value was taken from may leave `attrs` (the others are data the
        field did not use). Fields with a combine rule use several keys and consume none of
        them; nested paths consume nothing either, because removing a nested key by merge patch
        could turn a scalar into an object.
        """
        depth = len(self.root)
        groups = []
        for spec in self.fields.values():
            if spec.combine != "first":
                continue
            keys = tuple(dict.fromkeys(p[depth] for p in spec.paths if len(p) == depth + 1 and p[:depth] == self.root))
            if keys:
                groups.append(keys)
        return tuple(groups)

    def always_consumed(self) -> tuple[str, ...]:
        """Root keys that always leave `attrs`: renderings (`drop`) and lifted sub-objects."""
        depth = len(self.root)
        return tuple(sorted({*self.drop, *(p[depth] for p in self.lift if len(p) == depth + 1)}))


def _f(*paths: str | Path, combine: str = "first") -> FieldSpec:
    return FieldSpec(tuple((p,) if isinstance(p, str) else p for p in paths), combine)


def _durations(ms: tuple[str, ...], seconds: tuple[str, ...] = ()) -> FieldSpec:
    """duration_ms from keys in milliseconds, then keys in seconds (times 1000)."""
    return FieldSpec(tuple((k,) for k in (*ms, *seconds)), scales=(1.0,) * len(ms) + (1000.0,) * len(seconds))


# Durations under names that say milliseconds: read as ms by every profile that reads durations
# from top-level keys.
MS_DURATION_NAMES: Final = (
    "duration_ms",
    "elapsed_ms",
    "latency_ms",
    "response_time_ms",
    "request_duration_ms",
    "took_ms",
    "durationMs",
    "elapsedMs",
    "latencyMs",
    "responseTimeMs",
)
# Bare duration names: milliseconds as Python web services write them (the seed's `duration`,
# whose own "slow requests" query is `duration >= 1000`) and as Node's morgan/pino do
# (`response_time`, `responseTime`). Go loggers write a bare duration in seconds (zap's production
# encoder) or nanoseconds (logrus: Go's JSON encoding of time.Duration): zap reads its bare names
# as seconds, logrus leaves them in attrs.
BARE_MS_DURATION_NAMES: Final = ("duration", "response_time", "responseTime")
# Durations under names that say seconds: times 1000. (nginx's `request_time` is seconds too, but
# other logs use that name for the time a request came in: it stays in attrs.)
SECONDS_DURATION_NAMES: Final = (
    "duration_s",
    "duration_seconds",
    "elapsed_s",
    "elapsed_seconds",
    "latency_s",
    "latency_seconds",
    "response_time_s",
    "response_time_seconds",
)
ZAP_BARE_SECONDS_NAMES: Final = ("duration", "latency", "elapsed")

# The default: python-json-logger with logpipe.logging's field names, and the common aliases
# other JSON loggers use, so a file in an unknown-but-reasonable shape still maps well. The
# README's table "Field names the default profile reads" lists these (a test keeps them equal).
PYTHON_JSON: Final = Profile(
    name="python-json-logger",
    description="python-json-logger (default): timestamp/asctime, levelname/level, name, message, request context",
    fields={
        "ts": _f("timestamp", "asctime", "time", "@timestamp", "ts", "created"),
        "level": _f("level", "levelname", "severity", "log.level"),
        "message": _f("message", "msg"),
        "logger": _f("logger", "name", "logger_name"),
        "service": _f("service", "service_name", "app"),
        "host": _f("host", "hostname"),
        "request_id": _f("request_id", "requestId", "req_id"),
        "user_id": _f("user_id", "userId"),
        "session_id": _f("session_id", "sessionId"),
        "trace_id": _f("trace_id", "traceId", "otelTraceID"),
        "method": _f("method", "http_method", "request_method"),
        # A raw path under any of these names: `endpoint` (the seed's) is the path as requested,
        # templated into the `endpoint` column like any other path.
        "path": _f("path", "endpoint", "url", "http_path", "request_path"),
        "status": _f("status", "status_code", "statusCode", "http_status", "response_status"),
        "duration_ms": _durations((*MS_DURATION_NAMES, *BARE_MS_DURATION_NAMES), SECONDS_DURATION_NAMES),
        "error": _f("exc_info", "exception", "stack_info", "stack_trace", "error"),
    },
)

ECS: Final = Profile(
    name="ecs",
    description="Elastic Common Schema (ecs-logging): @timestamp, log.level, dotted or nested fields",
    fields={
        "ts": _f("@timestamp"),
        "level": _f("log.level", ("log", "level")),
        "message": _f("message"),
        "logger": _f("log.logger", ("log", "logger")),
        "service": _f("service.name", ("service", "name")),
        "host": _f("host.hostname", ("host", "hostname"), "host.name", ("host", "name")),
        # ECS has no session field and apps keep their own ids in `labels`: read there when the
        # ECS fields are absent (the ECS field wins when a record has both).
        "request_id": _f(
            "http.request.id", ("http", "request", "id"), "labels.request_id", ("labels", "request_id"), "request_id"
        ),
        "user_id": _f("user.id", ("user", "id"), "labels.user_id", ("labels", "user_id"), "user_id"),
        "session_id": _f("session.id", ("session", "id"), "labels.session_id", ("labels", "session_id"), "session_id"),
        "trace_id": _f("trace.id", ("trace", "id")),
        "method": _f("http.request.method", ("http", "request", "method")),
        "path": _f("url.path", ("url", "path")),
        "status": _f("http.response.status_code", ("http", "response", "status_code")),
        # ECS event.duration is in nanoseconds.
        "duration_ms": _f("event.duration", ("event", "duration"), combine="nanos_to_millis"),
        "error": _f(
            "error.stack_trace",
            ("error", "stack_trace"),
            "error.type",
            ("error", "type"),
            "error.message",
            ("error", "message"),
            combine="ecs_error",
        ),
    },
)

STRUCTLOG: Final = replace(
    PYTHON_JSON,
    name="structlog",
    description="structlog JSONRenderer: event, level, timestamp, logger, exception",
    fields={**PYTHON_JSON.fields, "message": _f("event", "message"), "error": _f("exception", "exc_info", "error")},
)

LOGURU: Final = Profile(
    name="loguru",
    description="loguru serialize=True: {text, record:{time, level, message, name, extra, exception}}",
    root=("record",),
    lift=(("record", "extra"),),
    drop=("time", "level", "exception"),
    fields={
        "ts": _f(("record", "time", "timestamp"), ("record", "time", "repr")),
        "level": _f(("record", "level", "name")),
        "message": _f(("record", "message")),
        "logger": _f(("record", "name")),
        "service": _f(("record", "extra", "service")),
        "host": _f(("record", "extra", "host")),
        "request_id": _f(("record", "extra", "request_id")),
        "user_id": _f(("record", "extra", "user_id")),
        "session_id": _f(("record", "extra", "session_id")),
        "trace_id": _f(("record", "extra", "trace_id")),
        "method": _f(("record", "extra", "method")),
        "path": _f(("record", "extra", "path")),
        "status": _f(("record", "extra", "status")),
        "duration_ms": _f(("record", "extra", "duration_ms")),
        # loguru records the exception as type/value; the rendered traceback is only in `text`.
        "error": _f(
            ("record", "exception", "type"),
            ("record", "exception", "value"),
            ("text",),
            combine="loguru_error",
        ),
    },
)

PINO: Final = Profile(
    name="pino",
    level_numbers="pino",
    description="pino and bunyan: numeric levels 10-60, time in epoch ms (pino) or ISO (bunyan), msg",
    fields={
        "ts": _f("time", "timestamp"),
        "level": _f("level"),
        "message": _f("msg", "message"),
        "logger": _f("name"),
        "service": _f("service"),
        "host": _f("hostname"),
        "request_id": _f("reqId", ("req", "id"), "request_id"),
        "user_id": _f("userId", "user_id"),
        "session_id": _f("sessionId", "session_id"),
        "trace_id": _f("trace_id", "traceId"),
        "method": _f(("req", "method")),
        "path": _f(("req", "url")),
        "status": _f(("res", "statusCode")),
        "duration_ms": _f("responseTime"),
        "error": _f(("err", "stack"), ("err", "message")),
    },
)

WINSTON: Final = replace(
    PYTHON_JSON,
    name="winston",
    description="winston format.json(): level, message, timestamp, stack, defaultMeta fields",
    fields={**PYTHON_JSON.fields, "error": _f("stack", "error")},
)

ZAP: Final = replace(
    PYTHON_JSON,
    name="zap",
    description="zap production JSON: ts (epoch seconds or ISO), level, logger, msg, caller, stacktrace",
    fields={
        **PYTHON_JSON.fields,
        "ts": _f("ts", "time", "timestamp"),
        "message": _f("msg", "message"),
        "duration_ms": _durations(MS_DURATION_NAMES, (*SECONDS_DURATION_NAMES, *ZAP_BARE_SECONDS_NAMES)),
        "error": _f("stacktrace", "error"),
    },
)

LOGRUS: Final = replace(
    PYTHON_JSON,
    name="logrus",
    description="logrus JSONFormatter: time, level, msg, error",
    fields={
        **PYTHON_JSON.fields,
        "ts": _f("time"),
        "message": _f("msg", "message"),
        "duration_ms": _durations(MS_DURATION_NAMES, SECONDS_DURATION_NAMES),
        "error": _f("error"),
    },
)

DOCKER: Final = replace(
    PYTHON_JSON,
    name="docker",
    wrapper="docker",
    description="Docker json-file: {log, stream, time}; partial lines joined; the inner line parsed as JSON when it is",
)

CRI: Final = replace(
    PYTHON_JSON,
    name="cri",
    wrapper="cri",
    description="Kubernetes CRI: '<time> <stream> <P|F> <line>'; P parts joined; the inner line parsed as JSON when it is",
)

PROFILES: Final[dict[str, Profile]] = {
    p.name: p for p in (PYTHON_JSON, ECS, STRUCTLOG, LOGURU, PINO, WINSTON, ZAP, LOGRUS, DOCKER, CRI)
}


@dataclass(frozen=True, slots=True)
class FieldOverrides:
    """User-configured field names: `--field level=severity` puts `$.severity` first for `level`."""

    paths: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)

    def apply(self, profile: Profile) -> Profile:
        if not self.paths:
            return profile
        fields = dict(profile.fields)
        for name, extra in self.paths.items():
            base = fields.get(name, FieldSpec(()))
            # A combine rule reads its paths by position, so user paths replace it. User paths are
            # in the field's unit (their scale 1).
            if base.combine != "first":
                fields[name] = FieldSpec(extra)
            else:
                scales = (1.0,) * len(extra) + base.scales if base.scales else ()
                fields[name] = FieldSpec(extra + base.paths, scales=scales)
        return replace(profile, fields=fields)


def parse_field_override(text: str) -> tuple[str, Path]:
    """`level=severity` or `user_id=ctx.user.id` (dots nest) -> ("level", ("severity",))."""
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not path:
        raise ValueError(f"expected FIELD=JSON.PATH, got {text!r}")
    if name not in FIELDS:
        raise ValueError(f"unknown field {name!r}; one of: {', '.join(FIELDS)}")
    return name, tuple(path.split("."))
