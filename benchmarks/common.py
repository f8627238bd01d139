"""What every benchmark shares: repeated timing, medians, a baked example service, the table."""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_APP = ROOT / "examples" / "band-stats.cwl"
EXAMPLE_REQUEST = ROOT / "examples" / "execute.json"
EXAMPLE_ITEM = ROOT / "examples" / "data" / "catalog.json"
sys.path.insert(0, str(ROOT / "tests"))  # the offline Kubernetes harness lives there

import conftest  # noqa: E402  (the tests bake services the same way)

bake = conftest.bake_service


def import_service(service_dir: Path):
    """The baked service module, imported as the kernel imports it."""
    sys.path.insert(0, str(service_dir.parent))
    return importlib.import_module(f"{service_dir.name}.service")


def kernel_conf(tmp_path: Path, usid: str) -> dict:
    return {
        "main": {"tmpPath": str(tmp_path), "tmpUrl": tmp_path.as_uri() + "/"},
        "lenv": {"usid": usid, "Identifier": "band-stats", "message": ""},
        "auth_env": {},
    }


def example_inputs() -> dict:
    return {
        "item": {"xlink:href": EXAMPLE_ITEM.as_uri(), "value": ""},
        "bands": {"value": ["red", "nir"], "isArray": "true", "length": "2"},
    }


@contextlib.contextmanager
def inside(folder: Path):
    """pycalrissian's getters write into the current folder (the benchmark's baseline only)."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def timed(action: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


class Table:
    """Rows of (measure, ours, baseline, ratio, target) printed as Markdown."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str, str]] = []

    def add(self, measure: str, ours: str, baseline: str = "", ratio: str = "", target: str = ""):
        self.rows.append((measure, ours, baseline, ratio, target))
        print(
            f"  {measure}: {ours}" + (f" vs {baseline} ({ratio})" if baseline else ""), flush=True
        )

    def markdown(self) -> str:
        head = ("measure", "ours", "baseline", "ours / baseline", "target")
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)
