"""Self-contained HTML reports: tables and inline SVG charts (matplotlib), no external asset to fetch; the page
itself is a template (``airflow_mlops/templates``)."""

from __future__ import annotations

from typing import Any

from airflow_mlops.tables import fmt


def bar_chart(title: str, bars: dict[str, float], *, reference: float | None = None, width: int = 560) -> str:
    """Horizontal bars (one per label) with an optional reference line (a threshold), as inline SVG.

    Drawn with matplotlib, like the drift report's charts: one charting method. The SVG is embedded in the
    page, so the report stays one self-contained file with nothing to fetch.
    """
    if not bars:
        return ""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(label)[:26] for label in bars]
    values = [0.0 if v is None else float(v) for v in bars.values()]
    fig, ax = plt.subplots(figsize=(width / 96, 0.3 * len(bars) + 0.8), dpi=96)
    try:
        positions = range(len(labels))[::-1]
        ax.barh(list(positions), values, color="#5b8def", height=0.6)
        ax.set_yticks(list(positions), labels, fontsize=8)
        for y, (v, raw) in zip(positions, zip(values, bars.values(), strict=True), strict=True):
            if raw is not None:
                ax.annotate(fmt(raw), (v, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
        if reference is not None:
            ax.axvline(reference, color="#cf222e", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9, loc="left", fontweight="bold")
        ax.tick_params(axis="x", labelsize=7)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg")
    finally:
        plt.close(fig)
    svg = out.getvalue()
    return svg[svg.index("<svg") :]


def model_test_html(report: dict[str, Any], title: str) -> str:
    """The model test report (``templates/model_test.html``): verdict, the table of tests, a chart per kind of
    check."""
    from airflow_mlops.pages import Row, Tag, render, trusted

    d = report.get("details") or {}
    verdict = (
        "PASSED"
        if report["passed"]
        else ("FAILED, RELEASED BY OVERRIDE" if report.get("override") else "FAILED")
    )
    tests = []
    for r in report["tests"]:
        result = "PASS" if r["passed"] else "FAIL"
        kind = "" if r.get("gate", True) else " (promotion)"
        cls = result.lower()
        tests.append(Row((r["test"], r["expected"], str(r["observed"]), Tag(result + kind, cls)), cls))
    sections: list[dict[str, Any]] = []

    def chart(heading: str | None, *args: Any, note: str = "") -> None:
        sections.append({"heading": heading, "chart": trusted(bar_chart(*args)), "note": note})

    champion = report.get("champion_metrics") or {}
    chart(None, "candidate", report.get("metrics") or {})
    if champion:
        chart(None, f"champion v{report.get('champion_version')}", champion)
    for s in d.get("slices", []):
        skipped = f"Too few rows to measure: {', '.join(s['skipped'])}" if s["skipped"] else ""
        chart(f"Slices by {s['column']}", f"{s['metric']} per segment", s["values"], note=skipped)
    for f in d.get("fairness", []):
        chart(f"Fairness across {f['group']}: {f['metric']}", f"gap {fmt(f['gap'])} (max {fmt(f['max'])})", f["rates"])
    if d.get("robustness"):
        drops = {f"{r['perturbation']} {r['metric']}": r["drop"] for r in d["robustness"]}
        chart("Robustness", "metric drop under perturbation", drops)
    if d.get("importance"):
        imp = d["importance"]
        chart(
            "Permutation importance (what drift decisions weigh features by)",
            f"share of the {imp['metric']} drop when shuffled", imp["share"],
        )  # fmt: skip
    if d.get("expectations"):
        violations = {f"{e['feature']} {e['direction']}": e["violations"] for e in d["expectations"]}
        chart("Behavioural expectations", "share of rows violating", violations)
    return render(
        "model_test.html", title=title, verdict=verdict, report=report, tests=tests,
        holdout=report.get("holdout"), sections=sections,
    )  # fmt: skip
