"""Self-contained HTML reports (inline SVG charts: no plotting library, no external asset to fetch)."""

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
    """Horizontal bars (one per label) with an optional reference line (a threshold)."""
    if not bars:
        return ""
    values = [v for v in bars.values() if v is not None]
    top = max([*values, reference or 0.0, 1e-12])
    low = min([*values, reference or 0.0, 0.0])
    span = top - low or 1.0
    row, left = 22, 170
    plot = width - left - 70
    height = row * len(bars) + 30

    def x(v: float) -> float:
        return left + (v - low) / span * plot

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    parts.append(f'<text x="0" y="14" font-size="13" font-weight="600">{html.escape(title)}</text>')
    for i, (label, v) in enumerate(bars.items()):
        y = 24 + i * row
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(str(label))[:26]}</text>')
        if v is None:
            continue
        x0, x1 = sorted((x(0.0), x(v)))
        parts.append(
            f'<rect x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" height="{row - 8}" fill="#5b8def"/>'
        )
        parts.append(f'<text x="{x1 + 4:.1f}" y="{y + 14}" font-size="11">{fmt(v)}</text>')
    if reference is not None:
        xr = x(reference)
        parts.append(
            f'<line x1="{xr:.1f}" x2="{xr:.1f}" y1="20" y2="{height}" stroke="#cf222e" stroke-dasharray="4"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


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
    if d.get("expectations"):
        body.append("<h2>Behavioural expectations</h2>")
        body.append(
            bar_chart(
                "share of rows violating",
                {f"{e['feature']} {e['direction']}": e["violations"] for e in d["expectations"]},
            )
        )
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
