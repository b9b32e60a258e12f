"""The table catalogue: the single home of per-table facts.

Every Delta table the platform writes is declared here: name, layer, declared schema (both engines cast to it
before writing), partitioning, owner, retention, PII and token columns (kept out of Delta statistics, checked with
BOOLEAN_ONLY results), the user-key column erasure deletes by, and the purpose of each column. Contracts, checks,
retention, erasure and the access policy read this rather than keeping lists of their own.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from lenslake.contracts.events import event_fields, token_column

ARROW_TYPES = {
    "string": pa.string(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str
    nullable: bool = True
    token: bool = False  # holds a keyed-HMAC token of a PII value
    pii: bool = False  # may hold PII (free text, raw payloads); never in statistics or check samples
    free_text: bool = False
    # What a row written before the column existed reads (Delta keeps its null); from the field's Avro default.
    default: Any = None
    # The declared purposes (PURPOSES) this column is stored for: minimization (lenslake.profiles.minimization)
    # refuses a personal-data column without one, and the decrypting accessor releases a field only for them.
    purpose: tuple[str, ...] = ()
    encrypted: bool = False  # AES-GCM ciphertext under the user's data key (lenslake.privacy.encryption)


@dataclass(frozen=True)
class TableSpec:
    name: str  # "<layer>.<table>"
    description: str
    columns: tuple[Column, ...]
    partition_by: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    owner: str = "data-platform"
    retention_days: int | None = None
    user_key: str | None = None  # the column right-to-erasure deletes by
    consumers: tuple[str, ...] = field(default_factory=tuple)
    # CHECK constraints (name, SQL expression), added by DeltaStore when it creates the table and by a migration
    # to tables created before. delta-rs stores them simplified and refuses a write that breaks one.
    constraints: tuple[tuple[str, str], ...] = ()
    # Delta's change data feed (``delta.enableChangeDataFeed``, set when the table is created): every commit also
    # records the rows it changed, before and after (the catalog's audit trail reads it).
    change_data_feed: bool = False

    @property
    def layer(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema(
            [pa.field(c.name, ARROW_TYPES[c.type], nullable=c.nullable) for c in self.columns],
            metadata={"table": self.name},
        )

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def token_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.token]

    @property
    def sensitive_columns(self) -> list[str]:
        """Columns whose values must never reach Delta statistics or check results (tokens and clear PII)."""
        return [c.name for c in self.columns if c.token or c.pii or c.free_text]

    @property
    def defaults(self) -> dict[str, Any]:
        """Column → the value its nulls read as (columns added by a schema version with a default)."""
        return {c.name: c.default for c in self.columns if c.default is not None}

    @property
    def stats_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.name not in self.sensitive_columns]


def C(name, type_, doc, **kw) -> Column:
    return Column(name, type_, doc, **kw)


# --- events -------------------------------------------------------------------------------------------------------

RENAMES = {"schema": "event_type", "session_id": "client_session_id"}


def event_columns(*, defaults: bool = False) -> tuple[Column, ...]:
    """The event fields of the contracts as typed columns, PII fields replaced by their tokens. With ``defaults``,
    a field that a later schema version added with a default carries it (silver: old rows read the default)."""
    cols = []
    for rule in event_fields():
        name = RENAMES.get(rule.column, rule.column)
        required = rule.required and not rule.nullable and rule.path.count(".") == 1
        doc = rule.description or f"`{rule.path}` of the raw event"
        if rule.pii:
            cols.append(C(token_column(rule.pii), "string", f"keyed HMAC token of `{rule.path}` ({rule.pii})", token=True, nullable=not required))
            if rule.pii == "ip":
                cols.append(C("ip_prefix", "string", "the IP address truncated to its /24 network, for analytics"))
            continue
        type_ = {"int64": "int64", "double": "double", "string": "string", "bool": "bool"}[rule.arrow_type]
        if name == "schema_version":
            type_ = "int32"
        if name == "event_time":
            type_ = "timestamp"
        default = rule.default if defaults and rule.has_default else None
        cols.append(C(name, type_, doc, nullable=not required, free_text=rule.free_text, default=default))
    return tuple(cols)


LINEAGE = (
    C("ingest_date", "date", "the day the event was ingested (landing day or Kafka ingest day)", nullable=False),
    C("source", "string", "where the row came from: 'file' (landing NDJSON) or 'kafka'", nullable=False),
    C("source_file", "string", "landing file path relative to the data root"),
    C("source_line", "int64", "1-based line number in the landing file"),
    C("kafka_topic", "string", "Kafka topic (Kafka source only)"),
    C("kafka_partition", "int32", "Kafka partition (Kafka source only)"),
    C("kafka_offset", "int64", "Kafka offset (Kafka source only)"),
)


def catalogue() -> dict[str, TableSpec]:
    """Every declared table. The event tables' columns follow the schema registry, so the catalogue is rebuilt
    when the registry changes (a newly registered version with a new field adds a column)."""
    from lenslake.contracts.events import registry_state

    return _catalogue(registry_state())


@functools.cache
def _catalogue(_registry_state) -> dict[str, TableSpec]:
    ev = event_columns()
    specs = [
        TableSpec(
            "bronze.events",
            "Every landed event that passed its contract, PII tokenized, one row per landed line (duplicates kept).",
            ev + LINEAGE,
            partition_by=("ingest_date", "source"),
            retention_days=30,  # raw events: 30 days (silver keeps the deduplicated events longer)
            user_key="user_token",
            consumers=("silver.events",),
        ),
        TableSpec(
            "bronze.events_quarantine",
            "Every landed event line that failed its contract, with the reason; PII tokenized, unparseable lines encrypted.",
            (
                C("quarantine_id", "string", "sha256 of source position: stable across reruns", nullable=False),
                C("reason_code", "string", "first broken rule (lenslake.contracts.reasons)", nullable=False),
                C("field_path", "string", "JSON path the reason concerns"),
                C("violations", "string", "every broken rule as reason@path, ';'-separated"),
                C("event_type", "string", "schema name claimed by the line, if readable"),
                C("schema_version", "int32", "schema version claimed by the line, if readable"),
                C("event_id", "string", "event id claimed by the line, if readable"),
                C("payload", "string", "the event as JSON with its PII fields tokenized (null for unparseable lines)", pii=True),
                C("payload_encrypted", "string", "AES-GCM ciphertext (base64) of an unparseable line", pii=True),
                C("payload_key_id", "string", "id of the key payload_encrypted is sealed with"),
                C("payload_preview", "string", "masked preview: letters→x, digits→9, so shape shows and content does not", pii=True),
                C("quarantined_at", "timestamp", "when the row was quarantined"),
            )
            + LINEAGE,
            partition_by=("ingest_date", "source"),
            retention_days=14,  # rejected lines: two weeks to investigate and replay
        ),
        TableSpec(
            "silver.events",
            "Deduplicated human events (one row per event id), typed, dated by event time and sessionized (30-minute gap).",
            tuple(c for c in event_columns(defaults=True) if c.name != "ip_token")
            + (
                C("event_date", "date", "UTC date of event_time", nullable=False),
                C("session_id", "string", "derived session: sha256 of device token and session start", nullable=False),
                C("ingest_date", "date", "the day the event was first ingested", nullable=False),
                C("source", "string", "file or kafka", nullable=False),
            ),
            partition_by=("event_date",),
            key=("event_id",),
            retention_days=400,
            user_key="user_token",
            consumers=("silver.sessions", "gold.daily_kpis"),
        ),
        TableSpec(
            "silver.bot_events",
            "Events removed as bot traffic, with the reason, so bot filtering can be audited.",
            (
                C("event_id", "string", "event id", nullable=False),
                C("event_type", "string", "event type", nullable=False),
                C("event_time", "timestamp", "event time", nullable=False),
                C("device_token", "string", "device token", token=True),
                C("user_agent", "string", "user agent that was classified"),
                C("bot_reason", "string", "crawler_user_agent | headless_browser | inhuman_timing", nullable=False),
                C("ingest_date", "date", "ingest partition the event came in", nullable=False),
            ),
            partition_by=("ingest_date",),
            key=("event_id",),
            retention_days=90,
        ),
        TableSpec(
            "silver.sessions",
            "One row per derived session: start, end, activity counts and conversion.",
            (
                C("session_id", "string", "derived session id", nullable=False),
                C("session_date", "date", "UTC date of the session's first event", nullable=False),
                C("device_token", "string", "device token", token=True),
                C("user_token", "string", "user token of the first logged-in event, if any", token=True),
                C("client_session_id", "string", "the client's own session id at the first event"),
                C("session_start", "timestamp", "first event time", nullable=False),
                C("session_end", "timestamp", "last event time", nullable=False),
                C("duration_s", "double", "seconds from first to last event", nullable=False),
                C("event_count", "int64", "events in the session", nullable=False),
                C("page_views", "int64", "page_view events", nullable=False),
                C("product_views", "int64", "product_view events", nullable=False),
                C("searches", "int64", "search events", nullable=False),
                C("add_to_carts", "int64", "add_to_cart events", nullable=False),
                C("purchases", "int64", "purchase events", nullable=False),
                C("revenue", "double", "sum of purchase total_amount", nullable=False),
                C("channel", "string", "channel of the first event"),
                C("device", "string", "device class of the first event"),
                C("platform", "string", "platform of the first event"),
                C("converted", "bool", "the session has a purchase", nullable=False),
            ),
            partition_by=("session_date",),
            key=("session_id",),
            retention_days=400,
            user_key="user_token",
            consumers=("gold.daily_funnel",),
        ),
        *contract_specs(),
        *catalog_specs(),
        *governance_specs(),  # privacy ledgers: erasure requests, suppression list, SQL access log
        *profile_specs(),
        TableSpec(
            "meta.schema_migrations",
            "Every table migration applied to this lake (lenslake/migrations/versions), one row each, append-only.",
            (
                C("id", "string", "the migration's 4-digit id (its file name is m<id>_<slug>.py)", nullable=False),
                C("description", "string", "the migration's one-line description", nullable=False),
                C("checksum", "string", "sha256 of the script's source when it was applied", nullable=False),
                C("applied_at", "timestamp", "when it finished", nullable=False),
                C("duration_ms", "int64", "how long it took", nullable=False),
                C("outcome", "string", "applied (it changed a table) | no-op (every table was already in shape or absent)", nullable=False),
                C("notes", "string", "what each operation did, one per line"),
            ),
            key=("id",),
        ),
    ]
    return {s.name: s for s in specs}


def governance_specs() -> list[TableSpec]:
    from lenslake.privacy.governance import governance_specs as specs

    return specs()


def contract_specs() -> list[TableSpec]:
    """Tables with a data contract (the gold tables services read) take their spec from it: one source."""
    from lenslake.contracts.table_contracts import table_contracts

    return [
        TableSpec(
            c.table,
            " ".join(c.description.split()),
            tuple(C(col.name, col.type, col.description, nullable=col.nullable) for col in c.columns),
            partition_by=c.partition_by,
            key=c.key,
            owner=c.owner,
            consumers=c.consumers,
            constraints=tuple((name, " ".join(sql.split())) for name, sql in c.constraints.items()),
        )
        for c in table_contracts().values()
    ]


# --- the product database (lenslake.catalog) ----------------------------------------------------------------------

CATALOG_LINEAGE = (
    C("updated_at", "timestamp", "the source's change time of the row (the feed row's updated_at, or the import's time)",
      nullable=False),
    C("feed", "string", "who last changed the row: the feed file (relative to the data root) or the importer's source"),
)


def catalog_specs() -> list[TableSpec]:
    """The product database: master data, attributes, media, taxonomy, stock and type-2 prices, fed by daily feeds
    (lenslake.catalog). Product, attribute, price and stock tables keep Delta's change data feed: the audit trail."""
    sku = C("sku", "string", "stock keeping unit", nullable=False)
    return [
        TableSpec(
            "catalog.products",
            "The golden record per SKU: one row each, from the catalog feed (survivorship: lenslake.catalog.feeds) or "
            "an import (Myntra).",
            (
                sku,
                C("product_type", "string", "optical_frame | sunglasses | lens | contact_lens | accessory"),
                C("name", "string", "display name", nullable=False),
                C("description", "string", "merchandising copy (null where the source has none)"),
                C("category", "string", "taxonomy node id: department/sub-category (catalog.taxonomy_nodes)"),
                C("brand", "string", "brand"),
                C("model_code", "string", "brand model code shared by colour variants (RB3025)"),
                C("status", "string", "active | discontinued", nullable=False),
                C("source", "string", "where the record comes from: feed | myntra", nullable=False),
                C("source_id", "string", "the record's id in its source (Myntra's style id)"),
            )
            + CATALOG_LINEAGE,
            key=("sku",),
            owner="merchandising",
            consumers=("vectors.product_embeddings", "serving"),
            constraints=(
                ("products_status_valid", "status IN ('active', 'discontinued')"),
                ("products_source_valid", "source IN ('feed', 'myntra')"),
            ),
            change_data_feed=True,
        ),
        TableSpec(
            "catalog.eyewear_attributes",
            "Eyewear attributes per SKU: frame, sizes in mm, lenses offered, supported prescription range, fit. "
            "Absent attributes are null.",
            (
                sku,
                C("frame_material", "string", "acetate, metal, titanium, …"),
                C("frame_shape", "string", "aviator, round, square, …"),
                C("colour", "string", "frame colour"),
                C("lens_width_mm", "int32", "lens width in mm"),
                C("bridge_mm", "int32", "bridge width in mm"),
                C("temple_mm", "int32", "temple length in mm"),
                C("rim_type", "string", "full_rim | half_rim | rimless (null: not stated by the source)"),
                C("lens_types", "string", "lens types offered, comma-separated (single_vision,progressive,…)"),
                C("rx_sph_min", "double", "lowest supported sphere (dioptres)"),
                C("rx_sph_max", "double", "highest supported sphere (dioptres)"),
                C("rx_cyl_max", "double", "strongest supported cylinder (dioptres, magnitude)"),
                C("progressive_compatible", "bool", "takes progressive lenses"),
                C("gender", "string", "men | women | unisex"),
                C("face_width_fit", "string", "narrow | medium | wide"),
            )
            + CATALOG_LINEAGE,
            key=("sku",),
            owner="merchandising",
            constraints=(
                ("attributes_lens_width_plausible", "lens_width_mm IS NULL OR lens_width_mm BETWEEN 30 AND 75"),
                ("attributes_bridge_plausible", "bridge_mm IS NULL OR bridge_mm BETWEEN 10 AND 30"),
                ("attributes_temple_plausible", "temple_mm IS NULL OR temple_mm BETWEEN 110 AND 165"),
                ("attributes_sph_min_plausible", "rx_sph_min IS NULL OR rx_sph_min BETWEEN -20 AND 0"),
                ("attributes_sph_max_plausible", "rx_sph_max IS NULL OR rx_sph_max BETWEEN 0 AND 20"),
                ("attributes_cyl_plausible", "rx_cyl_max IS NULL OR rx_cyl_max BETWEEN 0 AND 10"),
                ("attributes_rim_type_valid", "rim_type IS NULL OR rim_type IN ('full_rim', 'half_rim', 'rimless')"),
            ),
            change_data_feed=True,
        ),
        TableSpec(
            "catalog.media",
            "Media assets per SKU: image, 3D model and virtual try-on references with their sha256 checksums.",
            (
                sku,
                C("media_type", "string", "image | model_3d | try_on", nullable=False),
                C("position", "int32", "order among the SKU's assets of that type (1 first)", nullable=False),
                C("uri", "string", "where the asset is served from", nullable=False),
                C("checksum_sha256", "string", "sha256 of the asset's bytes (hex)", nullable=False),
            )
            + CATALOG_LINEAGE,
            key=("sku", "media_type", "position"),
            owner="merchandising",
            constraints=(
                ("media_type_valid", "media_type IN ('image', 'model_3d', 'try_on')"),
                ("media_position_positive", "position >= 1"),
            ),
        ),
        TableSpec(
            "catalog.taxonomy_nodes",
            "The category tree: departments (level 1) and their sub-categories (level 2), derived from the products.",
            (
                C("node_id", "string", "department or department/sub-category", nullable=False),
                C("parent_id", "string", "the parent node (null for a department)"),
                C("name", "string", "display name", nullable=False),
                C("level", "int32", "1 department, 2 sub-category", nullable=False),
            ),
            key=("node_id",),
            owner="merchandising",
            constraints=(("taxonomy_level_valid", "level IN (1, 2)"),),
        ),
        TableSpec(
            "catalog.product_relations",
            "Product relationships: colour variants (same model code, derived), accessories and frequently bought "
            "together (relations feed).",
            (
                sku,
                C("related_sku", "string", "the related SKU", nullable=False),
                C("relation", "string", "variant | accessory | frequently_bought_together", nullable=False),
                C("score", "double", "strength of the relation, 0..1 (null for variants)"),
                C("updated_at", "timestamp", "the source's change time", nullable=False),
                C("feed", "string", "the relations feed file, or 'derived:model_code'"),
            ),
            key=("sku", "related_sku", "relation"),
            owner="merchandising",
            constraints=(
                ("relations_type_valid", "relation IN ('variant', 'accessory', 'frequently_bought_together')"),
                ("relations_score_range", "score IS NULL OR (score >= 0 AND score <= 1)"),
                ("relations_not_self", "sku <> related_sku"),
            ),
        ),
        TableSpec(
            "catalog.prices",
            "Prices as a type-2 history: one row per SKU and version, valid from valid_from until valid_to (null: the "
            "current version). List price, promotion with its validity window, tiered prices.",
            (
                sku,
                C("currency", "string", "ISO currency", nullable=False),
                C("list_price", "double", "list price", nullable=False),
                C("promo_price", "double", "promotional price, valid from promo_from to promo_to (inclusive)"),
                C("promo_from", "date", "first day of the promotion"),
                C("promo_to", "date", "last day of the promotion"),
                C("tier_prices", "string", "quantity tiers as JSON: [{\"min_qty\": 2, \"unit_price\": 9.5}, …]"),
                C("valid_from", "timestamp", "when this version took effect (the feed row's updated_at)", nullable=False),
                C("valid_to", "timestamp", "when the next version took effect (null: current)"),
                C("is_current", "bool", "this is the SKU's current version", nullable=False),
                C("feed", "string", "the price feed file that brought this version"),
            ),
            key=("sku", "valid_from"),
            owner="pricing",
            consumers=("serving",),
            constraints=(
                ("prices_list_price_non_negative", "list_price >= 0"),
                ("prices_promo_price_valid", "promo_price IS NULL OR (promo_price >= 0 AND promo_price <= list_price)"),
                ("prices_promo_window_valid", "promo_from IS NULL OR promo_to IS NULL OR promo_to >= promo_from"),
                ("prices_promo_dates_plausible", "promo_from IS NULL OR promo_from >= '2000-01-01'::date"),
                ("prices_version_window_valid", "valid_to IS NULL OR valid_to > valid_from"),
                ("prices_current_is_open", "(is_current AND valid_to IS NULL) OR (NOT is_current AND valid_to IS NOT NULL)"),
            ),
            change_data_feed=True,
        ),
        TableSpec(
            "catalog.inventory",
            "Stock per SKU and location: on hand, reserved, sellable, the availability shown, the expected restock date.",
            (
                sku,
                C("location", "string", "warehouse or store code", nullable=False),
                C("on_hand", "int64", "units on hand", nullable=False),
                C("reserved", "int64", "units reserved by open orders", nullable=False),
                C("available", "int64", "sellable units: on hand less reserved, at least 0", nullable=False),
                C("availability", "string", "in_stock | low_stock | backorder | out_of_stock", nullable=False),
                C("restock_date", "date", "expected restock (null: none planned)"),
            )
            + CATALOG_LINEAGE,
            key=("sku", "location"),
            owner="operations",
            consumers=("serving",),
            constraints=(
                ("inventory_on_hand_non_negative", "on_hand >= 0"),
                ("inventory_reserved_non_negative", "reserved >= 0"),
                ("inventory_available_valid", "available >= 0 AND available <= on_hand"),
                ("inventory_availability_valid", "availability IN ('in_stock', 'low_stock', 'backorder', 'out_of_stock')"),
                ("inventory_restock_date_plausible", "restock_date IS NULL OR restock_date >= '2000-01-01'::date"),
            ),
            change_data_feed=True,
        ),
        TableSpec(
            "catalog.feed_quarantine",
            "Every feed line that was not applied, with the reason (lenslake.contracts.reasons), its feed, file and line.",
            (
                C("quarantine_id", "string", "sha256 of feed file and line: stable across reruns", nullable=False),
                C("feed", "string", "products | media | relations | prices | inventory", nullable=False),
                C("feed_day", "date", "the feed's landing day", nullable=False),
                C("source_file", "string", "feed file relative to the data root", nullable=False),
                C("source_line", "int64", "1-based line number", nullable=False),
                C("reason_code", "string", "first broken rule (lenslake.contracts.reasons)", nullable=False),
                C("field_path", "string", "JSON path the reason concerns"),
                C("violations", "string", "every broken rule as reason@path, ';'-separated"),
                C("sku", "string", "the SKU the line names, if readable"),
                C("payload", "string", "the line as landed (catalog feeds carry no personal data)"),
                C("quarantined_at", "timestamp", "when it was quarantined", nullable=False),
            ),
            partition_by=("feed_day",),
            key=("quarantine_id",),
            owner="merchandising",
            retention_days=90,
        ),
        TableSpec(
            "catalog.invalidations",
            "One record per applied price or availability change, for the serving layer's caches (append-only; a "
            "consumer reads what is new since the table version it last saw).",
            (
                C("invalidation_id", "string", "sha256 of source table, version and key: stable across reruns", nullable=False),
                C("kind", "string", "price | availability", nullable=False),
                sku,
                C("location", "string", "stock location (availability only)"),
                C("old_value", "string", "what was served before (null: nothing)"),
                C("new_value", "string", "what is served now"),
                C("source_table", "string", "catalog.prices or catalog.inventory", nullable=False),
                C("source_version", "int64", "the source table's commit that made the change", nullable=False),
                C("feed", "string", "the feed file that brought the change"),
                C("effective_at", "timestamp", "the source's change time", nullable=False),
                C("created_at", "timestamp", "when the record was written", nullable=False),
            ),
            key=("invalidation_id",),
            owner="merchandising",
            retention_days=30,
            consumers=("serving",),
            constraints=(("invalidations_kind_valid", "kind IN ('price', 'availability')"),),
            change_data_feed=True,
        ),
    ]


