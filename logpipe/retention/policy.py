"""The retention policy file: levels to ages, per-service overrides, backends and where they are.

    version: 1
    max_clock_skew: 1h            # margin added to every age (see window.py)
    levels: {ERROR: 90d, WARNING: 30d, INFO: 7d, DEBUG: 1d}
    services:
      checkout: {ERROR: 365d}
    enforce: [archive, es, loki]  # backends `plan`/`apply` act on (each needs its section; none by default)
    archive: {path: ./logpipe-data}
    es: {url: es://127.0.0.1:9200, index: "logs-{service}-{level}-{date}", date_format: "%Y.%m.%d",
         mixed: [{pattern: "app-logs-*", level_field: level, ts_field: ts, service_field: service}]}
    loki: {url: loki://127.0.0.1:3100}
    audit: {path: /var/log/logpipe/retention.jsonl, stderr: true}
    lock: /var/lib/logpipe/retention.lock

A policy decides what gets deleted, so it is read strictly: an unknown key, level or backend is
an error naming its field path (`services.checkout.EROR`), never a silent default. CRITICAL
follows ERROR and TRACE follows DEBUG unless set, also inside a service's overrides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from logpipe.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from logpipe.engine.config import EsConfig
    from logpipe.sinks.loki.config import LokiConfig

LEVELS: Final = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_AGES: Final = {
    "ERROR": timedelta(days=90),
    "WARNING": timedelta(days=30),
    "INFO": timedelta(days=7),
    "DEBUG": timedelta(days=1),
}
# Levels without an age of their own take the age of their neighbour (stated in the README).
FOLLOWS: Final = {"CRITICAL": "ERROR", "TRACE": "DEBUG"}
BACKENDS: Final = ("archive", "es", "loki")
DEFAULT_POLICY_NAME: Final = "default_policy.yaml"  # package data beside this module
DEFAULT_SKEW: Final = timedelta(hours=1)
MIN_LITERAL_PREFIX: Final = 3
YAML_HINT: Final = "retention policies are YAML: pip install 'logpipe[retention]'"

_AGE_RE: Final = re.compile(r"^(\d+)\s*([hdw])$")
_UNIT: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_TOP_KEYS: Final = frozenset(
    {"version", "max_clock_skew", "levels", "services", "enforce", "archive", "es", "loki", "audit", "lock"}
)
_SERVICE_RE: Final = re.compile(r"^[A-Za-z0-9_.+-]+$")  # names that index names keep as they are

# An age of None means "keep forever" (`forever` in the file).
Ages = dict[str, timedelta | None]


@dataclass(frozen=True, slots=True)
class MixedIndices:
    """Indices that hold several levels (layouts users already have): cleaned by `_delete_by_query`."""

    pattern: str
    level_field: str = "level"
    ts_field: str = "ts"
    service_field: str = "service"


@dataclass(frozen=True, slots=True)
class EsTarget:
    config: EsConfig
    mixed: tuple[MixedIndices, ...] = ()


@dataclass(frozen=True, slots=True)
class LokiTarget:
    config: LokiConfig | None  # None when the URL's labels lack `level` (export still works, with a warning)
    url: str
    labels: tuple[str, ...]
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    source: Path
    levels: Ages
    services: dict[str, Ages]  # only the levels where a service differs from `levels`
    enforce: tuple[str, ...]
    max_clock_skew: timedelta = DEFAULT_SKEW
    archive: Path | None = None
    es: EsTarget | None = None
    loki: LokiTarget | None = None
    audit_path: Path | None = None
    audit_stderr: bool = True
    lock_path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    def age(self, level: str, service: str | None = None) -> timedelta | None:
        """The age for `level` (of `service`, when it has an override)."""
        if service is not None and level in self.services.get(service, {}):
            return self.services[service][level]
        return self.levels[level]

    def longest(self, level: str) -> timedelta | None:
        """The longest age any service keeps `level` for: what a store that cannot tell services
        apart (the archive's day partitions, per-level indices without `{service}`) must use."""
        ages = [self.levels[level], *(s[level] for s in self.services.values() if level in s)]
        if any(a is None for a in ages):
            return None
        return max(a for a in ages if a is not None)

    def overridden(self, level: str) -> list[str]:
        return sorted(s for s, ages in self.services.items() if level in ages)

    def lock_file(self) -> Path:
        """Where the run lock lives: `lock`, else beside the audit file, else beside the policy."""
        if self.lock_path is not None:
            return self.lock_path
        if self.audit_path is not None:
            return self.audit_path.with_name(self.audit_path.name + ".lock")
        return self.source.with_name(f".{self.source.name}.lock")


def default_policy_path() -> Path:
    """The policy that ships inside the package: what `retention` uses without `--policy`.

    A file in the package, not `./retention/policy.yaml`, so a pip-installed logpipe has a policy
    whatever the working directory (the repository's copy is the documented example).
    """
    return Path(__file__).with_name(DEFAULT_POLICY_NAME)


def with_archive(policy: Policy, archive: Path) -> Policy:
    """The policy with `archive` (from `--archive DIR`) in place of its `archive.path`.

    An audit file or lock the policy keeps inside its own archive folder moves with the archive
    (the default policy keeps its audit there), so a run on DIR writes nothing into a folder it
    was told not to use; anything the policy keeps elsewhere stays where the policy says.
    """
    old = policy.archive

    def moved(path: Path | None) -> Path | None:
        if path is None or old is None or not path.is_relative_to(old):
            return path
        return archive / path.relative_to(old)

    return replace(policy, archive=archive, audit_path=moved(policy.audit_path), lock_path=moved(policy.lock_path))


def load(path: Path) -> Policy:
    """Read and validate a policy file; UsageError (exit 2) on any problem, naming the field path."""
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError(YAML_HINT) from None
    if not path.is_file():
        raise UsageError(f"retention policy {path} does not exist")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"retention policy {path} is not valid YAML: {exc}") from None
    return parse(doc, path)


