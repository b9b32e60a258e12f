"""The free-text scrubber: PII in typed text becomes typed placeholders, eyewear text survives, each text once."""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from lenslake.privacy.scrub import Scrubber, corpus_scores, precheck, CLEAN, NLP, PATTERNS
from tests.conftest import lines_table, make_event

CORPUS = Path(__file__).parent / "data" / "scrub_corpus.jsonl"
LENSLAKE = str(Path(sys.executable).with_name("lenslake"))


@pytest.fixture(scope="module")
def scrubber():
    return Scrubber()


@pytest.fixture(scope="module")
def corpus():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_the_labelled_corpus_is_large_varied_and_its_offsets_point_at_the_values(corpus):
    assert len(corpus) >= 300 and len({r["text"] for r in corpus}) == len(corpus)
    kinds = {k: sum(r["kind"] == k for r in corpus) / len(corpus) for k in ("pii", "mixed", "eyewear", "clean")}
    assert kinds["pii"] + kinds["mixed"] >= 0.4 and kinds["eyewear"] >= 0.4 and kinds["clean"] > 0
    types = {e["type"] for r in corpus for e in r["entities"]}
    assert types == {"PERSON", "EMAIL", "PHONE", "ADDRESS", "IP_ADDRESS", "CREDIT_CARD", "IBAN"}
    for r in corpus:
        assert bool(r["entities"]) == (r["kind"] in ("pii", "mixed")), r["text"]
        end = 0
        for e in sorted(r["entities"], key=lambda e: e["start"]):
            value = r["text"][e["start"]:e["end"]]
            assert value == e["value"] == value.strip() != "" and e["start"] >= end, r["text"]
            end = e["end"]


def test_recall_is_at_least_98_percent_and_eyewear_text_survives_on_the_labelled_corpus(scrubber, corpus):
    results = scrubber.scrub_many([r["text"] for r in corpus])
    score = corpus_scores(corpus, [[(e.type, e.start, e.end) for e in s.entities] for s in results])
    assert score["recall"] >= 0.98, score["missed"]
    assert score["eyewear_unchanged"] >= 0.95, [r.text for r, c in zip(results, corpus) if c["kind"] == "eyewear" and r.changed]
    assert score["precision"] >= 0.95, score["wrong"]
    for row, s in zip(corpus, results):
        if row["kind"] == "clean":
            assert not s.changed, s


@pytest.mark.parametrize("text, scrubbed", [
    ("order for Astrid Lindqvist", "order for <PERSON>"),
    ("astrid.lindqvist12@protonmail.com order status", "<EMAIL> order status"),
    ("call me back +44 7812 345678", "call me back <PHONE>"),
    ("ship to 221B Baker Street, London NW1 6XE", "ship to <ADDRESS>, London <ADDRESS>"),
    ("login from 203.0.113.42 failed", "login from <IP_ADDRESS> failed"),
    ("card 4111 1111 1111 1111 declined", "card <CREDIT_CARD> declined"),
    ("refund to GB82 WEST 1234 5698 7654 32", "refund to <IBAN>"),
    ("contact mikko nieminen about my order", "contact <PERSON> about my order"),
    ("Ray-Ban RB3025 for Chloe Martin, call 07700 900654", "Ray-Ban RB3025 for <PERSON>, call <PHONE>"),
])
def test_each_entity_becomes_a_placeholder_of_its_type(scrubber, text, scrubbed):
    s = scrubber.scrub(text)
    assert s.scrubbed == scrubbed
    for e in s.entities:
        assert f"<{e.type}>" in s.scrubbed and text[e.start:e.end].strip() == text[e.start:e.end] != ""


@pytest.mark.parametrize("text", [
    "RB3025", "rb3025 58mm", "52-18-140 round", "-2.25 SPH progressive", "+1.50 ADD", "PD 31.5/32",
    "SPH -2.25 CYL -0.75 AXIS 180", "Oliver Peoples Gregory Peck", "Persol PO0714 Steve McQueen", "Tom Ford FT5401",
    "Ray-Ban Justin RB4165 622/T5 55", "Clubmaster tortoise gold", "Varilux X Series 1.67", "Transitions Gen 8 grey",
    "order 100234567 where is it",
])
def test_eyewear_text_is_left_as_typed(scrubber, text):
    assert scrubber.scrub(text).scrubbed == text


