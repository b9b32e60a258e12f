"""Aggregate expressions shared by silver and gold."""


def count_of(F, event_type: str):
    """How many rows are events of ``event_type``."""
    return F.sum(F.when(F.col("event_type") == F.lit(event_type), F.lit(1)).otherwise(F.lit(0))).cast("bigint")


def amount_of(F, event_type: str, column: str):
    """Sum of ``column`` over events of ``event_type``, to the cent."""
    return F.round(F.sum(F.when(F.col("event_type") == F.lit(event_type), F.col(column)).otherwise(F.lit(0.0))), 2).cast("double")
