"""Right to erasure: delete a user everywhere the lake holds them, history included, and keep them out.

Catalogue-driven: every table whose spec names a ``user_key`` loses the rows whose key is the user's token (a new
table with a user key is covered without a change here). Identifiers linked to the user in those rows (their e-mail,
phone, name and street tokens) are collected first, and rows carrying them without the user token (a failed login
with the user's own e-mail) go too. Tables without a user key that hold PII payloads (the events quarantine) lose the
rows whose payload holds the user's token, or whose sealed payload, opened, holds the user id.

Every delete is a MERGE against a source table of values (delta-rs writes a DELETE's literal predicate into
``_delta_log`` commitInfo, which VACUUM never removes); the touched table is then vacuumed with no retention, so
no older version can be read back (time travel to them fails; the receipt lists the versions dropped). A published
gold table whose pointer held the user is re-pointed to the rewritten version, and its rollback lineage dropped.
Then: LanceDB rows of the user (any table with a ``user_token`` column) deleted, tags holding them re-pointed or
dropped, old versions cleaned up; the user's data key shredded (``lenslake.privacy.encryption``, when present);
raw NDJSON lines of the user in the landing zone rewritten away; the user's keyed hash added to the suppression
list; a receipt written under ``<data_root>/privacy/receipts/`` naming no one but the request id.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.delta import DeltaStore
from lenslake.privacy.governance import (ERASURE_REQUESTS, SUPPRESSED_USERS, subject_hash, suppression_key,
                                         user_ids_of_lines)
from lenslake.settings import Settings
from lenslake.tables import catalogue

# Token columns that identify a person (not a device or a network), collected from the user's rows as linked ids.
LINKED_TOKEN_COLUMNS = ("email_token", "phone_token", "name_token", "street_address_token")
RAW_FOLDERS = ("landing", "synth/sent-to-kafka")  # raw NDJSON kept on disk (reruns, reconciliation)


@dataclass
class TableErasure:
    table: str
    rows_removed: int = 0
    version_before: int = -1
    version_after: int = -1
    files_vacuumed: int = 0
    versions_dropped: str = ""  # the versions no longer readable
    pointer: str | None = None  # what happened to a published pointer


@dataclass
class Receipt:
    request_id: str
    requested_at: str
    started_at: str
    completed_at: str = ""
    subjects: int = 0
    tables: list[TableErasure] = field(default_factory=list)
    raw_files: dict = field(default_factory=dict)
    vectors: dict = field(default_factory=dict)
    keys: dict = field(default_factory=dict)
    suppression: dict = field(default_factory=dict)
    parts_not_run: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "tables"}
        d["tables"] = [t.__dict__ for t in self.tables if t.rows_removed or t.pointer]
        d["tables_checked"] = len(self.tables)
        d["rows_removed"] = sum(t.rows_removed for t in self.tables)
        return d


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --- the request ledger ---------------------------------------------------------------------------------------------


def record_request(settings: Settings, user_ids: list[str]) -> str:
    """Record a pending request (the ids sealed, never in clear) and return its id."""
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import seal

    ids = sorted({u.strip() for u in user_ids if u and u.strip()})
    if not ids:
        raise ValueError("an erasure request needs at least one user id")
    request_id = "er_" + secrets.token_hex(8)
    sealed, key_id = seal(json.dumps(ids).encode(), load_keys(settings).encryption, associated_data=request_id.encode())
    DeltaStore(settings.tables_dir).merge(ERASURE_REQUESTS, pa.Table.from_pylist([{
        "request_id": request_id, "requested_at": _now(), "subjects": len(ids), "status": "pending",
        "subjects_sealed": sealed, "subjects_key_id": key_id}]))
    return request_id


def pending_requests(settings: Settings) -> list[str]:
    store = DeltaStore(settings.tables_dir)
    if not store.exists(ERASURE_REQUESTS):
        return []
    rows = store.read(ERASURE_REQUESTS, columns=["request_id", "status", "requested_at"]).to_pylist()
    return [r["request_id"] for r in sorted(rows, key=lambda r: r["requested_at"]) if r["status"] == "pending"]


def _load_request(settings: Settings, request_id: str) -> tuple[dict, list[str]]:
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import unseal

    store = DeltaStore(settings.tables_dir)
    rows = store.read(ERASURE_REQUESTS, filter=pc.field("request_id") == request_id).to_pylist() \
        if store.exists(ERASURE_REQUESTS) else []
    if not rows:
        raise ValueError(f"no erasure request {request_id!r}")
    row = rows[0]
    if row["status"] != "pending" or not row["subjects_sealed"]:
        raise ValueError(f"erasure request {request_id} is already {row['status']}")
    ids = json.loads(unseal(row["subjects_sealed"], row["subjects_key_id"], load_keys(settings).encryption,
                            request_id.encode()))
    return row, ids


# --- Delta tables ---------------------------------------------------------------------------------------------------


def _merge_delete(store: DeltaStore, name: str, column: str, values) -> int:
    """Delete the rows whose ``column`` is one of ``values`` by a MERGE against them (no literal in the log)."""
    from deltalake import DeltaTable

    values = sorted(set(values))
    if not _rows_with(store, name, column, values):  # no empty commits
        return 0
    source = pa.table({column: pa.array(values, pa.string())})
    metrics = DeltaTable(str(store.path(name))).merge(
        source, predicate=f"t.{column} = s.{column}", source_alias="s", target_alias="t"
    ).when_matched_delete().execute()
    return int(metrics.get("num_target_rows_deleted", 0))


def _rows_with(store: DeltaStore, name: str, column: str, values) -> int:
    if not values or not store.exists(name) or column not in store.columns(name):
        return 0
    return store.read(name, columns=[column], filter=pc.field(column).isin(sorted(values))).num_rows


def _linked_tokens(store: DeltaStore, tokens: list[str]) -> dict[str, set[str]]:
    """Person-identifying tokens found in the user's own rows (their e-mail token, …), per column."""
    linked: dict[str, set[str]] = {c: set() for c in LINKED_TOKEN_COLUMNS}
    for name, spec in catalogue().items():
        if not spec.user_key or not store.exists(name):
            continue
        cols = [c for c in LINKED_TOKEN_COLUMNS if c in store.columns(name)]
        if not cols:
            continue
        rows = store.read(name, columns=[spec.user_key, *cols], filter=pc.field(spec.user_key).isin(tokens))
        for c in cols:
            linked[c] |= {v for v in rows.column(c).to_pylist() if v}
    return linked


