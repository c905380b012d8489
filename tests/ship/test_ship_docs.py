"""Every shipping-side command and option is documented in the README (a test fails otherwise)."""

from __future__ import annotations

import re

import pytest
import typer.main

from logpipe.cli.app import _register, app
from tests.support.cli import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _command(path: list[str]) -> object:
    _register()
    cmd = typer.main.get_command(app)
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    return cmd


@pytest.mark.parametrize(
    "path", [["ship"], ["sql"], ["archive", "compact"], ["ingest"], ["config", "validate"], ["config", "schema"]]
)
def test_command_and_options_are_documented(path: list[str]) -> None:
    """The README has a section for the command and mentions each of its options."""
    headings = [line for line in README.splitlines() if line.startswith("### ")]
    assert any(f"`logpipe {' '.join(path)}`" in h for h in headings)
    cmd = _command(path)
    for param in cmd.params:  # type: ignore[attr-defined]
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("--"):
                assert opt in README, f"{opt} of logpipe {' '.join(path)} is not in the README"


def test_every_format_is_documented() -> None:
    """Each format profile name appears in the README."""
    from logpipe.parse.profiles import PROFILES

    for name in PROFILES:
        assert f"`{name}`" in README, name


def code_reasons() -> set[str]:
    """Every dead-letter reason the code can write, read from its source: the Rust normaliser's
    `reason: "..."` (its tests excluded) and Python's `Reject(offset, "...", ...)` and
    `DEAD_LETTER_REASON = "..."` (any name with "reason" in it). Comments and docstrings name reasons too: they do not count."""
    reasons: set[str] = set()
    for path in sorted((ROOT / "native" / "src").glob("*.rs")):
        code = path.read_text(encoding="utf-8").split("#[cfg(test)]", 1)[0]
        reasons.update(re.findall(r'\breason:\s*"([a-z_0-9]+)"', code))
    for path in sorted((ROOT / "logpipe").rglob("*.py")):
        code = path.read_text(encoding="utf-8")
        reasons.update(re.findall(r'\bReject\(\s*[^,()]+(?:\([^()]*\))?,\s*"([a-z_0-9]+)"', code))
        reasons.update(re.findall(r'^\s*\w*(?i:reason)\w*(?::[^=\n]+)?=\s*"([a-z_0-9]+)"', code, re.MULTILINE))
    return reasons


# One line for each way the parser rejects input, and the format it is read as.
BAD_LINES = [
    (b"not json\n", "python-json-logger"),
    (b'{"a": NaN}\n', "python-json-logger"),
    (b"[1, 2]\n", "python-json-logger"),
    (b'{"a": ' * 1100 + b"1" + b"}" * 1100 + b"\n", "python-json-logger"),
    (b'{"a": "' + b"x" * (1 << 20) + b'"}\n', "python-json-logger"),
    (b'{"a": "\xff"}\n', "python-json-logger"),
    (b'{"log": 5}\n', "docker"),
]


def emitted_reasons() -> set[str]:
    """The reasons the real parser gives the lines above."""
    from parse_support import run

    return {reject.reason for data, fmt in BAD_LINES for reject in run(data, fmt).rejects}


def test_the_reason_scan_sees_what_the_parser_emits() -> None:
    """The scan of the source finds every reason the running parser gives (the Rust ones
    included), and one for each bad line: a scan that missed the normaliser would fail here."""
    emitted = emitted_reasons()
    assert len(emitted) == len(BAD_LINES), emitted
    assert emitted <= code_reasons(), emitted - code_reasons()


def test_every_dead_letter_reason_is_documented() -> None:
    """Each reason the code can write a dead letter with is named in the README."""
    reasons = code_reasons()
    assert {"invalid_json", "too_deep", "invalid_envelope", "engine_rejected"} <= reasons, reasons
    missing = sorted(r for r in reasons if f"`{r}`" not in README)
    assert not missing, f"dead-letter reasons the README does not name: {missing}"


def test_the_default_profiles_field_names_are_the_readme_table() -> None:
    """The README's one table of field names lists, per field, exactly the names the default
    profile reads, in its order (#20 item 13)."""
    from logpipe.parse.profiles import PYTHON_JSON

    after_title = README.split("**Field names the default profile reads**", 1)[1]
    table = [line for line in after_title.split("\n\n")[1].splitlines() if line.startswith("| `")]
    documented: list[str] = []
    for line in table:
        fields = re.findall(r"`([a-z_]+)`", line.split("|")[1])
        groups = line.split("|")[2].split(";")
        assert len(groups) == len(fields), line
        for name, group in zip(fields, groups, strict=True):
            documented.append(name)
            names = re.findall(r"`([^`]+)`", group)
            assert names == [".".join(p) for p in PYTHON_JSON.fields[name].paths], name
    assert sorted(documented) == sorted(PYTHON_JSON.fields)
