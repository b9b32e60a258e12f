"""Raw landing files at rest: once ingested they are kept only encrypted (chunked AES-256-GCM, key id in the
header), reruns and re-applies read them back to the same rows, erasure rewrites them, and a tampered, truncated or
foreign file is refused with one line naming it."""

import datetime as dt
import hashlib
import os
import re
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pytest

from lenslake.delta import DeltaStore
from lenslake.privacy import landing
from lenslake.privacy.keys import KeyRing
from lenslake.settings import get_settings

START = dt.date(2026, 11, 10)
DAYS = [str(START), str(START + dt.timedelta(days=1))]
NOW = dt.datetime(2026, 11, 12, 6, tzinfo=dt.timezone.utc)


def clear_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not landing.is_encrypted(p))


def digests(folder: Path, settings) -> dict[str, str]:
    """sha256 of every landing file's clear bytes, by clear name (decrypting the encrypted ones)."""
    return {landing.clear_path(p).relative_to(folder).as_posix(): hashlib.sha256(landing.read_bytes(p, settings)).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and (p.name.endswith(".ndjson") or landing.is_encrypted(p))}


def ingest_everything(settings):
    """Every landing file through its ingest, by the plain functions: events (bronze of each day), catalog feed
    days, people feeds."""
    from lenslake.catalog.apply import apply_pending
    from lenslake.engine import get_engine
    from lenslake.pipeline import ingest_landing_days
    from lenslake.profiles.build import ingest_all

    store = DeltaStore(settings.tables_dir)
    engine = get_engine(settings)
    try:
        for day in DAYS:
            ingest_landing_days(engine, store, settings, [day])
    finally:
        engine.release()
    catalog = apply_pending(store, settings.data_root, NOW)
    people = ingest_all(store, settings, NOW)
    return store, catalog, people


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from lenslake.synth.world import generate_world

    root = tmp_path_factory.mktemp("at-rest") / "lake"
    manifest = generate_world(root, days=2, users=300, events=3_000, products=150, seed=8, start=START)
    settings = get_settings(data_root=root, engine="duckdb", as_of=NOW)
    delivered = digests(settings.landing_dir, settings)  # as delivered, all clear
    store, catalog, people = ingest_everything(settings)
    return settings, manifest, delivered, store, catalog, people


# --- once ingested, only ciphertext is left -----------------------------------------------------------------------


def test_after_ingest_no_clear_landing_file_is_left_and_every_one_reads_back_as_delivered(lake):
    settings, _, delivered, _, catalog, people = lake
    assert all(r.lines > 0 for r in people.values()) and not any(r.skipped for r in catalog)
    # The generator's own product snapshot (landing/catalog/products.ndjson) is read by no ingest and holds no
    # personal data: the only clear file left.
    assert clear_files(settings.landing_dir) == ["catalog/products.ndjson"]
    encrypted = sorted(p for p in settings.landing_dir.rglob("*") if landing.is_encrypted(p))
    assert {landing.clear_path(p).relative_to(settings.landing_dir).as_posix() for p in encrypted} == \
        set(delivered) - {"catalog/products.ndjson"}
    assert {p.parts[len(settings.landing_dir.parts)] for p in encrypted} == {"events", "catalog", "customers"}
    assert all(p.read_bytes()[:4] == landing.MAGIC for p in encrypted)
    assert digests(settings.landing_dir, settings) == delivered
    assert not [p for p in settings.landing_dir.rglob("*.tmp")]


