"""Benchmark: raw landing files at rest (lenslake.privacy.landing), on one real generated event day.

    python bench/bench_landing.py [--events 1000000] [--days 7] [--rounds 3]

A world is generated (1M events over 7 days by default: one day file is about 75 MB); on its largest day file:
(a) ``encrypt_file``: read, chunked AES-256-GCM, fsync, read-back check, rename, clear file removed, in MB/s;
(b) ``read_bytes`` of the encrypted file (every chunk authenticated), in MB/s;
(c) ``read_raw_lines`` (what bronze reads) of the clear file against the encrypted one: what a rerun of an
    ingested day pays. Median of --rounds; the file is restored clear between rounds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from lenslake.engine import read_raw_lines
    from lenslake.privacy import landing
    from lenslake.settings import get_settings
    from lenslake.synth.world import generate_world

    root = Path(tempfile.mkdtemp(prefix="lenslake-bench-landing-"))
    try:
        generate_world(root, days=args.days, events=args.events, seed=7)
        settings = get_settings(data_root=root)
        day_file = max(settings.events_landing_dir.rglob("*.ndjson"), key=lambda p: p.stat().st_size)
        size_mb = day_file.stat().st_size / 1e6
        keep = root / "clear-copy.ndjson"
        shutil.copyfile(day_file, keep)
        landing.ring_of(settings)  # the dev key file exists before timing
        print(f"file: {day_file.relative_to(root)}, {size_mb:.1f} MB; machine: {os.cpu_count()} cores, "
              f"{platform.machine()}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

        enc, dec, clear_read, sealed_read = [], [], [], []
        for _ in range(args.rounds):
            shutil.copyfile(keep, day_file)
            seconds, lines = timed(read_raw_lines, [(day_file, "f")], None, settings)
            clear_read.append(seconds)
            seconds, sealed = timed(landing.encrypt_file, day_file, settings)
            enc.append(seconds)
            seconds, data = timed(landing.read_bytes, sealed, settings)
            dec.append(seconds)
            assert data == keep.read_bytes()
            seconds, again = timed(read_raw_lines, [(sealed, "f")], None, settings)
            sealed_read.append(seconds)
            assert again.equals(lines)
            sealed.unlink()

        med = statistics.median
        print(f"\n{'measure':<58} {'value':>12}")
        print(f"{'encrypt_file (read, encrypt, fsync, read back, rename)':<58} {size_mb / med(enc):>8.0f} MB/s")
        print(f"{'read_bytes of the encrypted file (authenticated)':<58} {size_mb / med(dec):>8.0f} MB/s")
        print(f"{'read_raw_lines, clear file (s)':<58} {med(clear_read):>12.2f}")
        print(f"{'read_raw_lines, encrypted file (s)':<58} {med(sealed_read):>12.2f}")
        print(f"lines per file: {lines.num_rows:,}; identical lines from both: yes")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
