"""The real Calrissian for the harness, in a virtual environment of its own.

``calrissian==0.18.1`` pins its dependencies exactly (cwltool 3.1, kubernetes 28, urllib3 1.26),
so it cannot share the project's environment; in a cluster it runs from its own image. Here
that image is ``.venv-calrissian`` at the top of the project (git-ignored; another folder with
``HARNESS_CALRISSIAN_VENV``), installed from PyPI by name and version. It is made once, by
``make calrissian-venv`` or by the first test that needs it (about 20 s), and reused after.

Run ``python tests/harness/calrissian_venv.py`` to create it (this is what the make target does).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

CALRISSIAN_REQUIREMENT = "calrissian==0.18.1"
PROJECT = Path(__file__).resolve().parents[2]
MARKER = ".harness-installed"


@dataclass(frozen=True)
class CalrissianVenv:
    """An installed Calrissian: its environment folder and what runs it."""

    root: Path
    base_prefix: Path  # the Python installation the environment is made from

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def calrissian(self) -> Path:
        return self.bin / "calrissian"


def location() -> Path:
    return Path(os.environ.get("HARNESS_CALRISSIAN_VENV") or PROJECT / ".venv-calrissian")


def find(root: Path | None = None) -> CalrissianVenv | None:
    """The Calrissian environment if it is complete, else None."""
    root = root or location()
    marker = root / MARKER
    if not marker.is_file() or marker.read_text().strip() != CALRISSIAN_REQUIREMENT:
        return None
    if not (root / "bin" / "calrissian").is_file():
        return None
    return CalrissianVenv(root, _base_prefix(root))


def ensure(root: Path | None = None, *, timeout: float = 600) -> CalrissianVenv:
    """The Calrissian environment, created first if needed (RuntimeError if that fails)."""
    root = root or location()
    found = find(root)
    if found is not None:
        return found
    python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [python, "-m", "venv", "--clear", str(root)],
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", CALRISSIAN_REQUIREMENT],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[:4])}... failed: {done.stderr.strip()[-2000:]}")
    (root / MARKER).write_text(CALRISSIAN_REQUIREMENT + "\n")
    found = find(root)
    if found is None:
        raise RuntimeError(f"no calrissian program in {root} after installing it")
    return found


def _base_prefix(root: Path) -> Path:
    """The ``home`` of pyvenv.cfg is the base Python's bin folder; its parent is the prefix."""
    for line in (root / "pyvenv.cfg").read_text().splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "home":
            return Path(value.strip()).parent
    return Path(sys.base_prefix)


if __name__ == "__main__":
    venv = ensure()
    print(f"{CALRISSIAN_REQUIREMENT} in {venv.root}")
