"""Self-contained HTML reports: tables and inline SVG charts (matplotlib), no external asset to fetch."""

from __future__ import annotations

import html
from typing import Any

from airflow_mlops.tables import fmt

_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0 20px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}th{background:#f3f3f3}
.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}.note{color:#666;font-size:13px}
h2{margin-top:28px}
"""


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


def _table(rows: list[dict[str, Any]]) -> str:
    out = ["<table><tr><th>test</th><th>expected</th><th>observed</th><th>result</th></tr>"]
    for r in rows:
        verdict = "PASS" if r["passed"] else "FAIL"
        kind = "" if r.get("gate", True) else " (promotion)"
        out.append(
            f"<tr><td>{html.escape(r['test'])}</td><td>{html.escape(r['expected'])}</td>"
            f"<td>{html.escape(str(r['observed']))}</td><td class='{verdict}'>{verdict}{kind}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def model_test_html(report: dict[str, Any], title: str) -> str:
    """The model test report: verdict, the table of tests, and a chart per kind of check."""
    d = report.get("details") or {}
    verdict = (
        "PASSED"
        if report["passed"]
        else ("FAILED, RELEASED BY OVERRIDE" if report.get("override") else "FAILED")
    )
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Verdict: <b>{verdict}</b>. {html.escape(report.get('reason', ''))}</p>",
    ]
    if report.get("override"):
        o = report["override"]
        body.append(f"<p class='FAIL'>Override by {html.escape(o['by'])}: {html.escape(o['reason'])}</p>")
    body += ["<h2>Tests</h2>", _table(report["tests"])]
    metrics = report.get("metrics") or {}
    champion = report.get("champion_metrics") or {}
    body.append("<h2>Metrics on the held-out rows</h2>")
    held = report.get("holdout")
    if held:
        body.append(
            f"<p>{html.escape(held['statement'])}. Full sha256 {html.escape(held['sha256'])}; window "
            f"{html.escape(str(held.get('window_start')))} .. {html.escape(str(held.get('window_end')))}, seed "
            f"{held['seed']}, fraction {held['fraction']}.</p>"
        )
    body.append(bar_chart("candidate", metrics))
    if champion:
        body.append(bar_chart(f"champion v{report.get('champion_version')}", champion))
    for s in d.get("slices", []):
        body.append(f"<h2>Slices by {html.escape(s['column'])}</h2>")
        body.append(bar_chart(f"{s['metric']} per segment", s["values"]))
        if s["skipped"]:
            body.append(
                f"<p class='note'>Too few rows to measure: {html.escape(', '.join(s['skipped']))}</p>"
            )
    for f in d.get("fairness", []):
        body.append(f"<h2>Fairness across {html.escape(f['group'])}: {html.escape(f['metric'])}</h2>")
        body.append(bar_chart(f"gap {fmt(f['gap'])} (max {fmt(f['max'])})", f["rates"]))
    if d.get("robustness"):
        body.append("<h2>Robustness</h2>")
        body.append(
            bar_chart(
                "metric drop under perturbation",
                {f"{r['perturbation']} {r['metric']}": r["drop"] for r in d["robustness"]},
            )
        )
    if d.get("importance"):
        imp = d["importance"]
        body.append("<h2>Permutation importance (what drift decisions weigh features by)</h2>")
        body.append(bar_chart(f"share of the {imp['metric']} drop when shuffled", imp["share"]))
    if d.get("expectations"):
        body.append("<h2>Behavioural expectations</h2>")
        body.append(
            bar_chart(
                "share of rows violating",
                {f"{e['feature']} {e['direction']}": e["violations"] for e in d["expectations"]},
            )
        )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
