"""Screenshots of every `logpipe ui` view, for the README: a week of demo log, served and shot.

    .venv/bin/python scripts/ui_screenshots.py [--out docs/ui] [--archive DIR]

Without --archive it writes a week of the demo log (scripts/demo_log.py --hours 168) and ships
it into a scratch archive. Then it starts `logpipe ui` on a free port, opens each view in
Debian's Chromium (Playwright, as tests/ui do) and saves `<view>.png` at 1280x800.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The view, the state it is shown in (the query string after `view=`), and whether the shot is
# of the whole page (taller than the window) or of the window.
VIEWS = [
    ("discover", "discover", False),
    ("errors", "errors", False),
    ("patterns", "patterns", False),
    ("journey", "journey&user={user}", False),
    ("slow", "slow", False),
    ("traffic", "traffic", True),
]


def demo_archive(folder: Path) -> Path:
    log, archive = folder / "app.log", folder / "archive"
    run = [
        sys.executable,
        str(ROOT / "scripts" / "demo_log.py"),
        "--out",
        str(log),
        "--lines",
        "60000",
        "--hours",
        "168",
    ]
    subprocess.run(run, check=True)
    subprocess.run(
        [sys.executable, "-m", "logpipe", "ship", "--once", str(log), "--archive", str(archive), "--no-progress"],
        check=True,
        capture_output=True,
    )
    return archive


def busiest_user(archive: Path) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "logpipe",
            "sql",
            "--archive",
            str(archive),
            "--format",
            "csv",
            "SELECT user_id FROM logs WHERE user_id IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.splitlines()[1].strip()


def shoot(archive: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    server = subprocess.Popen(
        [sys.executable, "-m", "logpipe", "ui", "--archive", str(archive), "--bind", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert server.stderr is not None
        match = None
        while match is None:
            line = server.stderr.readline()
            if not line:
                raise SystemExit("logpipe ui exited before it served")
            match = re.search(r"at (http://\S+/) ", line)
        url = match.group(1)
        user = busiest_user(archive)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            for name, state, whole in VIEWS:
                page.goto(f"{url}?view={state.format(user=user)}")
                page.wait_for_selector(
                    f'main#view[data-rendered][data-view="{name}"]', state="attached", timeout=60_000
                )
                page.screenshot(path=str(out / f"{name}.png"), full_page=whole)
                print(out / f"{name}.png")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "ui")
    parser.add_argument("--archive", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        archive = args.archive or demo_archive(Path(scratch))
        shoot(archive, args.out)


if __name__ == "__main__":
    main()
