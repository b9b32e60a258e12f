"""Benchmark: the free-text scrubber against plain Presidio, for speed on event text and quality on a labelled corpus.

    python bench/bench_scrub.py [--events 600000] [--sample 2000] [--root DIR]

(a) Speed on realistic event text: the search queries of a generated world (many repeats, mostly clean, about 2%
    with planted PII). The plain loop is `AnalyzerEngine.analyze` once per text, Presidio's default recognizers on
    the same spaCy model; it is timed on a seeded random sample of the same queries (`--sample`, 0 = all), which
    keeps their mix of repeats. `Scrubber.scrub_many` runs on all of them, from an empty cache. Model loading is
    timed apart and left out of both rates.
(b) Quality on tests/data/scrub_corpus.jsonl (hand-written texts, none made by the generator): PII recall and
    precision at entity level, and the share of eyewear texts left unchanged, for the scrubber and plain Presidio
    (every entity it reports counts, as its anonymizer would replace them all).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "scrub_corpus.jsonl"


def search_queries(root: Path) -> list[str]:
    queries = []
    for path in sorted((root / "landing").rglob("*.ndjson")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if '"search"' not in line:
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                query = (event.get("properties") or {}).get("query") if isinstance(event, dict) else None
                if isinstance(query, str):
                    queries.append(query)
    return queries


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=600_000, help="events of the generated world (about 7%% are searches)")
    ap.add_argument("--sample", type=int, default=2000, help="texts the plain loop is timed on (0: all)")
    ap.add_argument("--root", type=Path, default=None, help="reuse a generated world here")
    args = ap.parse_args()

    from lenslake.privacy.scrub import Scrubber, corpus_scores, plain_analyzer
    from lenslake.synth.world import generate_world

    root = args.root or Path(tempfile.mkdtemp(prefix="lenslake-scrub-"))
    if not (root / "synth" / "manifest.json").exists():
        generate_world(root, days=2, users=5_000, events=args.events, seed=7)
    manifest = json.loads((root / "synth" / "manifest.json").read_text())
    planted = [p["value"] for p in manifest["free_text_pii"]]
    queries = search_queries(root)
    with_pii = sum(any(v in q for v in planted) for q in queries)
    print(f"event text: {len(queries):,} search queries, {len(set(queries)):,} distinct, {with_pii:,} with planted PII; "
          f"machine: {os.cpu_count()} cores, {platform.machine()}")

    plain, plain_load = timed(plain_analyzer)
    scrubber = Scrubber()
    _, scrub_load = timed(scrubber.load)
    sample = queries if not args.sample else random.Random(1).sample(queries, min(args.sample, len(queries)))
    _, plain_s = timed(lambda: [plain.analyze(text=q, language="en") for q in sample])
    results, scrub_s = timed(scrubber.scrub_many, queries)
    no_precheck = Scrubber(skip_clean=False).load()
    _, no_precheck_s = timed(no_precheck.scrub_many, queries)
    leaks = sum(any(v in r.scrubbed for v in planted) for r in results)
    changed_clean = sum(r.changed and not any(v in r.text for v in planted) for r in results)

    plain_rate, scrub_rate = len(sample) / plain_s, len(queries) / scrub_s
    print(f"\n{'(a) event text':<58} {'texts':>8} {'seconds':>8} {'texts/s':>10}")
    print(f"{'plain Presidio loop (one analyze per text)' + (' [sample]' if args.sample else ''):<58} "
          f"{len(sample):>8,} {plain_s:>8.2f} {plain_rate:>10,.0f}")
    print(f"{'Scrubber.scrub_many, dedup + batching only (no pre-check)':<58} {len(queries):>8,} {no_precheck_s:>8.2f} "
          f"{len(queries) / no_precheck_s:>10,.0f}")
    print(f"{'Scrubber.scrub_many (dedup, pre-check, batching)':<58} {len(queries):>8,} {scrub_s:>8.2f} {scrub_rate:>10,.0f}")
    print(f"ratio scrubber / plain loop: {scrub_rate / plain_rate:,.0f}x   (model load, not in the rates: plain "
          f"{plain_load:.1f} s with the imports, scrubber {scrub_load:.1f} s after them)")
    stats = scrubber.stats
    print(f"scrubber work: {stats['cache_hits']:,} repeats, {stats['clean']:,} distinct proven clean by the pre-check, "
          f"{stats['patterns']:,} pattern-only, {stats['nlp']:,} through spaCy")
    print(f"planted PII values left in scrubbed queries: {leaks}; queries without planted PII changed: {changed_clean}")

    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    ours, ours_s = timed(Scrubber().load().scrub_many, texts)
    theirs, theirs_s = timed(lambda: [plain.analyze(text=t, language="en") for t in texts])
    kinds = {k: sum(r["kind"] == k for r in rows) for k in sorted({r["kind"] for r in rows})}
    print(f"\n(b) labelled corpus: {len(rows)} texts {kinds}, {sum(len(r['entities']) for r in rows)} PII spans")
    print(f"{'':<22} {'recall':>8} {'precision':>10} {'eyewear unchanged':>18} {'seconds':>8}")
    for name, found, seconds in (
        ("scrubber", [[(e.type, e.start, e.end) for e in s.entities] for s in ours], ours_s),
        ("plain Presidio", [[(r.entity_type, r.start, r.end) for r in rs] for rs in theirs], theirs_s),
    ):
        score = corpus_scores(rows, found)
        print(f"{name:<22} {score['recall']:>8.3f} {score['precision']:>10.3f} {score['eyewear_unchanged']:>18.3f} "
              f"{seconds:>8.2f}   ({score['found']}/{score['labelled']} found, "
              f"{score['reported'] - len(score['wrong'])}/{score['reported']} correct)")
        if name == "scrubber":
            for text, value, kind in score["missed"]:
                print(f"    missed {kind} {value!r} in {text!r}")
            for text, value, kind in score["wrong"]:
                print(f"    wrong  {kind} {value!r} in {text!r}")


if __name__ == "__main__":
    main()
