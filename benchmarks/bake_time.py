"""Generation with the deep Application Package check: the largest real package that validates
offline, and a generated 50-step package."""

from __future__ import annotations

import tempfile
from pathlib import Path

from common import ROOT, Table, bake, median, timed

SHARED = ROOT.parent / "shared" / "app-packages"
LARGEST_OFFLINE = "ZOO-Project__zoo-argowf-runner__app-package.cwl"  # 9 KB, valid offline


def fifty_steps(path: Path) -> Path:
    """A Workflow chaining 50 steps of one small tool."""
    sources = ["text"] + [f"step{i}/out" for i in range(49)]
    steps = "\n".join(
        f"      step{i}:\n        run: '#tool'\n        in: {{text: {source}}}\n        out: [out]"
        for i, source in enumerate(sources)
    )
    path.write_text(
        "cwlVersion: v1.2\n$namespaces: {s: https://schema.org/}\ns:softwareVersion: 1.0.0\n"
        "$graph:\n  - class: Workflow\n    id: fifty\n    label: Fifty steps\n    doc: A chain\n"
        "    inputs:\n      text: {type: string, label: Text, doc: Text}\n"
        "    outputs:\n      out: {type: string, outputSource: step49/out}\n"
        f"    steps:\n{steps}\n"
        "  - class: CommandLineTool\n    id: tool\n"
        "    requirements: {DockerRequirement: {dockerPull: alpine:3}}\n"
        "    baseCommand: echo\n    inputs: {text: {type: string, inputBinding: {position: 1}}}\n"
        "    stdout: out.txt\n"
        "    outputs:\n      out:\n        type: string\n        outputBinding:\n"
        "          glob: out.txt\n          loadContents: true\n"
        '          outputEval: "$(self[0].contents)"\n'
    )
    return path


def measure(table: Table, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        cases = [("a generated 50-step package", "fifty", fifty_steps(root / "fifty.cwl"))]
        if (SHARED / LARGEST_OFFLINE).is_file():
            cases.insert(
                0,
                (
                    f"the largest real package ({LARGEST_OFFLINE})",
                    "water-bodies",
                    SHARED / LARGEST_OFFLINE,
                ),
            )
        for label, workflow_id, package in cases:
            times = [
                timed(lambda w=workflow_id, p=package: bake(root / "out", w, p))[0]
                for _ in range(runs)
            ]
            table.add(
                f"bake with the deep check, {label} (s)", f"{median(times):.2f}", "", "", "< 2.5"
            )
