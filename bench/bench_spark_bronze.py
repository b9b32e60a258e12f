"""Benchmark: what bronze validation alone costs on the Spark engine, beside the bare Spark job, on 1M events.

    python bench/bench_spark_bronze.py [--root WORLD] [--events 1000000] [--days 7]

Issue 11 asks the Spark pipeline for at most 1.5x the bare Spark job (``bench/reference_jobs.py``). This measures,
in one run and one Spark session, the steps bronze cannot skip before silver's work (the bare job's) even starts:
the landing lines into Spark, the JSON extraction of every contract field, and the compiled rule expressions (one
per JSON Schema rule) with a count of the valid rows. Each step is materialized (``localCheckpoint``) so that its
time is its own; the pass is run twice and both are printed (the first warms the JVM).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_pipeline import redeliver  # noqa: E402
from bench.reference_jobs import pyspark_api_job  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", type=Path, default=None, help="a generated world to reuse")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    args = ap.parse_args()

    from lenslake.contracts.events import event_fields
    from lenslake.engine import get_engine, read_raw_lines
    from lenslake.settings import get_settings
    from lenslake.transforms.bronze import REJECT_REASON, with_violations

    root = args.root or Path(tempfile.mkdtemp(prefix="lenslake-bench-"))
    if not (root / "synth" / "manifest.json").exists():
        from lenslake.synth.world import generate_world

        generate_world(root, days=args.days, events=args.events, seed=7)
    redeliver(root)  # the landing zone as delivered (clear): a pipeline run keeps it only encrypted
    landing = root / "landing" / "events"
    files = [(Path(f), f) for f in sorted(glob.glob(str(landing / "*" / "*.ndjson")))]
    print(f"machine: {os.cpu_count()} cores; world: {root}")

    t = time.perf_counter()
    engine = get_engine(get_settings(engine="spark"))
    print(f"Spark session start                          {time.perf_counter() - t:6.1f} s")
    F = engine.F
    lines = read_raw_lines(files)
    fields = {rule.column: rule.path for rule in event_fields()}
    for rep in (1, 2):
        t = time.perf_counter()
        df = engine.checkpoint(engine.from_arrow(lines))
        into = time.perf_counter() - t
        t = time.perf_counter()
        extracted = engine.checkpoint(engine.json_fields(df.where(F.col("is_json")), "line", fields))
        extract = time.perf_counter() - t
        t = time.perf_counter()
        valid = with_violations(engine, extracted).where(F.col(REJECT_REASON).isNull()).count()
        rules = time.perf_counter() - t
        print(f"pass {rep}: {lines.num_rows:,} lines into Spark {into:5.1f} s, {len(fields)} fields extracted "
              f"{extract:5.1f} s, rules + count {rules:5.1f} s ({valid:,} valid): {into + extract + rules:5.1f} s")
    bare = pyspark_api_job(engine, landing)[0]
    print(f"bare Spark job (same session, start excluded) {bare:6.1f} s")
    engine.session.stop()


if __name__ == "__main__":
    main()