def _payload_rows(store: DeltaStore, settings: Settings, name: str, spec, needles: list[str], user_ids: list[str]):
    """Ids (by the table's row-id column) of rows of a table without user key whose PII payload names the user:
    a tokenized payload holding one of their tokens, or a sealed payload holding their id."""
    id_col = (spec.key or tuple(c.name for c in spec.columns if c.name.endswith("_id") and not c.nullable) or (None,))[0]
    text_cols = [c.name for c in spec.columns if (c.pii or c.free_text) and c.type == "string"
                 and not c.name.endswith("_encrypted")]
    if id_col is None or not store.exists(name):
        return id_col, set()
    hit = set()
    if text_cols and needles:
        table = store.read(name, columns=[id_col, *text_cols])
        mask = None
        for c in text_cols:
            for needle in needles:
                m = pc.fill_null(pc.match_substring(table.column(c), needle), False)
                mask = m if mask is None else pc.or_(mask, m)
        hit |= set(table.filter(mask).column(id_col).to_pylist())
    if "payload_encrypted" in spec.column_names and user_ids:
        from lenslake.privacy.keys import load_keys
        from lenslake.privacy.tokens import unseal
        from lenslake.transforms.bronze import position

        ring = load_keys(settings).encryption
        sealed = store.read(name, filter=pc.field("payload_encrypted").is_valid()).to_pylist()
        pattern = re.compile("|".join(re.escape(u) for u in user_ids))
        for row in sealed:
            try:
                text = unseal(row["payload_encrypted"], row["payload_key_id"], ring, position(row).encode())
            except Exception:  # noqa: BLE001  (a row sealed otherwise: not ours to judge here)
                continue
            if any(_whole(text.decode("utf-8", "ignore"), m) for m in pattern.finditer(text.decode("utf-8", "ignore"))):
                hit.add(row[id_col])
    return id_col, hit


def _whole(text: str, m: re.Match) -> bool:
    before = text[m.start() - 1] if m.start() else " "
    after = text[m.end()] if m.end() < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def _vacuum_all(store: DeltaStore, name: str) -> int:
    """VACUUM with no retention: every file no longer in the latest version goes (older versions unreadable)."""
    from deltalake import DeltaTable

    removed = DeltaTable(str(store.path(name))).vacuum(retention_hours=0, dry_run=False,
                                                       enforce_retention_duration=False)
    return len(removed)


