"""Great Expectations suites, one per table, and the factory that turns them into Dagster asset checks."""
