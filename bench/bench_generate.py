"""Benchmark: generate the default world (7 days, 50,000 customers, ~1M human events) into a temp dir.

    python bench/bench_generate.py [--repeat N] [--keep DIR]

Prints wall time, landed lines, human events and events per second for each run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from lenslake.synth import generate_world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=1, help="number of timed runs")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args()
    for run in range(args.repeat):
        root = args.keep or Path(tempfile.mkdtemp(prefix="lenslake-bench-"))
        try:
            t = time.perf_counter()
            manifest = generate_world(root, days=7, users=50_000, seed=42, start=dt.date(2024, 3, 1))
            wall = time.perf_counter() - t
        finally:
            if args.keep is None:
                shutil.rmtree(root, ignore_errors=True)
        totals = manifest["totals"]
        print(f"run {run + 1}: {wall:.2f} s wall, {totals['lines']:,} lines, {totals['human_events']:,} human events, "
              f"{totals['human_events'] / wall:,.0f} human events/s, {totals['lines'] / wall:,.0f} lines/s")


if __name__ == "__main__":
    main()
