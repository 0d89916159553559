"""Headless Chromium for the report tests: render a page to PNG and read its colors."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def chromium() -> str:
    """The browser, or a skip that says how CI gets one."""
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("no Chromium on this machine (.ci/run installs it)")
    return found


def render(browser: str, page: Path, shot: Path, *, width: int, height: int, wait_ms: int = 0) -> None:
    """Headless Chromium as CI and this machine allow it (no sandbox as root, no network at all);
    ``wait_ms`` of virtual time lets a page's scripts (Evidently's plots) finish drawing."""
    import tempfile

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--hide-scrollbars",
                f"--window-size={width},{height}",
                *([f"--virtual-time-budget={wait_ms}"] if wait_ms else []),
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )


def screenshot(page: Path, shot: Path, *, width: int = 1100, height: int = 2200) -> set[tuple[int, int, int]]:
    """Render ``page`` the way a reader's browser would, and return the colors on screen."""
    from PIL import Image

    render(chromium(), page, shot, width=width, height=height)
    image = Image.open(shot).convert("RGB")
    return {color for _, color in image.getcolors(maxcolors=1 << 22)}


def rgb(hex_color: str) -> tuple[int, int, int]:
    value = hex_color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