# --- profiles and privacy (lenslake.profiles, lenslake.privacy) ----------------------------------------------------

# Why personal data is kept. The first four are the consent purposes (the consent ledger records them); the others
# rest on the contract or the law, not on consent.
PURPOSES = {
    "analytics": "aggregate reporting (gold KPIs); consent purpose",
    "personalization": "recommendations, user embeddings, personalized search; consent purpose",
    "marketing": "marketing e-mails and exports; consent purpose",
    "data_sharing": "sharing with partners; consent purpose",
    "service": "the customer relationship: account, orders, customer support (contract)",
    "eye_care": "making and checking prescription lenses, eye-test recall (contract, health data)",
    "privacy": "consent, access logging, erasure and subject-access requests (legal obligation)",
}
CONSENT_PURPOSES = ("analytics", "personalization", "marketing", "data_sharing")


def P(*purposes: str) -> tuple[str, ...]:
    unknown = set(purposes) - set(PURPOSES)
    if unknown:
        raise ValueError(f"undeclared purposes {sorted(unknown)}: declare them in lenslake.tables.PURPOSES")
    return purposes


def profile_specs() -> list[TableSpec]:
    """Customer profiles (lenslake.profiles) and the privacy tables they need (lenslake.privacy): every column
    declares its purposes; contact fields, date of birth and prescriptions are stored only as AES-GCM ciphertexts
    under the user's data key (privacy.user_keys), so deleting that key shreds them."""
    user = C("user_token", "string", "keyed HMAC token of the customer's user id (joins silver.events)", nullable=False,
             token=True, purpose=P("service", "privacy"))

    def enc(name, doc, purpose):
        return C(name, "string", f"AES-GCM ciphertext (base64) of {doc}; associated data binds it to the user and "
                 "field", pii=True, encrypted=True, purpose=purpose)

    return [
        TableSpec(
            "profiles.customers",
            "One profile per customer: demographics, encrypted contact fields and date of birth, declared "
            "preferences, and flexible attributes (JSON, rolled out behind feature flags).",
            (
                user,
                C("age_band", "string", "18-24 … 65+", purpose=P("analytics", "personalization")),
                C("gender", "string", "female | male | non_binary, where given", purpose=P("analytics", "personalization")),
                C("city", "string", "city", purpose=P("analytics", "personalization")),
                C("region", "string", "region", purpose=P("analytics", "personalization")),
                C("country", "string", "ISO 3166-1 alpha-2", purpose=P("service", "analytics")),
                enc("name_enc", "first and last name", P("service")),
                enc("email_enc", "the e-mail address", P("service", "marketing")),
                enc("phone_enc", "the phone number", P("service")),
                enc("date_of_birth_enc", "the date of birth", P("service", "eye_care")),
                C("preferred_style", "string", "declared style", purpose=P("personalization")),
                C("preferred_brands", "string", "declared brand affinities, comma-separated, in order", purpose=P("personalization")),
                C("price_sensitivity", "string", "low | medium | high", purpose=P("personalization")),
                C("face_shape", "string", "oval | round | square | heart | oblong | diamond", purpose=P("personalization")),
                C("face_width_mm", "double", "measured face width (mm)", purpose=P("personalization", "eye_care")),
                C("signup_date", "date", "when the customer signed up", purpose=P("service", "analytics")),
                C("attributes", "string", "flexible attributes as a JSON object (lenslake.profiles.attributes)",
                  purpose=P("personalization")),
                C("source_file", "string", "the feed file the row came from", purpose=P("privacy")),
                C("updated_at", "timestamp", "when the row was written", nullable=False, purpose=P("privacy")),
            ),
            key=("user_token",),
            owner="crm",
            user_key="user_token",
            consumers=("vectors.user_embeddings", "recommendations"),
        ),
        TableSpec(
            "profiles.prescriptions",
            "The latest eye-test prescription per customer and eye; the values (sphere, cylinder, axis, addition, "
            "pupillary distance, exam date, prescriber) are one AES-GCM ciphertext (health data).",
            (
                user,
                C("eye", "string", "OD (right) | OS (left)", nullable=False, purpose=P("eye_care")),
                enc("prescription_enc", "the prescription as JSON", P("eye_care")),
                C("source_file", "string", "the feed file the row came from", purpose=P("privacy")),
                C("updated_at", "timestamp", "when the row was written", nullable=False, purpose=P("privacy")),
            ),
            key=("user_token", "eye"),
            owner="eye-care",
            user_key="user_token",
            constraints=(("prescriptions_eye_valid", "eye IN ('OD', 'OS')"),),
        ),
        TableSpec(
            "profiles.service_history",
            "In-store services per customer: eye tests, adjustments, repairs and fittings, with store and outcome.",
            (
                user,
                C("service_date", "date", "day of the visit", nullable=False, purpose=P("service")),
                C("store_id", "string", "store code", nullable=False, purpose=P("service", "analytics")),
                C("service_type", "string", "eye_test | adjustment | repair | fitting", nullable=False, purpose=P("service", "analytics")),
                C("outcome", "string", "completed | no_show | rescheduled | referred", nullable=False, purpose=P("service", "analytics")),
                C("source_file", "string", "the feed file the row came from", purpose=P("privacy")),
            ),
            key=("user_token", "service_date", "store_id", "service_type"),
            owner="retail",
            user_key="user_token",
        ),
        TableSpec(
            "profiles.behaviour",
            "Behaviour per logged-in customer from silver.events: recency, frequency, monetary value, categories "
            "and brands browsed, returns.",
            (
                user,
                C("first_seen", "timestamp", "first event", purpose=P("personalization", "analytics")),
                C("last_seen", "timestamp", "last event", purpose=P("personalization", "analytics")),
                C("recency_days", "int32", "days from the last event to 'now' (settings.as_of)", purpose=P("personalization", "analytics")),
                C("sessions", "int64", "sessions", nullable=False, purpose=P("personalization", "analytics")),
                C("events", "int64", "events", nullable=False, purpose=P("personalization", "analytics")),
                C("product_views", "int64", "product_view events", nullable=False, purpose=P("personalization")),
                C("orders", "int64", "purchases (frequency)", nullable=False, purpose=P("personalization", "analytics")),
                C("monetary", "double", "sum of purchase totals less refunds", nullable=False, purpose=P("personalization", "analytics")),
                C("returns", "int64", "return events", nullable=False, purpose=P("personalization", "analytics")),
                C("top_categories", "string", "most viewed categories, comma-separated, most first", purpose=P("personalization")),
                C("top_brands", "string", "most viewed brands (catalog.products), comma-separated", purpose=P("personalization")),
                C("computed_at", "timestamp", "when it was computed", nullable=False, purpose=P("privacy")),
            ),
            key=("user_token",),
            owner="crm",
            user_key="user_token",
        ),
        TableSpec(
            "profiles.marketing_audience",
            "Who marketing may contact: customers whose marketing consent is in force, rebuilt from the consent in "
            "force on every run (a withdrawal removes the customer on the next one). No contact details: the CRM "
            "reads them through lenslake.privacy.accessor with purpose 'marketing', which checks consent again.",
            (
                user,
                C("consent_granted_at", "timestamp", "when the marketing consent in force was given", nullable=False,
                  purpose=P("marketing")),
                C("consent_source", "string", "where that consent was given", purpose=P("marketing")),
                C("computed_at", "timestamp", "when the audience was built", nullable=False, purpose=P("privacy")),
            ),
            key=("user_token",),
            owner="crm",
            user_key="user_token",
            consumers=("crm",),
        ),
        TableSpec(
            "profiles.feed_quarantine",
            "People-feed lines that were not stored, with the reason; the line itself only encrypted, with a masked "
            "preview.",
            (
                C("quarantine_id", "string", "sha256 of feed file and line", nullable=False, purpose=P("privacy")),
                C("feed", "string", "customers | prescriptions | service_history | consent", nullable=False, purpose=P("privacy")),
                C("source_file", "string", "feed file relative to the data root", nullable=False, purpose=P("privacy")),
                C("source_line", "int64", "1-based line number", nullable=False, purpose=P("privacy")),
                C("reason_code", "string", "first broken rule (lenslake.contracts.reasons)", nullable=False, purpose=P("privacy")),
                C("field_path", "string", "JSON path the reason concerns", purpose=P("privacy")),
                C("violations", "string", "every broken rule as reason@path", purpose=P("privacy")),
                C("user_token", "string", "token of the line's user id, if readable", token=True, purpose=P("privacy")),
                C("payload_encrypted", "string", "AES-GCM ciphertext (base64) of the line", pii=True, purpose=P("privacy")),
                C("payload_key_id", "string", "id of the key it is sealed with", purpose=P("privacy")),
                C("payload_preview", "string", "masked preview: letters→x, digits→9", pii=True, purpose=P("privacy")),
                C("quarantined_at", "timestamp", "when", nullable=False, purpose=P("privacy")),
            ),
            key=("quarantine_id",),
            owner="crm",
            retention_days=90,
            user_key="user_token",
        ),
        TableSpec(
            "privacy.consent_ledger",
            "Every consent decision, append-only: user, purpose, granted or withdrawn, when, where from. The latest "
            "decision per user and purpose is in force (privacy.current_consent).",
            (
                C("consent_id", "string", "sha256 of user, purpose, decision, time and source: stable across reruns",
                  nullable=False, purpose=P("privacy")),
                user,
                C("purpose", "string", "analytics | personalization | marketing | data_sharing", nullable=False, purpose=P("privacy")),
                C("granted", "bool", "true: granted; false: withdrawn", nullable=False, purpose=P("privacy")),
                C("recorded_at", "timestamp", "when the customer decided", nullable=False, purpose=P("privacy")),
                C("source", "string", "signup | preference_center | cookie_banner | in_store", nullable=False, purpose=P("privacy")),
                C("source_file", "string", "the feed file (or API) it came from", purpose=P("privacy")),
                C("ingested_at", "timestamp", "when it was appended", nullable=False, purpose=P("privacy")),
            ),
            key=("consent_id",),
            owner="privacy",
            user_key="user_token",
            consumers=("privacy.current_consent", "gold.daily_kpis", "recommendations", "vectors.user_embeddings"),
            constraints=(("consent_purpose_valid",
                          "purpose IN ('analytics', 'personalization', 'marketing', 'data_sharing')"),),
        ),
        TableSpec(
            "privacy.current_consent",
            "The consent in force per user and purpose: the ledger's latest decision (rebuilt from the ledger).",
            (
                user,
                C("purpose", "string", "consent purpose", nullable=False, purpose=P("privacy")),
                C("granted", "bool", "in force: granted", nullable=False, purpose=P("privacy")),
                C("recorded_at", "timestamp", "when that decision was made", nullable=False, purpose=P("privacy")),
                C("source", "string", "where it came from", purpose=P("privacy")),
            ),
            key=("user_token", "purpose"),
            owner="privacy",
            user_key="user_token",
        ),
        TableSpec(
            "privacy.user_keys",
            "One data key per user (envelope encryption): the key wrapped by the key store's encryption key. "
            "Deleting a user's row (shred_user_keys) makes every ciphertext of that user unreadable.",
            (
                user,
                C("data_key_id", "string", "id of the user's data key", nullable=False, purpose=P("privacy")),
                C("wrap_key_id", "string", "id of the key-store key that wraps it", nullable=False, purpose=P("privacy")),
                C("wrapped_key", "string", "the data key, AES-GCM-wrapped (base64)", nullable=False, pii=True, purpose=P("privacy")),
                C("created_at", "timestamp", "when it was made", nullable=False, purpose=P("privacy")),
            ),
            key=("user_token",),
            owner="privacy",
            user_key="user_token",
        ),
        TableSpec(
            "privacy.access_log",
            "Every call of the decrypting accessor, allowed or denied, append-only: who, role, purpose, user, fields, "
            "time, outcome.",
            (
                C("access_id", "string", "unique id of the call", nullable=False, purpose=P("privacy")),
                C("accessed_at", "timestamp", "when", nullable=False, purpose=P("privacy")),
                C("caller", "string", "who asked", nullable=False, purpose=P("privacy")),
                C("role", "string", "the caller's role", nullable=False, purpose=P("privacy")),
                C("purpose", "string", "the purpose stated", nullable=False, purpose=P("privacy")),
                C("user_token", "string", "whose fields", token=True, purpose=P("privacy")),
                C("fields", "string", "fields asked for, comma-separated", nullable=False, purpose=P("privacy")),
                C("outcome", "string", "granted | denied | unavailable (no key: shredded or never stored)",
                  nullable=False, purpose=P("privacy")),
                C("reason", "string", "why it was denied or unavailable", purpose=P("privacy")),
            ),
            key=("access_id",),
            owner="privacy",
            retention_days=3650,
            constraints=(("access_outcome_valid", "outcome IN ('granted', 'denied', 'unavailable')"),),
        ),
    ]


def table_spec(name: str) -> TableSpec:
    try:
        return catalogue()[name]
    except KeyError:
        raise KeyError(f"table {name!r} is not declared in lenslake.tables.catalogue()") from None
