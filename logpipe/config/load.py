"""Reading the agent's config: YAML -> `${NAME}` substitution -> strict conversion into the model.

Every problem is collected with the path of the field it concerns (`sinks[0].urll: unknown key`)
and all of them are reported together in one ConfigError. Values substituted from the
environment are treated as secrets: any message that could show them has them replaced by
`***`, and the `url` of a sink is kept out of the model's repr.
"""

from __future__ import annotations

import difflib
import os
import re
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Final, Union, get_args, get_origin, get_type_hints

from logpipe.config.model import AgentConfig, cross_checks
from logpipe.errors import UsageError

_REFERENCE: Final = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values this short are not worth hiding, and masking them would garble every message.
_MIN_SECRET_CHARS: Final = 3


class ConfigError(UsageError):
    """A config that cannot be used; `problems` are `path: what is wrong` lines."""

    def __init__(self, where: str, problems: list[str]) -> None:
        self.problems = problems
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        super().__init__(f"{where}: {count}:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Loaded:
    """A valid config and the secrets that went into it (to mask in anything shown)."""

    config: AgentConfig
    secrets: frozenset[str] = frozenset()

    def mask(self, text: str) -> str:
        return mask(text, self.secrets)


def mask(text: str, secrets: frozenset[str]) -> str:
    """`text` with every secret replaced by `***` (longest first, so no secret is half-shown)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text


def load_file(path: Path, env: Mapping[str, str] | None = None) -> Loaded:
    """Read, substitute and validate a config file; ConfigError lists everything wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from None
    return load_text(text, str(path), env)


def load_text(text: str, where: str = "config", env: Mapping[str, str] | None = None) -> Loaded:
    """Like load_file, for text in hand (`where` names it in messages)."""
    return from_raw(parse_yaml(text, where), where, env)


def from_raw(
    raw: Any,
    where: str,
    env: Mapping[str, str] | None = None,
    *,
    describe: Callable[[str], str] = lambda path: path,
) -> Loaded:
    """Validate data in the config file's shape (from YAML, or from the `ship` flags).

    `describe` turns a field path into the words a message should use for it (the flags
    say `--label env` where the file says `labels.env`).
    """
    problems = Problems(describe, os.environ if env is None else env)
    config = convert(raw, AgentConfig, {}, "", problems)
    if isinstance(config, AgentConfig):
        for path, message in cross_checks(config):
            problems.add(path, message)
    secrets = frozenset(problems.secrets)
    if problems or not isinstance(config, AgentConfig):
        raise ConfigError(where, [mask(line, secrets) for line in problems.lines()])
    return Loaded(config, secrets)


def parse_yaml(text: str, where: str) -> Any:
    """YAML with duplicate keys refused (PyYAML would silently keep the last one)."""
    import yaml

    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(where, [f"not valid YAML{at}: {problem}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(where, loader.duplicates)
    return data


def _make_loader() -> type:
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.duplicates: list[str] = []

    def construct_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: reported as a key that is not a name
            if key in seen:
                loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return StrictLoader


class _LazyLoader:
    """Builds the YAML loader class on first use, so importing this module does not import yaml."""

    _cls: type | None = None

    def __call__(self, text: str) -> Any:
        if _LazyLoader._cls is None:
            _LazyLoader._cls = _make_loader()
        return _LazyLoader._cls(text)


_StrictLoader = _LazyLoader()


# ----------------------------------------------------------------------------------- problems


class Problems:
    """What is wrong so far, and what a conversion needs on the way: the environment to
    substitute from, and the values taken from it (secrets, to mask)."""

    def __init__(self, describe: Callable[[str], str], env: Mapping[str, str]) -> None:
        self._found: list[tuple[str, str]] = []
        self._describe = describe
        self.env = env
        self.secrets: set[str] = set()

    def add(self, path: str, message: str) -> None:
        self._found.append((path, message))

    def __len__(self) -> int:
        return len(self._found)

    def lines(self) -> list[str]:
        return [f"{self._describe(path) or '(top level)'}: {message}" for path, message in self._found]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


# ---------------------------------------------------------------------------- substitution


def substitute(text: str, path: str, problems: Problems) -> str | None:
    """`${NAME}` replaced from the environment (`$${` stands for a literal `${`); None if a
    reference is bad or its variable is not set (the problem is recorded)."""
    if "$" not in text:
        return text
    before = len(problems)

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name = match.group(1)
        if name is None:
            problems.add(path, "unclosed ${ (write $${ for a literal ${)")
        elif not _VARIABLE.match(name):
            problems.add(path, f"${{{name}}} is not a variable name")
        elif name not in problems.env:
            problems.add(path, f"environment variable {name} is not set")
        else:
            problems.secrets.add(problems.env[name])
            return problems.env[name]
        return ""

    result = _REFERENCE.sub(replace, text)
    return result if len(problems) == before else None


# ------------------------------------------------------------------------------ conversion

_BAD: Final = object()  # a value that failed (its problems are recorded)


def convert(value: Any, kind: Any, rules: Mapping[str, Any], path: str, problems: Problems) -> Any:
    """`value` checked against a type of the model and its rules; _BAD if it is wrong."""
    origin, args = get_origin(kind), get_args(kind)
    if is_dataclass(kind) and isinstance(kind, type):
        result = _dataclass(value, kind, path, problems)
    elif origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        result = None if value is None else convert(value, inner[0], rules, path, problems)
        return result  # the rules were applied to the inner value
    elif origin is tuple:
        result = _list(value, args[0], rules, path, problems)
    elif origin is not None and issubclass(origin, Mapping):
        result = _mapping(value, args[1], rules, path, problems)
    else:
        result = _scalar(value, kind, path, problems)
    if result is _BAD:
        return _BAD
    problem = check_rules(result, rules)
    if problem is not None:
        problems.add(path, problem)
        return _BAD
    return result


def _dataclass(value: Any, cls: type, path: str, problems: Problems) -> Any:
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {_kind(value)}")
        return _BAD
    hints = get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key in value:
        if key not in known:
            near = difflib.get_close_matches(str(key), known, n=1)
            problems.add(_join(path, str(key)), "unknown key" + (f" (did you mean {near[0]}?)" if near else ""))
    values: dict[str, Any] = {}
    failed = False
    for f in fields(cls):
        here = _join(path, f.name)
        if f.name not in value:
            if f.default is MISSING and f.default_factory is MISSING:
                problems.add(here, "is required")
                failed = True
            continue
        converted = convert(value[f.name], hints[f.name], f.metadata, here, problems)
        if converted is _BAD:
            failed = True
        else:
            values[f.name] = converted
    if failed or any(key not in known for key in value):
        return _BAD
    return cls(**values)


def _list(value: Any, item: Any, rules: Mapping[str, Any], path: str, problems: Problems) -> Any:
    if rules.get("one_or_many") and not isinstance(value, list):
        value = [value]
    if not isinstance(value, list):
        problems.add(path, f"expected a list, got {_kind(value)}")
        return _BAD
    items = [convert(v, item, rules.get("items", {}), f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return _BAD if any(i is _BAD for i in items) else tuple(items)


def _mapping(value: Any, item: Any, rules: Mapping[str, Any], path: str, problems: Problems) -> Any:
    if not isinstance(value, dict):
        problems.add(path, f"expected a mapping, got {_kind(value)}")
        return _BAD
    out: dict[str, Any] = {}
    failed = False
    for key, sub in value.items():
        here = _join(path, str(key))
        problem = (
            f"expected a name, got {_kind(key)}"
            if not isinstance(key, str)
            else check_rules(key, rules.get("keys", {}))
        )
        if problem is not None:
            problems.add(here, problem)
            failed = True
            continue
        converted = convert(sub, item, rules.get("values", {}), here, problems)
        if converted is _BAD:
            failed = True
        else:
            out[key] = converted
    return _BAD if failed else out


def _scalar(value: Any, kind: Any, path: str, problems: Problems) -> Any:
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        str: isinstance(value, str),
    }
    if not ok.get(kind, False):
        problems.add(path, f"expected {_NAMES[kind]}, got {_kind(value)}")
        return _BAD
    if kind is str:
        substituted = substitute(value, path, problems)
        return _BAD if substituted is None else substituted
    return float(value) if kind is float else value


_NAMES: Final[dict[Any, str]] = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def check_rules(value: Any, rules: Mapping[str, Any]) -> str | None:
    """The first rule `value` breaks, as a message; None if it keeps them all."""
    if "enum" in rules and value not in rules["enum"]:
        return f"{value!r} is not one of {', '.join(str(v) for v in rules['enum'])}"
    if "min_length" in rules and len(value) < rules["min_length"]:
        return "must not be empty"
    if "pattern" in rules and not re.search(rules["pattern"], value):
        return f"{value!r} is not valid: {rules.get('hint', rules['pattern'])}"
    if "exclusive_minimum" in rules and value <= rules["exclusive_minimum"]:
        return f"must be more than {rules['exclusive_minimum']}"
    if "min_items" in rules and len(value) < rules["min_items"]:
        return f"needs at least {rules['min_items']} item" + ("s" if rules["min_items"] > 1 else "")
    check = rules.get("check")
    if check is not None:
        result: str | None = check(value)
        return result
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
