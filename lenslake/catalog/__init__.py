"""The product database: daily catalog, media, relations, price and stock feeds merged atomically into Delta tables
(``lenslake.tables``: ``catalog.*``), with quarantine, survivorship, type-2 prices, an audit trail from Delta's
change data feed, cache invalidations for the serving layer, referential checks, quality metrics and a Myntra import.

Modules: ``feeds`` (contracts, validation, survivorship), ``apply`` (the MERGE of each feed day), ``history`` (the
audit trail), ``serving`` (invalidations consumer, current prices), ``integrity`` (referential checks), ``quality``
(completeness and validity per day), ``myntra`` (the real catalogue import), ``rules`` (shared domain rules).
No module imports Dagster.
"""
