"""Run a GX suite on a frame and summarise it; no Dagster here, so it is testable on its own.

Failed and errored expectations are told apart: an expectation that raised (a broken check) is reported as an
error, never as bad data. Expectations on sensitive columns (tokens, clear PII, free text) run with BOOLEAN_ONLY
results so that no value of theirs is copied into check metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SuiteOutcome:
    passed: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)  # "<expectation type>(<column>)"
    errored: list[str] = field(default_factory=list)  # same, with the error message
    statistics: dict = field(default_factory=dict)  # per failed expectation: unexpected counts (non-sensitive only)


def _condition_columns(condition) -> list[str]:
    """Columns a GX row condition (Condition objects: ``Column("x").is_in([...])``, and/or) refers to."""
    if condition is None or isinstance(condition, str):
        return []
    column = getattr(condition, "column", None)
    own = [column.name] if column is not None else []
    return own + [c for sub in getattr(condition, "conditions", None) or [] for c in _condition_columns(sub)]


def _columns_of(expectation) -> list[str]:
    cols = []
    for attr in ("column", "column_A", "column_B"):
        v = getattr(expectation, attr, None)
        if v:
            cols.append(v)
    cols.extend(getattr(expectation, "column_list", None) or [])
    return cols + _condition_columns(getattr(expectation, "row_condition", None))


def columns_needed(expectations) -> list[str]:
    return sorted({c for e in expectations for c in _columns_of(e)})


def run_suite(name: str, expectations, frame, sensitive_columns: set[str]) -> SuiteOutcome:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset(name)
    outcome = SuiteOutcome(passed=True, evaluated=0)
    sensitive = [e for e in expectations if set(_columns_of(e)) & sensitive_columns]
    plain = [e for e in expectations if e not in sensitive]
    # Counts without values for plain columns; nothing but pass/fail for sensitive ones.
    formats = (({"result_format": "BASIC", "partial_unexpected_count": 0}, plain), ({"result_format": "BOOLEAN_ONLY"}, sensitive))
    for i, (result_format, group) in enumerate(formats):
        if not group:
            continue
        # Each group validates a frame of only its columns: GX hashes the whole frame it is given.
        columns = [c for c in frame.columns if c in set(columns_needed(group))]
        suite = context.suites.add(gx.ExpectationSuite(name=f"{name}_{i}", expectations=[e.copy() for e in group]))
        batch = asset.add_batch_definition_whole_dataframe(f"all_{i}")
        run = context.validation_definitions.add(gx.ValidationDefinition(name=f"{name}_{i}", data=batch, suite=suite))
        result = run.run(batch_parameters={"dataframe": frame[columns]}, result_format=result_format)
        for r in result.results:
            outcome.evaluated += 1
            kw = r.expectation_config.kwargs
            cols = [kw[k] for k in ("column", "column_A", "column_B") if kw.get(k)] + list(kw.get("column_list") or [])
            label = f"{r.expectation_config.type}({','.join(cols) or '-'})"
            info = r.exception_info or {}
            raised = info.get("raised_exception") or any(
                isinstance(v, dict) and v.get("raised_exception") for v in info.values()
            )
            if raised:
                message = info.get("exception_message") or next(
                    (v.get("exception_message") for v in info.values() if isinstance(v, dict) and v.get("exception_message")), ""
                )
                outcome.errored.append(f"{label}: {message}")
                outcome.passed = False
            elif not r.success:
                outcome.failed.append(label)
                outcome.passed = False
                res = r.result or {}
                stats = {k: res[k] for k in ("element_count", "unexpected_count", "unexpected_percent") if k in res}
                if stats:
                    outcome.statistics[label] = stats
    return outcome
