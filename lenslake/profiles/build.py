"""People feeds → profile tables; silver events → behaviour.

Each feed file is a full snapshot. Its valid lines become rows (one per key: a later line supersedes an earlier one
for the same key), its invalid lines quarantine rows; ``lines = stored + superseded + quarantined``. A file already
ingested (its sha256 recorded as a Delta application transaction on ``profiles.feed_quarantine``, in the same commit
as its quarantine rows) is skipped, so a rerun changes nothing.

Only fields a declared purpose needs are stored (the catalogue's ``Column.purpose``; ``NOT_STORED`` names the feed
fields left out and why). Contact fields, date of birth and prescriptions are sealed under the user's data key
(``lenslake.privacy.encryption``) before anything is written; user ids become tokens.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

import pyarrow as pa

from lenslake.delta import DeltaStore
from lenslake.privacy import landing
from lenslake.privacy.keys import load_keys
from lenslake.privacy.tokens import masked_preview, seal, token
from lenslake.profiles import feeds as F
from lenslake.settings import Settings

QUARANTINE = "profiles.feed_quarantine"
TARGETS = {"customers": "profiles.customers", "prescriptions": "profiles.prescriptions",
           "service_history": "profiles.service_history", "consent": "privacy.consent_ledger"}
ORDER = ("customers", "prescriptions", "service_history", "consent")

# Feed field → the column(s) holding it. Every registered feed field is either here or in NOT_STORED: the
# minimization check fails on a field that is neither (a new schema version must declare its purpose first).
STORED = {
    "customers": {"user_id": "user_token", "first_name": "name_enc", "last_name": "name_enc", "email": "email_enc",
                  "phone": "phone_enc", "date_of_birth": "date_of_birth_enc", "gender": "gender",
                  "age_band": "age_band", "city": "city", "region": "region", "country": "country",
                  "face_width_mm": "face_width_mm", "face_shape": "face_shape", "preferred_style": "preferred_style",
                  "preferred_brands": "preferred_brands", "price_sensitivity": "price_sensitivity",
                  "signup_date": "signup_date"},
    "prescriptions": {"user_id": "user_token", "eye": "eye", **{f: "prescription_enc" for f in (
        "sph", "cyl", "axis", "add", "pd", "exam_date", "prescriber")}},
    "service_history": {"user_id": "user_token", "service_date": "service_date", "store_id": "store_id",
                        "service_type": "service_type", "outcome": "outcome"},
    "consent": {"user_id": "user_token", "purpose": "purpose", "granted": "granted", "recorded_at": "recorded_at",
                "source": "source"},
}
NOT_STORED = {
    "customers": {"street": "shipping addresses travel with each order (purchase events), not the profile",
                  "postcode": "as street: no declared purpose needs a home address"},
}


@dataclass
class FeedReport:
    feed: str
    file: str | None = None
    lines: int = 0
    stored: int = 0
    superseded: int = 0
    quarantined: int = 0
    skipped: bool = False  # the file was ingested before
    undeclared: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    version: int = -1

    @property
    def reconciles(self) -> bool:
        return self.skipped or self.lines == self.stored + self.superseded + self.quarantined


def _app_id(feed: str) -> str:
    return f"lenslake.profiles.{feed}"


def _file_version(sha256: str) -> int:
    return int(sha256[:15], 16)


def ingest_feed(store: DeltaStore, settings: Settings, feed: str, now: dt.datetime | None = None) -> FeedReport:
    now = now or settings.now()
    v = F.read_feed(settings.data_root, feed)
    report = FeedReport(feed, v.file, v.lines, undeclared=dict(v.undeclared))
    if v.file is None:
        report.skipped = True
        return report
    if store.app_version(QUARANTINE, _app_id(feed)) == _file_version(v.sha256):
        report.skipped = True
        landing.encrypt_files([F.feed_path(settings.data_root, feed)], settings)  # ingested before: only encrypted
        return report
    keys = load_keys(settings)
    rows = [_quarantine_row(keys, feed, v, q, now) for q in v.quarantine]
    report.quarantined = len(rows)
    for q in rows:
        report.reasons[q["reason_code"]] = report.reasons.get(q["reason_code"], 0) + 1
    writer = {"customers": _customers, "prescriptions": _prescriptions, "service_history": _service_history,
              "consent": _consent}[feed]
    report.stored, report.superseded = writer(store, settings, keys, v, now)
    qt = pa.Table.from_pylist(rows) if rows else None
    from lenslake.tables import table_spec

    store.append(QUARANTINE, qt if qt is not None else table_spec(QUARANTINE).arrow_schema.empty_table(),
                 app_versions={_app_id(feed): _file_version(v.sha256)})
    # Stored and committed: the snapshot is kept only encrypted from now on (over an older encrypted one).
    landing.encrypt_files([F.feed_path(settings.data_root, feed)], settings)
    report.version = store.version(TARGETS[feed])
    return report


def ingest_all(store: DeltaStore, settings: Settings, now: dt.datetime | None = None) -> dict[str, FeedReport]:
    return {feed: ingest_feed(store, settings, feed, now) for feed in ORDER}


def _quarantine_row(keys, feed: str, v: F.Validated, q: dict, now) -> dict:
    reason, path = q["broken"][0]
    sealed, kid = seal(q["text"].encode("utf-8"), keys.encryption, f"{QUARANTINE}|{v.file}|{q['line']}".encode())
    uid = q["user_id"]
    return {"quarantine_id": F.quarantine_id(v.file, q["line"], v.sha256), "feed": feed, "source_file": v.file,
            "source_line": q["line"], "reason_code": reason, "field_path": path,
            "violations": ";".join(f"{r}@{p}" for r, p in q["broken"]),
            "user_token": token(uid, keys.token) if isinstance(uid, str) and uid else None,
            "payload_encrypted": sealed, "payload_key_id": kid, "payload_preview": masked_preview(q["text"]),
            "quarantined_at": now}


def _latest(docs: list[dict], key) -> tuple[list[dict], int]:
    best = {}
    for d in docs:  # file order: a later line supersedes an earlier one
        best[key(d)] = d
    return list(best.values()), len(docs) - len(best)


def _tokens(keys, docs) -> dict[str, str]:
    return {uid: token(uid, keys.token) for uid in {d["user_id"] for d in docs}}


def _customers(store, settings, keys, v: F.Validated, now) -> tuple[int, int]:
    from lenslake.privacy.encryption import associated_data, seal_value, user_keys
    from lenslake.profiles.attributes import enabled_attributes, with_attributes

    docs, superseded = _latest(v.valid, lambda d: d["user_id"])
    if not docs:
        return 0, superseded
    tok = _tokens(keys, docs)
    data_keys = user_keys(store, settings, tok.values(), create=True, now=now)
    table = "profiles.customers"
    rows = []
    for d in docs:
        t = tok[d["user_id"]]
        k = data_keys[t]

        def enc(fieldname, value):
            return seal_value(k, value, associated_data(table, fieldname, t))

        rows.append({
            "user_token": t, "age_band": d["age_band"], "gender": d["gender"], "city": d["city"],
            "region": d["region"], "country": d["country"],
            "name_enc": enc("name", f"{d['first_name']} {d['last_name']}"), "email_enc": enc("email", d["email"]),
            "phone_enc": enc("phone", d["phone"]), "date_of_birth_enc": enc("date_of_birth", d["date_of_birth"]),
            "preferred_style": d["preferred_style"], "preferred_brands": ",".join(d["preferred_brands"]),
            "price_sensitivity": d["price_sensitivity"], "face_shape": d["face_shape"],
            "face_width_mm": float(d["face_width_mm"]), "signup_date": dt.date.fromisoformat(d["signup_date"]),
            "attributes": None, "source_file": v.file, "updated_at": now,
        })
    from lenslake.tables import table_spec

    arrow = pa.Table.from_pylist(rows, schema=table_spec(table).arrow_schema)
    existing = {}
    if store.exists(table):
        held = store.read(table, columns=["user_token", "attributes"])
        existing = dict(zip(held.column(0).to_pylist(), held.column(1).to_pylist()))
    attrs = with_attributes(store, arrow, enabled_attributes(settings), existing)
    arrow = arrow.set_column(arrow.schema.get_field_index("attributes"), "attributes", pa.array(attrs, pa.string()))
    store.merge(table, arrow)
    return len(rows), superseded


RX_FIELDS = ("sph", "cyl", "axis", "add", "pd", "exam_date", "prescriber")


def _prescriptions(store, settings, keys, v: F.Validated, now) -> tuple[int, int]:
    from lenslake.privacy.encryption import associated_data, seal_value, user_keys

    docs, superseded = _latest(v.valid, lambda d: (d["user_id"], d["eye"]))
    if not docs:
        return 0, superseded
    tok = _tokens(keys, docs)
    data_keys = user_keys(store, settings, tok.values(), create=True, now=now)
    table = "profiles.prescriptions"
    rows = []
    for d in docs:
        t = tok[d["user_id"]]
        value = json.dumps({f: d.get(f) for f in RX_FIELDS}, sort_keys=True)
        rows.append({"user_token": t, "eye": d["eye"],
                     "prescription_enc": seal_value(data_keys[t], value, associated_data(table, "prescription", t, d["eye"])),
                     "source_file": v.file, "updated_at": now})
    store.merge(table, pa.Table.from_pylist(rows))
    return len(rows), superseded


def _service_history(store, settings, keys, v: F.Validated, now) -> tuple[int, int]:
    docs, superseded = _latest(v.valid, lambda d: (d["user_id"], d["service_date"], d["store_id"], d["service_type"]))
    tok = _tokens(keys, docs)
    rows = [{"user_token": tok[d["user_id"]], "service_date": dt.date.fromisoformat(d["service_date"]),
             "store_id": d["store_id"], "service_type": d["service_type"], "outcome": d["outcome"],
             "source_file": v.file} for d in docs]
    from lenslake.tables import table_spec

    store.overwrite("profiles.service_history", pa.Table.from_pylist(rows, schema=table_spec("profiles.service_history").arrow_schema))
    return len(rows), superseded


def _consent(store, settings, keys, v: F.Validated, now) -> tuple[int, int]:
    from lenslake.privacy.consent import record_consent

    docs, superseded = _latest(v.valid, lambda d: (d["user_id"], d["purpose"], d["granted"], d["recorded_at"], d["source"]))
    tok = _tokens(keys, docs)
    decisions = [{"user_token": tok[d["user_id"]], "purpose": d["purpose"], "granted": d["granted"],
                  "recorded_at": dt.datetime.fromisoformat(d["recorded_at"].replace("Z", "+00:00")),
                  "source": d["source"]} for d in docs]
    record_consent(store, decisions, now=now, source_file=v.file)
    return len(decisions), superseded


# --- behaviour ---------------------------------------------------------------------------------------------------


def build_behaviour(engine, store: DeltaStore, settings: Settings) -> pa.Table:
    """RFM and browsing per logged-in user from silver.events (the whole table: a profile is all of a user's
    history), brands through catalog.products. Written whole (overwrite)."""
    import polars as pl

    from lenslake.tables import table_spec
    from lenslake.transforms.aggregates import amount_of, count_of

    now = settings.now()
    spec = table_spec("silver.events")
    E = engine.F
    events = engine.read_delta(store.path("silver.events"), spec.arrow_schema, "user_token IS NOT NULL", spec.defaults)
    agg = engine.to_arrow(events.groupBy("user_token").agg(
        E.min("event_time").alias("first_seen"), E.max("event_time").alias("last_seen"),
        E.countDistinct("session_id").cast("bigint").alias("sessions"), E.count(E.lit(1)).cast("bigint").alias("events"),
        count_of(E, "product_view").alias("product_views"), count_of(E, "purchase").alias("orders"),
        amount_of(E, "purchase", "total_amount").alias("revenue"), amount_of(E, "return", "refund_amount").alias("refunds"),
        count_of(E, "return").alias("returns")))
    views = events.where((E.col("event_type") == E.lit("product_view")))
    cats = engine.to_arrow(views.where(E.col("category").isNotNull()).groupBy("user_token", "category").agg(E.count(E.lit(1)).cast("bigint").alias("n")))
    skus = engine.to_arrow(views.where(E.col("sku").isNotNull()).groupBy("user_token", "sku").agg(E.count(E.lit(1)).cast("bigint").alias("n")))
    engine.release()

    def top(frame: pl.DataFrame, col: str, name: str) -> pl.DataFrame:
        if frame.height == 0:
            return pl.DataFrame({"user_token": [], name: []}, schema={"user_token": pl.String, name: pl.String})
        return (frame.group_by("user_token", col).agg(pl.col("n").sum())
                .sort(["user_token", "n", col], descending=[False, True, False])
                .group_by("user_token", maintain_order=True).agg(pl.col(col).head(3).str.join(",").alias(name)))

    out = pl.from_arrow(agg)
    if out.height == 0:
        return table_spec("profiles.behaviour").arrow_schema.empty_table()
    top_cats = top(pl.from_arrow(cats), "category", "top_categories")
    sku_frame = pl.from_arrow(skus)
    if store.exists("catalog.products") and sku_frame.height:
        brands = pl.from_arrow(store.read("catalog.products", columns=["sku", "brand"]))
        sku_frame = sku_frame.join(brands, on="sku", how="inner").drop_nulls("brand")
        top_brands = top(sku_frame.select("user_token", "brand", "n"), "brand", "top_brands")
    else:
        top_brands = pl.DataFrame(schema={"user_token": pl.String, "top_brands": pl.String})
    today = now.date()
    out = (out.join(top_cats, on="user_token", how="left").join(top_brands, on="user_token", how="left")
           .with_columns(
               monetary=(pl.col("revenue").cast(pl.Float64) - pl.col("refunds").cast(pl.Float64)).round(2),
               recency_days=(pl.lit(today) - pl.col("last_seen").dt.date()).dt.total_days().cast(pl.Int32),
               computed_at=pl.lit(now)))
    return out.drop("revenue", "refunds").sort("user_token").to_arrow()


def write_behaviour(engine, store: DeltaStore, settings: Settings):
    rows = build_behaviour(engine, store, settings)
    return store.overwrite("profiles.behaviour", rows), rows.num_rows
