"""Write constraints.txt: exact pins of the stack pyproject.toml resolves to today (`make lock`).

pyproject.toml keeps open ranges (`torch>=2.6`) for people who use polymodal as a library; the
project's own installs (`make demo`, `make test`, CI, `make bench`) add `-c constraints.txt`, so
every machine gets the same versions and a recorded result names the stack it used.

The resolution is pip's own (`pip install --dry-run --ignore-installed --report`): nothing is
installed, the current environment does not leak in, and the pins are the full closure of the
`dev`, `serve`, `compress` and `bench` extras (what those targets install) for this Python and platform. Packages a
given platform does not need (the CUDA wheels on macOS) are simply not installed there:
a constraint only constrains.

Run: python tools/lock_constraints.py [--extras dev,serve,compress,bench] [--out constraints.txt]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "polymodal"


def resolve(extras: str) -> tuple[dict[str, str], dict[str, str]]:
    """{name: version} of every package pip would install for ``.[extras]``, and pip's environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        # --ignore-installed: resolve from scratch, as a fresh venv would, not from this one
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed",
               "--report", str(report), f".[{extras}]"]
        subprocess.run(cmd, cwd=ROOT, check=True)
        data = json.loads(report.read_text(encoding="utf-8"))
    pins = {item["metadata"]["name"]: item["metadata"]["version"] for item in data["install"]}
    pins.pop(PROJECT, None)
    return pins, data.get("environment", {})


def render(pins: dict[str, str], env: dict[str, str], extras: str) -> str:
    head = [
        "# Exact versions of polymodal's resolved stack: `make lock` writes this file, do not edit it.",
        f"# Resolved {date.today().isoformat()} for .[{extras}] on Python {env.get('python_full_version', '?')}, "
        f"{env.get('sys_platform', '?')} {env.get('platform_machine', '?')}.",
        "# Installs use it as constraints (pip install -c constraints.txt -e '.[dev]'); pyproject.toml",
        "# keeps open ranges for library users.",
    ]
    body = [f"{name}=={pins[name]}" for name in sorted(pins, key=str.lower)]
    return "\n".join(head + body) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extras", default="dev,serve,compress,bench")
    parser.add_argument("--out", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args()
    pins, env = resolve(args.extras)
    args.out.write_text(render(pins, env, args.extras), encoding="utf-8")
    print(f"{args.out}: {len(pins)} pins (torch=={pins.get('torch')}, transformers=={pins.get('transformers')})")


if __name__ == "__main__":
    main()
