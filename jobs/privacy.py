"""Privacy jobs: the daily retention purge and the erasure of recorded requests.

Both are op jobs (they act on every governed table, not on one asset), kept thin: the logic is in
``lenslake.privacy.retention`` and ``lenslake.privacy.erasure``. The erasure job's config names request ids, never a
user: run config is stored in Dagster's run storage, which lives under the data root and is part of what the
erasure's byte scan covers. The requests (ids sealed) are recorded by ``lenslake privacy erase --defer`` or the API.
"""

import dagster as dg

from orchestration.resources import Lakehouse


class PurgeConfig(dg.Config):
    dry_run: bool = False
    vacuum_hours: int | None = None  # default: LENSLAKE_RETENTION_VACUUM_HOURS


@dg.op(description="Delete rows older than each table's retention, vacuum, then prove nothing older is left.")
def purge_expired_rows(context: dg.OpExecutionContext, config: PurgeConfig, lakehouse: Lakehouse):
    from lenslake.privacy.retention import check_retention, purge_expired

    settings = lakehouse.settings()
    if config.vacuum_hours is not None:
        settings = settings.model_copy(update={"retention_vacuum_hours": config.vacuum_hours})
    results = purge_expired(settings, dry_run=config.dry_run)
    checks = check_retention(settings)
    failed = [c for c in checks if not c.passed]
    context.add_output_metadata({
        "rows_purged": sum(r.rows_purged for r in results),
        "files_vacuumed": sum(r.files_vacuumed for r in results),
        "tables": dg.MetadataValue.json({r.table: {"cutoff": r.cutoff, "rows_purged": r.rows_purged,
                                                  "files_vacuumed": r.files_vacuumed} for r in results}),
        "retention_check": "passed" if not failed else "; ".join(f"{c.table}: {c.detail}" for c in failed),
    })
    if failed and not config.dry_run:
        raise dg.Failure(description="retention check failed after the purge",
                         metadata={c.table: c.detail for c in failed})
    return len(results)


@dg.job(description="Retention purge: expired rows deleted and vacuumed, then checked (daily, 03:00 UTC).")
def purge_job():
    purge_expired_rows()


purge_schedule = dg.ScheduleDefinition(name="purge_schedule", job=purge_job, cron_schedule="0 3 * * *",
                                       execution_timezone="UTC")


class ErasureConfig(dg.Config):
    request_ids: list[str] = []  # default: every pending request


@dg.op(description="Execute recorded erasure requests; the receipts name only the request ids.")
def erase_requested_users(context: dg.OpExecutionContext, config: ErasureConfig, lakehouse: Lakehouse):
    from lenslake.privacy.erasure import erase, pending_requests

    settings = lakehouse.settings()
    ids = config.request_ids or pending_requests(settings)
    receipts = [erase(settings, rid) for rid in ids]
    context.add_output_metadata({
        "requests": ", ".join(ids) or "none pending",
        "rows_removed": sum(r["rows_removed"] for r in receipts),
        "receipts": dg.MetadataValue.json([{k: r[k] for k in ("request_id", "completed_at", "rows_removed",
                                                               "parts_not_run")} for r in receipts]),
    })
    return len(receipts)


@dg.job(description="Right to erasure: execute pending requests (lenslake privacy erase --defer records them).")
def erasure_job():
    erase_requested_users()
