"""Produce a generated world's events to Kafka (Avro, Confluent wire format) and print events/s.

    .venv/bin/python bench/bench_kafka_produce.py [--events 1000000] [--bootstrap host:port]

Without --bootstrap it starts a throwaway Tansu broker (lenslake.kafka.broker). The world is generated first, under
a temporary data root (not timed); the timed part is JSON parsing, Avro encoding, producing and waiting for every
delivery report.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--bootstrap")
    p.add_argument("--data-root", type=Path, help="reuse a generated world here instead of generating one")
    args = p.parse_args()

    from lenslake.kafka.broker import local_broker
    from lenslake.kafka.producer import publish_landing
    from lenslake.kafka.topics import create_topics
    from lenslake.settings import get_settings
    from lenslake.synth.world import generate_world

    with contextlib.ExitStack() as stack:
        root = args.data_root or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if not (root / "synth" / "manifest.json").exists():
            t = time.perf_counter()
            generate_world(root, days=args.days, events=args.events, start=dt.date(2026, 11, 1))
            print(f"generated in {time.perf_counter() - t:.1f} s")
        bootstrap = args.bootstrap or stack.enter_context(local_broker())
        settings = get_settings(data_root=root, kafka_bootstrap=bootstrap)
        create_topics(settings)
        report = publish_landing(settings)
        print(report.summary())
        print(f"produce: {report.produced / report.seconds:,.0f} Avro-encoded events/s "
              f"({report.produced:,} events in {report.seconds:.2f} s, delivered == produced: "
              f"{report.delivered == report.produced})")


if __name__ == "__main__":
    main()