def _repoint(store: DeltaStore, name: str, before: int, after: int) -> str | None:
    """A published table whose pointer held the user: point it at the rewritten version, drop its lineage."""
    from lenslake import publish

    if name not in publish.published_tables():
        return None
    pointer = publish.load_pointer(store, name)
    if pointer is None or pointer.version is None:
        return None
    with publish._locked(store, name, "pointer"):
        pointer = publish.load_pointer(store, name)
        old, lineage = pointer.version, list(pointer.lineage)
        pointer.record("erasure", after, reason=f"erasure rewrote version {old}; rollback targets {lineage} dropped")
        pointer.version, pointer.lineage = after, [after]
        publish._save_pointer(store, pointer)
    note = f"re-pointed from version {old} to {after}; rollback targets {lineage} dropped"
    if old != before:
        note += f" (versions {old + 1}..{before} were unpublished and are now published with the erasure)"
    return note


def erase_from_tables(store: DeltaStore, settings: Settings, user_ids: list[str], tokens: list[str]) -> list[TableErasure]:
    linked = _linked_tokens(store, tokens)
    needles = sorted(set(tokens) | set().union(*linked.values()))
    results = []
    for name, spec in catalogue().items():
        if name in (ERASURE_REQUESTS, SUPPRESSED_USERS) or not store.exists(name):
            continue
        te = TableErasure(name, version_before=store.version(name))
        if spec.user_key:
            te.rows_removed += _merge_delete(store, name, spec.user_key, tokens)
            for column, values in linked.items():
                te.rows_removed += _merge_delete(store, name, column, values)
        elif any(c.pii for c in spec.columns):
            id_col, ids = _payload_rows(store, settings, name, spec, needles, user_ids)
            if ids:
                te.rows_removed += _merge_delete(store, name, id_col, ids)
        else:
            continue
        te.version_after = store.version(name)
        if te.version_after != te.version_before:
            te.files_vacuumed = _vacuum_all(store, name)
            te.versions_dropped = f"0..{te.version_after - 1}"
            te.pointer = _repoint(store, name, te.version_before, te.version_after)
        results.append(te)
    return results


# --- raw files, vectors, keys ---------------------------------------------------------------------------------------


def _pii_members(lines: pa.Array, ring) -> dict[str, pa.Array]:
    """Tokens of the PII members of raw lines (e-mail, phone, …): each distinct value tokenized once."""
    from lenslake.contracts.events import event_fields, token_column
    from lenslake.privacy.tokens import tokens

    out = {}
    for rule in event_fields():
        if not rule.pii or token_column(rule.pii) not in LINKED_TOKEN_COLUMNS:
            continue
        member = rule.path.split(".")[-1]
        values = pc.struct_field(pc.extract_regex(lines, rf'"{member}"\s*:\s*"(?P<v>(?:[^"\\]|\\.)*)"'), [0])
        encoded = pc.dictionary_encode(values)
        out[token_column(rule.pii)] = pc.take(tokens(encoded.dictionary.to_pylist(), ring), encoded.indices)
    return out


def erase_raw_files(settings: Settings, user_ids: list[str], linked: dict[str, set[str]]) -> dict:
    """Rewrite raw NDJSON files under the data root without the user's lines (their id, or a linked identifier).
    A file kept encrypted once ingested (``*.ndjson.enc``, ``lenslake.privacy.landing``) is decrypted in memory,
    filtered and encrypted again atomically (under the active landing key); its clear lines never touch the disk."""
    from lenslake.privacy import landing
    from lenslake.privacy.keys import load_keys

    ring = load_keys(settings).token
    files = lines_removed = 0
    for folder in RAW_FOLDERS:
        root = settings.data_root / folder
        for path in sorted([*root.rglob("*.ndjson"), *root.rglob("*.ndjson" + landing.SUFFIX)]):
            data = landing.read_bytes(path, settings)
            lines = pa.array(data.decode("utf-8", "replace").split("\n"), pa.string())
            mask = pc.fill_null(pc.is_in(user_ids_of_lines(lines), value_set=pa.array(user_ids, pa.string())), False)
            for column, toks in _pii_members(lines, ring).items():
                if linked.get(column):
                    mask = pc.or_(mask, pc.fill_null(pc.is_in(toks, value_set=pa.array(sorted(linked[column]))), False))
            n = pc.sum(mask.cast(pa.int64())).as_py() or 0
            if n:
                kept = lines.filter(pc.invert(mask)).to_pylist()
                if landing.is_encrypted(path):
                    landing.write_encrypted(path, "\n".join(kept).encode("utf-8"), settings)
                else:
                    tmp = path.with_name(f".{path.name}.erasure.tmp")
                    tmp.write_text("\n".join(kept), encoding="utf-8")
                    os.replace(tmp, path)
                files += 1
                lines_removed += n
    return {"files_rewritten": files, "lines_removed": lines_removed}


