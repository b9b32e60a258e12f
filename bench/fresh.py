"""Run a benchmark step in a fresh Python process of its own, as a run would be, and read back what it measured.

A step measured inside the benchmark's own process ran up to 2.2x slower (its heap, after generating and producing
a world) and flattered the ratios; every reference and every measured stage goes through here instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_fresh(code: str, name: str, env: dict | None = None) -> dict:
    """Run ``code`` (which must leave its figures in a dict ``out``) in a fresh process; ``out`` plus the process's
    peak memory (``peak_mb``) and its process tree's CPU time, start-up included (``cpu_s``)."""
    program = (f"import json, resource, time, sys; sys.path.insert(0, {str(REPO)!r})\n" + code +
               "\nme, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)\n"
               "out['peak_mb'] = me.ru_maxrss / 1024\n"
               "out['cpu_s'] = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime\n"
               "print('RESULT', json.dumps(out)); sys.stdout.flush()\nimport os; os._exit(0)")
    proc = subprocess.run([sys.executable, "-c", program], env={**os.environ, **(env or {}), "GX_ANALYTICS_ENABLED": "false"},
                          capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT "):])
