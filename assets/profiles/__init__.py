"""Profiles: customer profiles from the CRM feeds, the consent ledger, behaviour from silver events.

One multi-asset ingests the people feeds (customers, prescriptions, service history, consent), each validated
against its registered schema, with quarantine; contact fields, date of birth and prescriptions are encrypted under
per-user data keys (privacy.user_keys). Unpartitioned: each feed is a full snapshot, and a file already ingested is
skipped. Behaviour is recomputed from the whole of silver.events. Minimization and reconciliation gate it as
blocking checks.
"""

import dagster as dg

from orchestration.resources import Lakehouse

KINDS = {"python", "delta"}
TABLE_DOCS = {  # in dependency order (a multi-asset yields its outputs topologically)
    "privacy.user_keys": "Per-user data keys, wrapped by the key store (deleting one shreds the user's ciphertexts).",
    "profiles.customers": "One profile per customer: demographics, encrypted contact fields and date of birth, "
                          "preferences, flexible attributes behind feature flags.",
    "profiles.prescriptions": "The latest prescription per customer and eye, encrypted (health data).",
    "profiles.service_history": "In-store services: eye tests, adjustments, repairs, fittings, with store and outcome.",
    "profiles.feed_quarantine": "People-feed lines not stored, with the reason (the line only encrypted).",
    "privacy.consent_ledger": "Every consent decision, append-only.",
    "privacy.current_consent": "The consent in force per user and purpose (the ledger's latest decision).",
}
DEPS = {"privacy.current_consent": ["privacy.consent_ledger"], "profiles.customers": ["privacy.user_keys"],
        "profiles.prescriptions": ["privacy.user_keys"]}
CUSTOMERS = dg.AssetKey(["profiles", "customers"])
QUARANTINE = dg.AssetKey(["profiles", "feed_quarantine"])


def key(table: str) -> dg.AssetKey:
    return dg.AssetKey(table.split("."))


@dg.multi_asset(
    specs=[dg.AssetSpec(key(t), deps=[key(d) for d in DEPS.get(t, [])], kinds=KINDS, description=doc,
                        owners=["team:crm"]) for t, doc in TABLE_DOCS.items()],
    check_specs=[
        dg.AssetCheckSpec("people_feeds_reconcile", asset=QUARANTINE, blocking=True,
                          description="Every feed line is stored, superseded by a later line for its key, or quarantined."),
        dg.AssetCheckSpec("profiles_minimization", asset=CUSTOMERS, blocking=True,
                          description="Only fields a declared purpose needs are stored: fails on an undeclared field."),
    ],
    group_name="profiles",
)
def profile_tables(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.profiles.build import TARGETS, ingest_all
    from lenslake.profiles.minimization import minimization_problems

    settings = lakehouse.settings()
    store = lakehouse.store()
    reports = ingest_all(store, settings)
    for feed, r in reports.items():
        context.log.info(f"profiles: {feed}: {'already ingested' if r.skipped else f'{r.lines} lines, {r.stored} stored, {r.superseded} superseded, {r.quarantined} quarantined'}")
    by_table = {TARGETS[f]: r for f, r in reports.items()}
    for table in TABLE_DOCS:
        md = {"dagster/row_count": store.count(table), "table_version": store.version(table)}
        r = by_table.get(table)
        if r is not None:
            md |= {"feed_file": r.file or "none", "skipped": r.skipped, "lines": r.lines, "stored": r.stored,
                   "superseded": r.superseded, "quarantined": r.quarantined}
            if r.reasons:
                md["quarantine_reasons"] = dg.MetadataValue.json(r.reasons)
        yield dg.MaterializeResult(asset_key=key(table), metadata=md)
    unreconciled = [f for f, r in reports.items() if not r.reconciles]
    yield dg.AssetCheckResult(check_name="people_feeds_reconcile", asset_key=QUARANTINE, passed=not unreconciled,
                              metadata={"feeds": dg.MetadataValue.json({f: {"lines": r.lines, "stored": r.stored,
                                        "superseded": r.superseded, "quarantined": r.quarantined, "skipped": r.skipped}
                                        for f, r in reports.items()}),
                                        "unreconciled": ", ".join(unreconciled) or "none"})
    problems = minimization_problems(store, {f: r.undeclared for f, r in reports.items()})
    yield dg.AssetCheckResult(check_name="profiles_minimization", asset_key=CUSTOMERS, passed=not problems,
                              metadata={"problems": len(problems), "findings": "\n".join(problems[:20]) or "none"})


@dg.asset(
    key=["profiles", "behaviour"],
    deps=[dg.AssetKey(["silver", "events"]), CUSTOMERS],
    kinds={"duckdb", "delta"},
    group_name="profiles",
    owners=["team:crm"],
    description="Recency, frequency, monetary value, categories and brands browsed, returns per logged-in customer.",
)
def behaviour(context: dg.AssetExecutionContext, lakehouse: Lakehouse) -> dg.MaterializeResult:
    from lenslake.profiles.build import write_behaviour

    store = lakehouse.store()
    write, rows = write_behaviour(lakehouse.engine(), store, lakehouse.settings())
    return dg.MaterializeResult(metadata={"dagster/row_count": rows, "table_version": write.version})


MARKETING_AUDIENCE = dg.AssetKey(["profiles", "marketing_audience"])


@dg.asset(
    key=MARKETING_AUDIENCE,
    deps=[key("privacy.current_consent"), CUSTOMERS],
    kinds={"python", "delta"},
    group_name="profiles",
    owners=["team:crm"],
    description="Customers whose marketing consent is in force (tokens and the consent's time and source; no contact "
                "details): the only export marketing gets.",
    check_specs=[dg.AssetCheckSpec("no_audience_without_consent", asset=MARKETING_AUDIENCE, blocking=True,
                                   description="every customer in the audience has marketing consent in force now")],
)
def marketing_audience(context: dg.AssetExecutionContext, lakehouse: Lakehouse):
    from lenslake.profiles.audience import without_consent, write_audience

    store = lakehouse.store()
    now = lakehouse.settings().now()
    write, rows = write_audience(store, now)
    yield dg.MaterializeResult(asset_key=MARKETING_AUDIENCE,
                               metadata={"dagster/row_count": rows, "table_version": write.version})
    stray = without_consent(store, now)
    yield dg.AssetCheckResult(check_name="no_audience_without_consent", asset_key=MARKETING_AUDIENCE,
                              passed=not stray, metadata={"without_consent": len(stray)})


profiles_assets = [profile_tables, behaviour, marketing_audience]