def test_each_distinct_text_is_analysed_once_and_repeats_come_from_the_cache():
    s = Scrubber()
    texts = ["order for Astrid Lindqvist", "kids glasses", "order for Astrid Lindqvist", "+44 7812 345678"] * 50
    first = s.scrub_many(texts)
    assert s.stats == {"texts": 200, "cache_hits": 197, "clean": 1, "patterns": 1, "nlp": 1}
    again = s.scrub_many(reversed(texts))
    assert s.stats["cache_hits"] == 397 and s.stats["nlp"] == 1
    assert [r.scrubbed for r in again] == [r.scrubbed for r in reversed(first)]
    assert first[0] is first[2] and first[0].scrubbed == "order for <PERSON>"


def test_the_cache_is_bounded_and_a_call_larger_than_it_still_answers_every_text():
    s = Scrubber(cache_size=2)
    texts = [f"round glasses {n}0-18-140" for n in range(2, 9)] + ["order for Astrid Lindqvist"]
    out = s.scrub_many(texts)
    assert [r.text for r in out] == texts and out[-1].scrubbed == "order for <PERSON>"
    assert len(s._cache) == 2
    assert s.scrub(texts[0]).scrubbed == texts[0] and s.stats["cache_hits"] == 0


def test_text_the_precheck_proves_clean_never_loads_the_model():
    s = Scrubber()
    out = s.scrub_many(["blue light glasses", "ray-ban rb3025 52-18-140", "-2.25 SPH progressive", "", "   "])
    assert all(not r.changed for r in out) and s._analyzer is None
    assert precheck("order for Astrid Lindqvist") == NLP and precheck("call +44 7812 345678") == PATTERNS
    assert precheck("tom ford square glasses") == CLEAN


def test_the_precheck_changes_no_result(scrubber, corpus):
    texts = [r["text"] for r in corpus]
    full = Scrubber(skip_clean=False).scrub_many(texts)
    assert [r.scrubbed for r in scrubber.scrub_many(texts)] == [r.scrubbed for r in full]


def test_scrub_column_scrubs_each_distinct_value_and_keeps_nulls(scrubber):
    from lenslake.privacy.scrub import scrub_column

    table = pa.table({"id": [1, 2, 3, 4], "query": ["order for Astrid Lindqvist", None, "RB3025", "order for Astrid Lindqvist"]})
    out = scrub_column(table, "query", scrubber)
    assert out.column("query").to_pylist() == ["order for <PERSON>", None, "RB3025", "order for <PERSON>"]
    assert out.schema == table.schema and out.column("id").to_pylist() == [1, 2, 3, 4]


def _cli(*args, stdin: bytes = b""):
    return subprocess.run([LENSLAKE, "privacy", "scrub", *args], input=stdin, capture_output=True, timeout=120)


def test_the_command_reads_stdin_or_a_file_and_writes_one_json_object_per_line(tmp_path):
    data = "order for Wanjiru Kamau\n\nRB3025 52-18-140\r\nmail jane.doe@example.com\n".encode()
    piped = _cli(stdin=data)
    assert piped.returncode == 0, piped.stderr
    rows = [json.loads(line) for line in piped.stdout.decode().splitlines()]
    assert [r["scrubbed"] for r in rows] == ["order for <PERSON>", "", "RB3025 52-18-140", "mail <EMAIL>"]
    assert rows[0]["entities"] == [{"type": "PERSON", "start": 10, "end": 23, "score": rows[0]["entities"][0]["score"]}]
    # A file of text the pre-check proves clean: answered without loading the model (a second load costs seconds).
    path = tmp_path / "texts.txt"
    path.write_bytes("RB3025 52-18-140\n\n-2.25 SPH\n".encode())
    from_file = _cli("--input", str(path))
    assert from_file.returncode == 0, from_file.stderr
    assert from_file.stdout.decode().splitlines() == [json.dumps({"text": t, "scrubbed": t, "entities": []})
                                                      for t in ("RB3025 52-18-140", "", "-2.25 SPH")]


