"""report.html in headless Chromium (Debian's `chromium` package): every figure loads, the page renders.

Skipped where chromium is not installed (`apt-get install chromium`)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
PROBE = (
    '<script>window.addEventListener("load", () => document.body.setAttribute("data-img-widths", '
    "JSON.stringify([...document.images].map(i => i.complete ? i.naturalWidth : 0))));</script>"
)

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")]


def chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--disable-gpu", "--no-first-run", f"--user-data-dir={cwd / 'profile'}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        flags.append("--no-sandbox")  # chromium refuses to run its sandbox as root (CI containers)
    cmd = [CHROMIUM, *flags, *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_every_image_of_the_html_report_loads(good_build: Path, tmp_path: Path) -> None:
    page = (good_build / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    res = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), cwd=tmp_path)
    found = re.search(r'data-img-widths="([^"]*)"', res.stdout)
    assert found, res.stderr[-2000:]
    widths = json.loads(html.unescape(found.group(1)))
    visuals = json.loads((good_build / "report.json").read_text())["visuals"]
    assert len(widths) == len(visuals) >= 2
    assert all(w > 0 for w in widths), widths


def test_html_report_screenshot(good_build: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    page = (good_build / "report.html").as_uri()
    res = chromium("--window-size=1280,2400", f"--screenshot={shot}", page, cwd=tmp_path)
    assert shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1280, 2400)
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 50  # a rendered page, not a blank one
