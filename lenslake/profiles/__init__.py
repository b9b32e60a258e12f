"""Customer profiles: people feeds (validated against the registered feed schemas), derived profile tables
(demographics, preferences, behaviour, service history, the one prescriptions table), flexible attributes behind
feature flags with an idempotent backfill, and the minimization check. Encryption, the decrypting accessor and the
consent ledger live in lenslake.privacy."""
