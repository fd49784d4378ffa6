"""Open an HTML page in headless Chromium and report how many of its images decoded."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)

# appended to a copy of the page: after load, the title says how many <img> decoded
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  document.title = 'IMAGES ' + ok + '/' + imgs.length;
});
</script>"""


def _flags(profile: str) -> list[str]:
    return [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
    ]


def images_loaded(page: Path) -> tuple[int, int]:
    """(decoded images, total images) for ``page`` as Chromium renders it."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [*_flags(profile), "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120
        )
    probe.unlink()
    m = re.search(r"<title>IMAGES (\d+)/(\d+)</title>", out.stdout)
    if not m:
        raise AssertionError(f"chromium did not run the probe: {out.stderr[-800:]}")
    return int(m.group(1)), int(m.group(2))


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [*_flags(profile), f"--screenshot={png}", f"--window-size={width},{height}", page.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return png


def evaluate(page: Path, expression: str, width: int = 1200) -> Any:
    """The JSON value of a JavaScript ``expression`` evaluated after ``page`` loads in Chromium
    at a ``width``-pixel-wide window (layout checks: what overflows, what scrolls)."""
    script = ("<script>window.addEventListener('load', () => { document.title = 'PROBE ' + "
              f"JSON.stringify((() => {{ {expression} }})()); }});</script>")
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        out = subprocess.run(
            [*_flags(profile), f"--window-size={width},900", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    probe.unlink()
    m = re.search(r"<title>PROBE (.*?)</title>", out.stdout, re.S)
    if not m:
        raise AssertionError(f"chromium did not run the probe: {out.stderr[-800:]}")
    return json.loads(html.unescape(m.group(1)))