def test_the_command_refuses_bad_input_in_one_line(tmp_path):
    bad = _cli(stdin=b"fine\nbad \xff\xfe bytes\n")
    assert bad.returncode == 1 and bad.stdout == b""
    assert bad.stderr.decode().strip() == "error: input is not UTF-8: byte 0xff at line 2, column 5"
    missing = _cli("--input", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and missing.stderr.decode().strip().startswith("error: no such file:")
    assert b"Traceback" not in bad.stderr + missing.stderr


def test_no_planted_free_text_pii_reaches_bronze_and_eyewear_queries_are_kept(engine, keys, tmp_path):
    from lenslake.engine import read_raw_lines
    from lenslake.synth.world import generate_world
    from lenslake.transforms.bronze import bronze_from_lines

    manifest = generate_world(tmp_path, days=1, users=500, events=15_000, seed=5)
    planted = [p["value"] for p in manifest["free_text_pii"]]
    assert len(planted) >= 10
    files = sorted((tmp_path / "landing").rglob("*.ndjson"))
    lines = read_raw_lines([(p, p.relative_to(tmp_path).as_posix()) for p in files], dt.date(2026, 11, 16))
    events, _ = bronze_from_lines(engine, lines, keys)
    raw = {}
    for line in lines.column("line").to_pylist():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict) and e.get("schema") == "search" and isinstance(e.get("properties"), dict):
            raw[e.get("event_id")] = e["properties"].get("query")
    bronze = dict(zip(events.column("event_id").to_pylist(), events.column("query").to_pylist()))
    queries = [q for q in bronze.values() if q is not None]
    assert len(queries) > 500
    assert not [q for q in queries if any(v in q for v in planted)]
    kept = [(raw[i], q) for i, q in bronze.items() if q is not None and not any(v in raw[i] for v in planted)]
    assert len(kept) > 500 and all(r == q for r, q in kept)
    assert sum("<PERSON>" in q or "<EMAIL>" in q or "<PHONE>" in q for q in queries) >= len(planted) // 2


def test_a_quarantined_search_keeps_its_query_scrubbed(engine, keys):
    from lenslake.transforms.bronze import bronze_from_lines

    bad = make_event("search", query="order for Astrid Lindqvist", results_count="many")
    _, quarantine = bronze_from_lines(engine, lines_table([bad]), keys)
    payload = json.loads(quarantine.column("payload")[0].as_py())
    assert payload["properties"]["query"] == "order for <PERSON>"


def test_the_process_keeps_one_scrubber_so_spacy_loads_once_and_the_cache_lasts():
    from lenslake.privacy.scrub import get_scrubber

    assert get_scrubber() is get_scrubber()


LOAD_WITHOUT_TORCH = """
import json, sys, threading
from lenslake.privacy.scrub import get_scrubber, without_deep_learning_imports
out = {"scrubbed": get_scrubber().scrub_many(["mail tom baxter at tom@example.com"])[0].scrubbed,
       "loaded": sorted(m for m in ("torch", "transformers") if m in sys.modules)}
with without_deep_learning_imports():
    try:
        import transformers  # noqa: F401
        out["this_thread"] = "imported"
    except ModuleNotFoundError:
        out["this_thread"] = "refused"
    other = threading.Thread(target=lambda: out.setdefault("other_thread", __import__("torch").__name__))
    other.start()
    other.join()
import transformers  # noqa: E402,F401
out["after"] = transformers.__name__
out["finders_left"] = [type(f).__name__ for f in sys.meta_path if "Refuse" in type(f).__name__]
print(json.dumps(out))
"""


def test_the_scrubber_loads_without_torch_and_refuses_it_to_its_own_thread_only():
    """The scrubber's load skips torch and transformers (seconds of import), but only in the loading thread and only
    while it loads: another thread importing torch meanwhile gets it, and so does anyone afterwards."""
    run = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_TORCH], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["scrubbed"] == "mail <PERSON> at <EMAIL>" and out["loaded"] == []
    assert out["this_thread"] == "refused" and out["other_thread"] == "torch"
    assert out["after"] == "transformers" and out["finders_left"] == []
