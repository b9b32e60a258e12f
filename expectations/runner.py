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


def _columns_of(expectation) -> list[str]:
    cols = []
    for attr in ("column", "column_A", "column_B"):
        v = getattr(expectation, attr, None)
        if v:
            cols.append(v)
    cols.extend(getattr(expectation, "column_list", None) or [])
    return cols


def columns_needed(expectations) -> list[str]:
    return sorted({c for e in expectations for c in _columns_of(e)})


def run_suite(name: str, expectations, frame, sensitive_columns: set[str]) -> SuiteOutcome:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = context.data_sources.add_pandas("frames").add_dataframe_asset(name).add_batch_definition_whole_dataframe("all")
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    outcome = SuiteOutcome(passed=True, evaluated=0)
    sensitive = [e for e in expectations if set(_columns_of(e)) & sensitive_columns]
    plain = [e for e in expectations if e not in sensitive]
    for group, result_format in ((plain, "BASIC"), (sensitive, "BOOLEAN_ONLY")):
        if not group:
            continue
        suite = gx.ExpectationSuite(name=f"{name}_{result_format.lower()}", expectations=[e.copy() for e in group])
        result = batch.validate(suite, result_format=result_format)
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
                if result_format == "BASIC":
                    res = r.result or {}
                    outcome.statistics[label] = {
                        k: res[k] for k in ("element_count", "unexpected_count", "unexpected_percent") if k in res
                    }
    return outcome
