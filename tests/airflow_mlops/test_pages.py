"""Every page is a template of airflow_mlops/templates with autoescape on: hostile names stay text."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ESCAPED, HOSTILE


def _clean(page: str, times: int = 1) -> None:
    """The hostile value shows as text, never as markup: no script element, no broken-out attribute."""
    assert "<script" not in page
    assert page.count(ESCAPED) >= times


def test_the_model_test_report_escapes_every_name():
    from airflow_mlops.release.reports import model_test_html

    report = {
        "passed": False, "reason": HOSTILE, "override": {"by": HOSTILE, "reason": HOSTILE},
        "tests": [{"test": HOSTILE, "expected": HOSTILE, "observed": HOSTILE, "passed": False}],
        "metrics": {"roc_auc": 0.8}, "holdout": {"statement": HOSTILE, "sha256": HOSTILE, "seed": 1, "fraction": 0.2},
        "details": {"slices": [{"column": HOSTILE, "metric": "roc_auc", "values": {HOSTILE: 0.7}, "skipped": [HOSTILE]}],
                    "fairness": [{"group": HOSTILE, "metric": HOSTILE, "gap": 0.1, "max": 0.2, "rates": {"a": 0.5}}]},
    }  # fmt: skip
    page = model_test_html(report, HOSTILE)
    _clean(page, times=12)  # title x2, reason, override x2, test x3, holdout x2, slice heading and note, fairness
    assert "<svg" in page  # the charts matplotlib drew are markup the project made: shown as they are
    assert "<td class=\"fail\">" not in page  # the verdict is a styled label in a styled row
    assert '<tr class="fail">' in page


def test_the_drift_report_escapes_every_name():
    from airflow_mlops.data.drift.report import render_html

    feature = {"feature": HOSTILE, "type": "numeric", "metric": "ks", "score": 0.5, "threshold": 0.1, "psi": 0.2,
               "importance": 0.3, "n_reference": 10, "n_current": 10, "status": "drift", "drifted": True}  # fmt: skip
    report = {
        "status": "drift", "features": [feature], "drifted_features": [HOSTILE], "drift_share": 1.0,
        "drift_share_threshold": 0.5, "reference_profile": HOSTILE, "current_profile": HOSTILE,
        "quality": [{"check": HOSTILE, "column": HOSTILE, "partition": "2026-01-01", "expected": "x", "observed": "y"}],
        "expectations": [{"column": HOSTILE, "check": "mean", "expected": "x", "observed": "y", "passed": False}],
    }  # fmt: skip
    page = render_html(report, b"\x89PNG", HOSTILE)
    _clean(page, times=9)  # title x2, summary, two profiles, the feature, quality x2, expectation
    assert "DRIFT" in page
    assert "data:image/png;base64,iVBORw==" in page


def test_the_validation_report_escapes_every_name():
    from airflow_mlops.data.validation import ValidationReport

    report = ValidationReport()
    report.add(HOSTILE, HOSTILE, HOSTILE, HOSTILE, passed=False)
    report.add("nulls", "age", "0", 0, passed=True)
    page = report.html(HOSTILE)
    _clean(page, times=2 + 2 * 4)  # title x2; the failed row in both tables, four hostile cells each
    assert page.count('<tr class="fail">') == 2
    assert page.count('<tr class="">') == 1  # the passing row, in the table of every check


def test_the_alert_mail_escapes_its_text():
    from airflow_mlops.pages import render

    _clean(render("alert_mail.html", title=HOSTILE, text=f"FAILED: column {HOSTILE}"), times=2)


def test_cells_links_and_tags_escape_their_text_and_targets():
    from airflow_mlops.pages import Group, Link, Tag, environment

    cell = environment().get_template("macros.html").module.cell
    page = str(cell(Group((Link(f"/x?{HOSTILE}", HOSTILE), Tag(HOSTILE, "badge"), HOSTILE), " · ")))
    _clean(page, times=4)
    assert str(cell(Link("https://mlflow.example/#/runs/1", "run"))).endswith('target="_blank" rel="noopener">run</a>')
    assert 'target="_blank"' not in str(cell(Link("/mlops/", "back")))


@pytest.mark.parametrize("template", sorted(p.name for p in (Path(__file__).parents[2] / "airflow_mlops" / "templates").glob("*.html")))
def test_every_page_extends_the_base_layout(template):
    """One layout and one style sheet: each page template extends base.html (the macros are not a page)."""
    source = (Path(__file__).parents[2] / "airflow_mlops" / "templates" / template).read_text()
    if template in ("base.html", "macros.html"):
        assert "{% extends" not in source
    else:
        assert source.startswith('{% extends "base.html" %}')
