"""Benchmark: 1M events from landing to gold through Dagster, against bare reference jobs, in one run.

    python bench/bench_pipeline.py [--events 1000000] [--days 7] [--users 50000] [--engines duckdb,spark]

Each pipeline run is `lenslake run` in its own process, as a user runs it: one single-run backfill of every landing
day, every asset and check included (imports and session start-up count), from freshly delivered landing files (the
run encrypts them once ingested; a clear copy of the world's landing zone is kept beside it to redeliver). Peak memory is the child's max RSS.
The references do the core work only (read, dedupe, bot filter, sessionize, funnel): plain DuckDB SQL (the floor),
the PySpark DataFrame API on SQLFrame/DuckDB, and the same code on Spark local (with its session start), each in a
fresh process of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fresh import run_fresh  # noqa: E402


def redeliver(root: Path) -> None:
    """Put the landing zone back as delivered (clear NDJSON): an ingest keeps the files only encrypted
    (lenslake.privacy.landing), and every run, and the references, start from freshly delivered files."""
    delivered = root / "landing-as-delivered"
    if not delivered.exists():
        shutil.copytree(root / "landing", delivered)
    shutil.rmtree(root / "landing", ignore_errors=True)
    shutil.copytree(delivered, root / "landing")


def run_pipeline(root: Path, engine: str) -> tuple[float, float, bool, str]:
    for sub in ("tables", "dagster"):
        shutil.rmtree(root / sub, ignore_errors=True)
    redeliver(root)
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(root), "LENSLAKE_ENGINE": engine, "GX_ANALYTICS_ENABLED": "false"}
    # A fresh launcher per run, so the peak is this run's alone (its process tree, the JVM included when waited).
    launcher = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
                "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", launcher, sys.executable, "-m", "lenslake.cli", "run"],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    peak_kb = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KB")), 0)
    return wall, peak_kb / 1024 / 1024, proc.returncode == 0, proc.stdout + proc.stderr[-3000:]


IMPORTS = ("from pathlib import Path; from bench.reference_jobs import plain_duckdb_sql, pyspark_api_job\n"
           "from lenslake.engine import get_engine; from lenslake.settings import get_settings\n")
REFERENCE = {
    "floor": "out = {'seconds': plain_duckdb_sql(landing)[0], 'start': 0.0}",
    "sqlframe": "out = {'seconds': pyspark_api_job(get_engine(get_settings(engine='duckdb')), landing)[0], 'start': 0.0}",
    "spark": ("t = time.perf_counter(); e = get_engine(get_settings(engine='spark')); start = time.perf_counter() - t\n"
              "out = {'seconds': pyspark_api_job(e, landing)[0], 'start': start}; e.session.stop()"),
}


def run_reference(kind: str, landing: Path) -> dict:
    """One reference job in a fresh process: {'seconds': its work, 'start': session start-up (Spark only), …}."""
    return run_fresh(IMPORTS + f"landing = Path({str(landing)!r})\n" + REFERENCE[kind], f"the {kind} reference")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--root", type=Path, default=None, help="reuse a generated world here")
    ap.add_argument("--engines", default="duckdb,spark")
    args = ap.parse_args()

    root = args.root or Path(tempfile.mkdtemp(prefix="lenslake-bench-"))
    from lenslake.synth.world import generate_world

    if not (root / "synth" / "manifest.json").exists():
        t = time.perf_counter()
        manifest = generate_world(root, days=args.days, users=args.users, events=args.events, seed=7)
        print(f"generated {manifest['totals']['lines']:,} landing lines in {time.perf_counter() - t:.1f} s")
    manifest = json.loads((root / "synth" / "manifest.json").read_text())
    redeliver(root)
    landing = root / "landing" / "events"
    size_mb = sum(p.stat().st_size for p in landing.rglob("*.ndjson")) / 1e6
    print(f"world: {manifest['totals']['lines']:,} lines, {size_mb:.0f} MB NDJSON, {args.days} days; "
          f"machine: {os.cpu_count()} cores, {platform.machine()}")

    figures = {}
    engines = args.engines.split(",")
    # Each reference in a fresh process of its own, as each pipeline run is (bench.fresh says why).
    figures["plain DuckDB SQL (floor)"] = run_reference("floor", landing)["seconds"]
    figures["bare PySpark API on SQLFrame/DuckDB"] = run_reference("sqlframe", landing)["seconds"]
    if "spark" in engines:
        spark = run_reference("spark", landing)
        figures["bare PySpark API on Spark local (incl. start)"] = spark["seconds"] + spark["start"]
        figures["  of which Spark session start"] = spark["start"]

    for engine in engines:
        wall, peak, ok, out = run_pipeline(root, engine)
        figures[f"lenslake pipeline via Dagster, {engine}"] = wall
        figures[f"  peak memory (GB), {engine}"] = peak
        if not ok:
            print(out)
            raise SystemExit(f"the {engine} pipeline run failed")

    print(f"\n{'measure':<52} {'value':>9}")
    for name, value in figures.items():
        print(f"{name:<52} {value:>9.1f}")
    print()
    if "lenslake pipeline via Dagster, duckdb" in figures:
        p = figures["lenslake pipeline via Dagster, duckdb"]
        print(f"ratio pipeline(duckdb) / bare SQLFrame job : {p / figures['bare PySpark API on SQLFrame/DuckDB']:.2f}")
        print(f"ratio pipeline(duckdb) / plain DuckDB SQL  : {p / figures['plain DuckDB SQL (floor)']:.2f}")
    if "lenslake pipeline via Dagster, spark" in figures:
        p = figures["lenslake pipeline via Dagster, spark"]
        print(f"ratio pipeline(spark) / bare Spark job     : {p / figures['bare PySpark API on Spark local (incl. start)']:.2f}")


if __name__ == "__main__":
    main()