def parse(doc: Any, source: Path) -> Policy:
    """A parsed YAML document -> Policy (separate from `load` so tests can feed documents)."""
    where = _Where(source)
    top = where.mapping(doc, "", _TOP_KEYS)
    version = top.get("version", 1)
    if version != 1:
        where.fail("version", f"must be 1, not {version!r}")
    levels = _levels(where, top.get("levels", {}), "levels", None)
    services: dict[str, Ages] = {}
    for name, body in where.mapping(top.get("services", {}), "services", None).items():
        if not isinstance(name, str) or not _SERVICE_RE.match(name):
            where.fail(f"services.{name}", "is not a service name")
        resolved = _levels(where, body, f"services.{name}", levels)
        services[name] = {lv: age for lv, age in resolved.items() if age != levels[lv]}
    skew = _age(where, top.get("max_clock_skew", "1h"), "max_clock_skew", allow_zero=True)
    if skew is None:
        where.fail("max_clock_skew", "cannot be forever")
    # No default from the sections present: a section may be there only for `export`, and
    # deleting is something a policy must ask for by name.
    enforce_raw = top.get("enforce", [])
    if isinstance(enforce_raw, str):
        enforce_raw = [enforce_raw]
    if not isinstance(enforce_raw, list) or not all(isinstance(b, str) for b in enforce_raw):
        where.fail("enforce", f"must be a list of backends ({', '.join(BACKENDS)})")
    for i, backend in enumerate(enforce_raw):
        if backend not in BACKENDS:
            where.fail(f"enforce[{i}]", f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
        if backend not in top:
            where.fail(f"enforce[{i}]", f"backend {backend!r} is enforced but has no `{backend}:` section")
    warnings: list[str] = []
    archive = _archive(where, top["archive"]) if "archive" in top else None
    es = _es(where, top["es"]) if "es" in top else None
    loki = _loki(where, top["loki"]) if "loki" in top else None
    if loki is not None and loki.problem:
        if "loki" in enforce_raw:
            where.fail("loki.url", loki.problem)
        warnings.append(loki.problem)
    audit = where.mapping(top.get("audit", {}), "audit", frozenset({"path", "stderr"}))
    audit_path = _path(where, audit["path"], "audit.path") if audit.get("path") is not None else None
    audit_stderr = audit.get("stderr", True)
    if not isinstance(audit_stderr, bool):
        where.fail("audit.stderr", "must be true or false")
    lock = _path(where, top["lock"], "lock") if top.get("lock") is not None else None
    return Policy(
        source=source,
        levels=levels,
        services=services,
        enforce=tuple(dict.fromkeys(enforce_raw)),
        max_clock_skew=skew,
        archive=archive,
        es=es,
        loki=loki,
        audit_path=audit_path,
        audit_stderr=audit_stderr,
        lock_path=lock,
        warnings=warnings,
    )


class _Where:
    """Raises UsageError naming the policy file and the field path."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> NoReturn:
        raise UsageError(f"retention policy {self.source}: {path or '(top level)'} {message}")

    def mapping(self, value: Any, path: str, keys: frozenset[str] | None) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, not {type(value).__name__}")
        if keys is not None:
            for key in value:
                if key not in keys:
                    self.fail(
                        f"{path}.{key}" if path else str(key), f"is not a known key (known: {', '.join(sorted(keys))})"
                    )
        return dict(value)


def _levels(where: _Where, value: Any, path: str, base: Ages | None) -> Ages:
    """Ages of all six levels: given ones, then FOLLOWS, then `base` (the defaults or top level)."""
    given: Ages = {}
    for key, raw in where.mapping(value, path, None).items():
        level = str(key).upper()
        if level not in LEVELS:
            where.fail(f"{path}.{key}", f"is not a level (known: {', '.join(LEVELS)})")
        if level in given:
            where.fail(f"{path}.{key}", "is given twice (level names are case-insensitive)")
        given[level] = _age(where, raw, f"{path}.{key}")
    resolved: Ages = {}
    for level in LEVELS:
        if level in given:
            resolved[level] = given[level]
        elif level in FOLLOWS and FOLLOWS[level] in given:
            resolved[level] = given[FOLLOWS[level]]
        elif base is not None:
            resolved[level] = base[level]
        else:
            resolved[level] = DEFAULT_AGES.get(level, DEFAULT_AGES.get(FOLLOWS.get(level, ""), None))
    return resolved


def _age(where: _Where, raw: Any, path: str, *, allow_zero: bool = False) -> timedelta | None:
    """`90d`, `36h`, `2w`, a bare number of days, or `forever`."""
    if raw == "forever":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        where.fail(path, f"must be an age like 90d, 36h, 2w or forever, not {raw!r}")
    if isinstance(raw, int):
        age = timedelta(days=raw)
    else:
        match = _AGE_RE.match(raw.strip())
        if not match:
            where.fail(path, f"must be an age like 90d, 36h, 2w or forever, not {raw!r}")
        age = int(match.group(1)) * _UNIT[match.group(2)]
    if age < timedelta(0) or (age == timedelta(0) and not allow_zero):
        where.fail(path, f"must be more than zero, not {raw!r}")
    return age


def _path(where: _Where, raw: Any, path: str) -> Path:
    if not isinstance(raw, str) or not raw.strip():
        where.fail(path, "must be a path")
    return Path(raw).expanduser()


def _archive(where: _Where, value: Any) -> Path:
    body = where.mapping(value, "archive", frozenset({"path"}))
    if "path" not in body:
        where.fail("archive.path", "is required")
    return _path(where, body["path"], "archive.path")


def _es(where: _Where, value: Any) -> EsTarget:
    from dataclasses import replace

    from logpipe.engine.config import check_index_pattern, parse_target

    body = where.mapping(value, "es", frozenset({"url", "index", "date_format", "mixed"}))
    if not isinstance(body.get("url"), str):
        where.fail("es.url", "is required (es://HOST:PORT, secrets from LOGPIPE_ES_* variables)")
    try:
        config = parse_target(body["url"])
    except UsageError as exc:
        where.fail("es.url", str(exc))
        raise
    changes: dict[str, Any] = {}
    for key in ("index", "date_format"):
        if key in body:
            if not isinstance(body[key], str) or not body[key]:
                where.fail(f"es.{key}", "must be a non-empty string")
            changes[key] = body[key]
    config = replace(config, **changes)
    try:
        parts = check_index_pattern(config.index)
    except UsageError as exc:
        where.fail("es.index", str(exc))
        raise
    fields = {v for k, v in parts if k == "field"}
    if "level" not in fields:
        where.fail("es.index", f"{config.index!r} has no {{level}}: indices that mix levels belong under es.mixed")
    if len(config.index_prefix) < MIN_LITERAL_PREFIX:
        where.fail("es.index", f"{config.index!r}: the literal prefix must be at least {MIN_LITERAL_PREFIX} characters")
    from logpipe.retention.window import date_regex

    try:
        date_regex(config.date_format)
    except ValueError as exc:
        where.fail("es.date_format", str(exc))
    mixed: list[MixedIndices] = []
    raw_mixed = body.get("mixed", [])
    if not isinstance(raw_mixed, list):
        where.fail("es.mixed", "must be a list")
    for i, item in enumerate(raw_mixed):
        path = f"es.mixed[{i}]"
        entry = where.mapping(item, path, frozenset({"pattern", "level_field", "ts_field", "service_field"}))
        for key, val in entry.items():
            if not isinstance(val, str) or not val:
                where.fail(f"{path}.{key}", "must be a non-empty string")
        if "pattern" not in entry:
            where.fail(f"{path}.pattern", "is required")
        check_wildcard(entry["pattern"], lambda msg, p=path: where.fail(f"{p}.pattern", msg))
        mixed.append(MixedIndices(**entry))
    return EsTarget(config, tuple(mixed))


def check_wildcard(pattern: str, fail: Any) -> None:
    """Refuse patterns that could reach indices logpipe does not manage: a wildcard-only pattern,
    a short literal prefix, lists, exclusions, system indices and `_all`."""
    literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
    if any(c in pattern for c in ",: ") or pattern.startswith(("-", "_", ".", "+")):
        fail(f"{pattern!r}: one pattern without lists, exclusions, remote clusters or system indices")
    elif not re.fullmatch(r"[a-z0-9_.*?+-]+", pattern):
        fail(f"{pattern!r}: index names are lower-case letters, digits, . _ - + (and * ? as wildcards)")
    elif len(literal) < MIN_LITERAL_PREFIX:
        fail(
            f"{pattern!r} is (nearly) wildcard-only: it needs a literal prefix of at least "
            f"{MIN_LITERAL_PREFIX} characters, e.g. 'app-logs-*'"
        )


def _loki(where: _Where, value: Any) -> LokiTarget:
    from urllib.parse import parse_qsl, urlsplit

    from logpipe.sinks.loki.config import DEFAULT_LABELS, parse_loki_target

    body = where.mapping(value, "loki", frozenset({"url"}))
    url = body.get("url")
    if not isinstance(url, str):
        where.fail("loki.url", "is required (the same loki:// URL the agent ships with)")
        raise AssertionError
    options = dict(parse_qsl(urlsplit(url).query))
    labels = (
        tuple(n.strip().removeprefix("attrs.") for n in options["labels"].split(",") if n.strip())
        if "labels" in options
        else DEFAULT_LABELS
    )
    if "level" not in labels:
        return LokiTarget(
            None,
            url,
            labels,
            f"`level` is not a stream label of {url!r} (labels: "
            f"{','.join(labels)}): Loki can select streams by level only "
            "when it is a label",
        )
    try:
        config = parse_loki_target(url)
    except UsageError as exc:
        where.fail("loki.url", str(exc))
        raise
    return LokiTarget(config, url, labels)
