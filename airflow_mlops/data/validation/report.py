"""The validation report: one row per check (check, column, partition, expected, observed, offending rows,
result), its table (the first lines of a failed task's log), its page and the quality-gate error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_mlops.errors import DataValidationError
from airflow_mlops.tables import cut, fmt, format_table

HEADER = ("check", "column", "partition", "expected", "observed", "rows", "result")
WINDOW = "*"  # the partition column of a check over the whole window


def partition_label(uri: str) -> str:
    """The day a partition holds (the last ``YYYY-MM-DD`` in its URI), else its file name."""
    import re

    days = re.findall(r"\d{4}-\d{2}-\d{2}", uri)
    return days[-1] if days else uri.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class ValidationReport:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, check: str, column: str, expected: str, observed: Any, passed: bool, severity: str = "fail",
        *, partition: str = WINDOW, offending: int | None = None, kind: str = "contract",
    ) -> None:  # fmt: skip
        self.rows.append(
            {
                "check": check,
                "column": column,
                "partition": partition,
                "expected": cut(expected),
                "observed": cut(fmt(observed)),
                "rows": offending,
                "passed": passed,
                "severity": severity,
                "kind": kind,
            }
        )

    @property
    def failed(self) -> list[dict[str, Any]]:
        """Failed checks whose severity is ``fail``: these stop the pipeline."""
        return [r for r in self.rows if not r["passed"] and r.get("severity", "fail") == "fail"]

    @property
    def warnings(self) -> list[dict[str, Any]]:
        """Failed checks whose severity is ``warn``: logged and reported, the pipeline goes on."""
        return [r for r in self.rows if not r["passed"] and r.get("severity") == "warn"]

    @property
    def expectations(self) -> list[dict[str, Any]]:
        """Every distribution expectation (mean, quantile bounds), passed or not: the monitor hands these to
        the drift report instead of stopping on them."""
        return [r for r in self.rows if r.get("kind") == "expectation"]

    @property
    def passed(self) -> bool:
        return not self.failed

    def table(self, only_failed: bool = False) -> str:
        rows = self.failed if only_failed else self.rows
        return format_table(
            [
                (r["check"], r["column"], r.get("partition", WINDOW), r["expected"], r["observed"],
                 "" if r.get("rows") is None else r["rows"], _verdict(r))
                for r in rows
            ],
            HEADER,
        )  # fmt: skip

    def html(self, title: str) -> str:
        """The report as a page (``templates/validation_report.html``): failed checks first, then every check."""
        from airflow_mlops.pages import Row, render

        def rows(found: list[dict[str, Any]]) -> list[Row]:
            return [
                Row((r["check"], r["column"], r.get("partition", WINDOW), r["expected"], r["observed"],
                     "" if r.get("rows") is None else r["rows"], _verdict(r)), "" if r["passed"] else _verdict(r).lower())
                for r in found
            ]  # fmt: skip

        verdict = "passed" if self.passed else f"failed: {len(self.failed)} of {len(self.rows)} checks"
        return render(
            "validation_report.html", title=title, verdict=verdict, header=HEADER,
            failed=rows(self.failed + self.warnings), rows=rows(self.rows),
        )  # fmt: skip

    def raise_for_failures(self, what: str) -> None:
        if self.passed:
            return
        raise DataValidationError(
            f"data validation failed for {what}: {len(self.failed)} of {len(self.rows)} checks failed\n"
            f"{self.table(only_failed=True)}\n"
            "Fix the data upstream (or the spec's constraints if the data is right), then clear this task.",
            rows=self.failed,
        )


def _verdict(row: dict[str, Any]) -> str:
    if row["passed"]:
        return "PASS"
    return "WARN" if row.get("severity") == "warn" else "FAIL"
