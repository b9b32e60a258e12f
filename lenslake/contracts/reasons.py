"""The one reason-code vocabulary of every quarantine (events, feeds, Kafka).

A quarantine row carries one of these codes plus the field path it concerns; tests and dashboards group by it.
"""

REASONS: dict[str, str] = {
    "malformed_json": "the line is not a JSON object",
    "invalid_encoding": "the bytes are not valid UTF-8",
    "unknown_schema": "no registered contract has this schema name and version",
    "missing_required_field": "a required field is absent or null",
    "wrong_type": "a field's value is not of the declared JSON type",
    "not_in_enum": "a field's value is not one of the allowed values",
    "pattern_mismatch": "a string field does not match the declared pattern (ids, timestamps, SKUs)",
    "out_of_range": "a number is below the minimum or above the maximum",
    "invalid_length": "a string is shorter or longer than allowed",
    # Reserved for the Kafka and feed paths (same vocabulary everywhere).
    "unknown_schema_id": "the Confluent wire-format schema id is not in the registry",
    "undecodable_payload": "the message bytes could not be decoded with the registered schema",
    "constraint_violation": "a row breaks a table constraint",
    "referential_integrity": "a row points at a record that does not exist",
}


def check_reason(code: str) -> str:
    if code not in REASONS:
        raise ValueError(f"unknown quarantine reason code {code!r}; add it to lenslake.contracts.reasons")
    return code