def test_a_byte_scan_of_the_whole_data_root_finds_no_planted_value(lake, tmp_path):
    from lenslake.privacy.canary import planted_values, scan, scan_data_root

    settings, manifest, _, _, _, _ = lake
    assert scan_data_root(settings.data_root) == []  # landing/ and everything else; only the manifest is left out
    # not vacuous: the same files decrypted hold planted values, events and people feeds alike
    for p in settings.landing_dir.rglob("*.enc"):
        target = tmp_path / landing.clear_path(p).relative_to(settings.data_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(landing.read_bytes(p, settings))
    hits = scan(tmp_path, planted_values(manifest), exclude=())
    assert {h.file.split("/")[1] for h in hits} >= {"events", "customers"}


# --- reruns read the encrypted files ------------------------------------------------------------------------------


def test_rerunning_an_ingested_day_writes_the_same_bronze_rows(lake):
    from lenslake.engine import get_engine
    from lenslake.pipeline import ingest_landing_days, landing_days

    settings, _, _, store, _, _ = lake
    assert landing_days(settings) == DAYS  # encrypted days are still days: re-runnable, backfillable
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import unseal
    from lenslake.transforms.bronze import position

    ring = load_keys(settings).encryption

    def rows(day):
        d = dt.date.fromisoformat(day)
        events = store.read("bronze.events", filter=pc.field("ingest_date") == d)
        events = events.sort_by([("source_file", "ascending"), ("source_line", "ascending")])
        q = store.read("bronze.events_quarantine", filter=pc.field("ingest_date") == d).to_pylist()
        q.sort(key=lambda r: r["source_line"])
        opened = [r["payload_encrypted"] and unseal(r["payload_encrypted"], r["payload_key_id"], ring,
                                                      position(r).encode()) for r in q]
        return events, [{k: v for k, v in r.items() if k not in ("quarantined_at", "payload_encrypted")} for r in q], opened

    before = rows(DAYS[0])
    assert before[0].num_rows > 500 and any(before[2])
    assert set(before[0].column("source_file").to_pylist()) == {f"landing/events/{DAYS[0]}/events-000.ndjson"}
    engine = get_engine(settings)
    try:
        counts = ingest_landing_days(engine, store, settings, [DAYS[0]]).counts
    finally:
        engine.release()
    after = rows(DAYS[0])
    assert after[0].equals(before[0])
    assert after[1] == before[1] and after[2] == before[2]
    assert counts["landed"] == before[0].num_rows + len(before[1])
    assert clear_files(settings.events_landing_dir) == []


def test_catalog_feed_days_and_people_feeds_re_read_from_ciphertext_give_the_same_result(lake, tmp_path):
    from lenslake.catalog.apply import apply_pending
    from lenslake.profiles import feeds as PF
    from lenslake.profiles.build import ingest_all

    settings, _, delivered, store, catalog, people = lake
    # a fresh store applies the encrypted catalog days: the same reports as the first apply, from the clear files
    fresh = DeltaStore(tmp_path / "tables")
    again = apply_pending(fresh, settings.data_root, NOW)
    assert [r.summary() for r in again] == [r.summary() for r in catalog]
    columns = ["feed", "feed_day", "source_file", "source_line", "reason_code", "payload"]
    quarantined = [sorted(map(tuple, (x.values() for x in t.read("catalog.feed_quarantine", columns=columns).to_pylist())))
                   for t in (store, fresh)]
    assert quarantined[0] == quarantined[1] and len(quarantined[0]) > 0
    assert all(f.startswith("landing/catalog/") and f.endswith(".ndjson") for _, _, f, *_ in quarantined[0])
    # people feeds: the same lines and the digest of the clear bytes, so a rerun knows the snapshot is ingested
    for feed, report in people.items():
        v = PF.read_feed(settings.data_root, feed)
        assert v.file == f"landing/customers/{feed}.ndjson" and v.lines == report.lines
        assert v.sha256 == delivered[f"customers/{feed}.ndjson"]
    assert all(r.skipped for r in ingest_all(store, settings, NOW).values())
    # a new snapshot landing beside the encrypted one wins, is ingested, and is then encrypted over it
    old = PF.read_feed(settings.data_root, "consent")
    lines = landing.read_bytes(landing.sealed_path(PF.feed_path(settings.data_root, "consent")), settings).splitlines()
    PF.feed_path(settings.data_root, "consent").write_bytes(b"\n".join(lines[:-1]) + b"\n")
    report = ingest_all(store, settings, NOW)["consent"]
    assert not report.skipped and report.lines == old.lines - 1
    assert not PF.feed_path(settings.data_root, "consent").exists()
    assert PF.read_feed(settings.data_root, "consent").lines == old.lines - 1


# --- erasure ------------------------------------------------------------------------------------------------------


def test_erasure_removes_the_users_lines_from_encrypted_files_and_keeps_them_encrypted(lake):
    from lenslake.privacy.erasure import erase_raw_files

    settings, _, _, _, _, _ = lake
    files = sorted(settings.landing_dir.rglob("*.enc"))
    before = {p: landing.read_bytes(p, settings).split(b"\n") for p in files}

    def ids(path):
        return {m.group(1).decode() for x in before[path] if (m := re.search(rb'"user_id"\s*:\s*"([^"]+)"', x))}

    events = next(p for p in files if "events" in p.parts)
    customers = next(p for p in files if p.name == "customers.ndjson.enc")
    uid = min(ids(events) & ids(customers))
    mine = re.compile(rb'"user_id"\s*:\s*"' + uid.encode() + rb'"')
    holding = {p for p, lines in before.items() if any(mine.search(x) for x in lines)}
    assert events in holding and customers in holding
    key_ids = {p: landing.key_id(p) for p in files}
    report = erase_raw_files(settings, [uid], {})
    assert report["files_rewritten"] == len(holding) and report["lines_removed"] > 0
    assert clear_files(settings.events_landing_dir) == [] and not list(settings.landing_dir.rglob("*.tmp"))
    for p in files:
        after = landing.read_bytes(p, settings).split(b"\n")
        assert not any(mine.search(x) for x in after), p
        assert after == [x for x in before[p] if not mine.search(x)], p  # every other line kept, in order
        assert landing.key_id(p) == key_ids[p]
    assert sum(len(before[p]) - len(landing.read_bytes(p, settings).split(b"\n")) for p in files) == report["lines_removed"]


# --- refused: tampered, truncated, foreign ------------------------------------------------------------------------


def test_a_tampered_landing_file_fails_the_rerun_with_one_line_naming_it_and_writes_nothing(lake, tmp_path):
    from lenslake.engine import get_engine
    from lenslake.pipeline import ingest_landing_days

    settings, _, _, _, _, _ = lake
    copy = tmp_path / "lake"
    shutil.copytree(settings.data_root, copy)  # keys included: the copy is the same lake
    s = get_settings(data_root=copy, engine="duckdb", as_of=NOW)
    store = DeltaStore(s.tables_dir)
    version = store.version("bronze.events")
    path = next((s.events_landing_dir / DAYS[1]).glob("*.enc"))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    engine = get_engine(s)
    try:
        with pytest.raises(landing.LandingFileError) as e:
            ingest_landing_days(engine, store, s, [DAYS[1]])
    finally:
        engine.release()
    message = str(e.value)
    assert str(path) in message and "not authentic" in message and "\n" not in message
    assert store.version("bronze.events") == version


@pytest.fixture
def ring():
    return KeyRing("k1", {"k1": os.urandom(32)})


def write(path: Path, data: bytes, ring, chunk: int) -> Path:
    path.write_bytes(b"".join(landing.encrypt_chunks(landing._memory_chunks(data, chunk), ring, chunk=chunk)))
    return path


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 1000])
def test_any_size_reads_back_byte_for_byte_across_chunk_boundaries(tmp_path, ring, size):
    data = os.urandom(size)
    path = write(tmp_path / "f.ndjson.enc", data, ring, chunk=64)
    assert b"".join(landing.decrypt_chunks(path, ring)) == data
    assert path.stat().st_size == len(landing._header("k1", 64, b"\0" * 32)) + size + 16 * (size // 64 + 1)


def _cut(data: bytes, header: int, block: int):
    chunks = [data[header + i: header + i + block] for i in range(0, len(data) - header, block)]
    return data[:header], chunks


@pytest.mark.parametrize("damage", ["flip_header", "flip_body", "flip_tag", "drop_final", "cut_mid_chunk",
                                    "swap_chunks", "append", "empty_body", "not_encrypted"])
def test_damage_of_any_kind_is_refused_with_one_line_naming_the_file(tmp_path, ring, damage):
    path = write(tmp_path / "f.ndjson.enc", b'{"user_id":"U1"}\n' * 40, ring, chunk=64)  # 680 bytes: 11 chunks
    raw = path.read_bytes()
    header_len = len(landing._header("k1", 64, b"\0" * 32))
    head, chunks = _cut(raw, header_len, 64 + 16)
    if damage == "flip_header":
        raw = raw[:8] + bytes([raw[8] ^ 1]) + raw[9:]  # in the chunk size or salt: still parses, fails the tag
    elif damage == "flip_body":
        raw = raw[:header_len + 100] + bytes([raw[header_len + 100] ^ 0x80]) + raw[header_len + 101:]
    elif damage == "flip_tag":
        raw = raw[:-1] + bytes([raw[-1] ^ 1])
    elif damage == "drop_final":
        raw = head + b"".join(chunks[:-1])
    elif damage == "cut_mid_chunk":
        raw = raw[: header_len + 3 * 80 + 40]
    elif damage == "swap_chunks":
        raw = head + chunks[1] + chunks[0] + b"".join(chunks[2:])
    elif damage == "append":
        raw = raw + b"\0" * 16
    elif damage == "empty_body":
        raw = head
    elif damage == "not_encrypted":
        raw = b'{"user_id":"U1"}\n'
    path.write_bytes(raw)
    with pytest.raises(landing.LandingFileError) as e:
        landing.read_bytes(path, ring=ring)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_file_from_another_key_ring_names_the_missing_key(tmp_path, ring):
    path = write(tmp_path / "f.ndjson.enc", b"x\n", ring, chunk=64)
    other = KeyRing("k2", {"k2": os.urandom(32)})
    with pytest.raises(landing.LandingFileError, match="'k1', which the landing key ring lacks"):
        landing.read_bytes(path, ring=other)
    impostor = KeyRing("k1", {"k1": os.urandom(32)})  # the same id, another key
    with pytest.raises(landing.LandingFileError, match="not authentic at chunk 0"):
        landing.read_bytes(path, ring=impostor)


def test_keys_rotate_old_files_open_and_reencrypt_moves_them_to_the_active_key(tmp_path):
    import base64

    def b64(k):
        return base64.b64encode(k).decode()

    old, new = os.urandom(32), os.urandom(32)
    s = get_settings(data_root=tmp_path, landing_key=f"k1:{b64(old)}")
    folder = tmp_path / "landing" / "events" / "2026-11-10"
    folder.mkdir(parents=True)
    (folder / "events-000.ndjson").write_bytes(b'{"a":1}\n')
    path = landing.encrypt_file(folder / "events-000.ndjson", s)
    assert landing.key_id(path) == "k1" and not (folder / "events-000.ndjson").exists()
    rotated = get_settings(data_root=tmp_path, landing_key=f"k2:{b64(new)},k1:{b64(old)}")
    assert landing.read_bytes(path, rotated) == b'{"a":1}\n'
    assert landing.reencrypt(tmp_path / "landing", rotated) == 1 and landing.key_id(path) == "k2"
    assert landing.reencrypt(tmp_path / "landing", rotated) == 0
    only_new = get_settings(data_root=tmp_path, landing_key=f"k2:{b64(new)}")
    assert landing.read_bytes(path, only_new) == b'{"a":1}\n'


def test_the_dev_key_ring_is_created_once_and_shared(tmp_path):
    from lenslake.privacy.keys import load_landing_keys

    s = get_settings(data_root=tmp_path)
    first = load_landing_keys(s)
    assert first.active.startswith("dev-") and len(first.active_key) == 32
    assert load_landing_keys(get_settings(data_root=tmp_path)) == first
    assert (tmp_path / "keys" / "landing-keys.json").stat().st_mode & 0o777 == 0o600
    assert load_landing_keys(get_settings(data_root=tmp_path / "other")).active != first.active


def test_encrypting_is_atomic_and_keeps_the_file_mode(tmp_path):
    s = get_settings(data_root=tmp_path)
    path = tmp_path / "landing" / "customers" / "customers.ndjson"
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"user_id":"U1","email":"a@example.com"}\n' * 1000)
    os.chmod(path, 0o640)
    sealed = landing.encrypt_file(path, s)
    assert sorted(p.name for p in path.parent.iterdir()) == ["customers.ndjson.enc"]
    assert sealed.stat().st_mode & 0o777 == 0o640 and b"example.com" not in sealed.read_bytes()
    assert landing.encrypt_file(sealed, s) == sealed  # already encrypted: left as it is
    assert landing.listing(path.parent) == [sealed]
    path.write_bytes(b"newer\n")  # a delivery after ingest: the clear file wins until it is ingested
    assert landing.listing(path.parent) == [path]
