"""Runs every benchmark and prints one table (medians over repeated runs, ratios against the
baseline measured in the same run). Usage: python benchmarks/run.py [--runs N] [--only NAME]"""

from __future__ import annotations

import argparse
import datetime
import os

import bake_time
import cwltool_engine
import kubernetes_flow
import memory
from common import Table

BENCHMARKS = {
    "kubernetes": kubernetes_flow,
    "cwltool": cwltool_engine,
    "bake": bake_time,
    "memory": memory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=BENCHMARKS, action="append")
    args = parser.parse_args()
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        os.environ.pop(name, None)
    table = Table()
    for name in args.only or BENCHMARKS:
        print(f"{name} ({args.runs} runs)...", flush=True)
        BENCHMARKS[name].measure(table, args.runs)
    print(f"\n{datetime.date.today()}, {os.cpu_count()} cores, medians of {args.runs} runs\n")
    print(table.markdown())


if __name__ == "__main__":
    main()
