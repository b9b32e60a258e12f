"""The command line answers quickly and speaks to people in one clear line, never a traceback."""

import subprocess
import sys


def lenslake(*args, env=None):
    return subprocess.run([sys.executable, "-m", "lenslake.cli", *args], capture_output=True, text=True, env=env, timeout=120)


def test_help_lists_the_commands():
    out = lenslake("--help")
    assert out.returncode == 0
    for command in ("generate", "run", "demo", "tables"):
        assert command in out.stdout


def test_running_with_no_landing_data_is_a_clear_error(tmp_path):
    import os

    out = lenslake("run", env={**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path)})
    assert out.returncode == 1
    assert "no landing days" in out.stderr and "Traceback" not in out.stderr


def test_a_bad_option_value_is_a_clear_error():
    out = lenslake("generate", "--days", "many")
    assert out.returncode != 0 and "Traceback" not in out.stderr


def test_a_bad_setting_is_one_line_naming_its_variable(tmp_path):
    import os

    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path), "LENSLAKE_ENGINE": "bogus", "LENSLAKE_SHUFFLE_PARTITIONS": "x"}
    out = lenslake("run", env=env)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "LENSLAKE_ENGINE='bogus': Input should be 'duckdb' or 'spark'" in out.stderr
    assert "LENSLAKE_SHUFFLE_PARTITIONS='x'" in out.stderr and "pydantic.dev" not in out.stderr


def test_tables_lists_the_catalogue():
    out = lenslake("tables")
    assert out.returncode == 0 and "bronze.events" in out.stdout and "gold.daily_funnel" in out.stdout


def test_a_failed_run_exits_non_zero(tmp_path):
    """A run whose Delta writes fail (the tables folder is a file) reports failure to the shell."""
    import json
    import os

    from tests.conftest import make_event

    day = tmp_path / "landing" / "events" / "2026-11-16"
    day.mkdir(parents=True)
    (day / "events-000.ndjson").write_text(json.dumps(make_event()) + "\n")
    (tmp_path / "tables").write_text("not a folder")
    out = lenslake("run", env={**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path)})
    assert out.returncode == 1, out.stdout[-2000:]
    assert "success: False" in out.stdout


def test_a_day_that_has_not_ended_is_refused_with_a_reason(tmp_path):
    import datetime as dt
    import os

    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    (tmp_path / "landing" / "events" / today).mkdir(parents=True)
    (tmp_path / "landing" / "events" / today / "events-000.ndjson").write_text("{}\n")
    out = lenslake("run", env={**os.environ, "LENSLAKE_DATA_ROOT": str(tmp_path)})
    assert out.returncode == 1 and "not a complete day yet" in out.stderr and "Traceback" not in out.stderr


def test_the_canary_command_names_a_planted_value_found_in_clear(tmp_path):
    import json
    import os

    root = tmp_path / "lake"
    (root / "synth").mkdir(parents=True)
    (root / "synth" / "manifest.json").write_text(json.dumps({"pii": {"emails": ["ann.lee@example.org"]}}))
    (root / "tables").mkdir()
    (root / "tables" / "clean.txt").write_text("nothing here")
    env = {**os.environ, "LENSLAKE_DATA_ROOT": str(root)}
    clean = lenslake("privacy", "canary", env=env)
    assert clean.returncode == 0 and "0 hit(s)" in clean.stdout
    (root / "tables" / "leak.log").write_text("sent to ann.lee@example.org")
    extra = tmp_path / "erased.txt"
    extra.write_text("U1234567\n")
    (root / "tables" / "id.log").write_text("user U1234567")
    found = lenslake("privacy", "canary", "--values", str(extra), env=env)
    assert found.returncode == 1 and "Traceback" not in found.stderr
    assert "tables/leak.log: emails ann.lee@example.org" in found.stdout
    assert "tables/id.log: given U1234567" in found.stdout
