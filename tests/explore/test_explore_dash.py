"""A search word that starts with `-`: click takes it for options; the error says how to pass it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.exdata import logpipe, write_log


def _archive(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    objects = [
        {"timestamp": f"2026-11-20T10:00:0{n}Z", "level": "INFO", "message": text}
        for n, text in enumerate(["retry -timeout hit", "a plain line", "no -timeout here either", "timeout alone"])
    ]
    write_log(tmp_path / "app.log", objects)
    shipped = logpipe("ship", "--once", str(tmp_path / "app.log"), "--archive", str(tmp_path / "a"), "--no-progress")
    assert shipped.returncode == 0, shipped.stderr
    return tmp_path / "a", objects


def test_a_dash_word_as_an_option_is_one_line_that_says_how(tmp_path: Path) -> None:
    archive, _ = _archive(tmp_path)
    result = logpipe("search", "-timeout", "--archive", str(archive))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "No such option: -t" in lines[0]
    assert "logpipe search [OPTIONS] -- -timeout" in lines[0]


def test_after_double_dash_it_is_searched_for(tmp_path: Path) -> None:
    archive, objects = _archive(tmp_path)
    result = logpipe("search", "--archive", str(archive), "--format", "json", "--", "-timeout")
    assert result.returncode == 0, result.stderr
    found = sorted(r["message"] for r in json.loads(result.stdout))
    assert found == sorted(o["message"] for o in objects if "-timeout" in o["message"])


def test_other_unknown_options_get_no_hint(tmp_path: Path) -> None:
    archive, _ = _archive(tmp_path)
    result = logpipe("search", "--nope", "--archive", str(archive))
    assert result.returncode == 2
    assert "No such option: --nope" in result.stderr
    assert "[OPTIONS] --" not in result.stderr