def erase_vectors(settings: Settings, tokens: list[str]) -> dict:
    """Erase the user's rows from every LanceDB table that has a ``user_token`` (or ``user_key``) column, history
    included (``lenslake.vectors.store.erase_rows``): the latest rewritten without them (their fragments' other rows
    rewritten, indexes rebuilt), tags on the newest version that held them re-pointed at the rewritten one, older
    tags and branches that held them dropped, every untagged version pruned; then the table's files are scanned for
    the tokens and the float32 bytes of the user's vectors (it raises if any remain)."""
    root = settings.vectors_dir or settings.data_root / "vectors"
    if not Path(root).exists():
        return {"ran": False, "why": "no LanceDB database"}
    import lancedb

    from lenslake.vectors.store import erase_rows, table_names

    db = lancedb.connect(str(root))
    report = {"ran": True, "tables": {}}
    for name in table_names(db):
        table = db.open_table(name)
        column = next((c for c in ("user_token", "user_key") if c in table.schema.names), None)
        if column is None:
            continue
        erased = erase_rows(table, column, tokens, Path(root) / f"{name}.lance")
        if erased:
            report["tables"][name] = erased
    return report


def shred_keys(store: DeltaStore, settings: Settings, tokens: list[str]) -> dict:
    try:
        from lenslake.privacy.encryption import shred_user_keys
    except ImportError:
        return {"ran": False, "why": "lenslake.privacy.encryption.shred_user_keys is not available"}
    return {"ran": True, "keys_shredded": int(shred_user_keys(store, settings, tokens))}


def _suppress(store: DeltaStore, settings: Settings, request_id: str, user_ids: list[str]) -> dict:
    kid, key = suppression_key(settings)
    rows = [{"subject_hash": subject_hash(u, key), "key_id": kid, "request_id": request_id, "suppressed_at": _now()}
            for u in user_ids]
    store.merge(SUPPRESSED_USERS, pa.Table.from_pylist(rows), update=False)
    return {"added": len(rows), "key_id": kid}


# --- the whole erasure ------------------------------------------------------------------------------------------------


def erase(settings: Settings, request_id: str) -> dict:
    """Execute a pending request; returns the receipt (also written to <data_root>/privacy/receipts/<id>.json)."""
    from lenslake.privacy.keys import load_keys
    from lenslake.privacy.tokens import token

    store = DeltaStore(settings.tables_dir)
    row, user_ids = _load_request(settings, request_id)
    ring = load_keys(settings).token
    tokens = sorted({token(u, ring) for u in user_ids})
    receipt = Receipt(request_id, _iso(row["requested_at"]), _iso(_now()), subjects=len(user_ids))
    # Suppress first: a replay that runs while the erasure does cannot bring the user back afterwards.
    receipt.suppression = _suppress(store, settings, request_id, user_ids)
    linked = _linked_tokens(store, tokens)
    receipt.keys = shred_keys(store, settings, tokens)
    receipt.tables = erase_from_tables(store, settings, user_ids, tokens)
    receipt.raw_files = erase_raw_files(settings, user_ids, linked)
    try:
        receipt.vectors = erase_vectors(settings, tokens)
    except ImportError:
        receipt.vectors = {"ran": False, "why": "lancedb is not installed"}
    receipt.parts_not_run = [p for p, part in (("keys", receipt.keys), ("vectors", receipt.vectors)) if not part.get("ran")]
    receipt.completed_at = _iso(_now())
    path = settings.data_root / "privacy" / "receipts" / f"{request_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = receipt.as_dict()
    path.write_text(json.dumps(doc, indent=1) + "\n")
    # Close the request: the sealed ids are nulled, and the ledger vacuumed so no older version keeps them.
    store.merge(ERASURE_REQUESTS, pa.Table.from_pylist([{
        **row, "status": "done", "subjects_sealed": None, "subjects_key_id": None, "completed_at": _now(),
        "receipt": str(path.relative_to(settings.data_root))}]))
    _vacuum_all(store, ERASURE_REQUESTS)
    return doc


def erase_users(settings: Settings, user_ids: list[str]) -> dict:
    """Record a request for the users and execute it at once."""
    return erase(settings, record_request(settings, user_ids))
