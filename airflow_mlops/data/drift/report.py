"""The drift report people look at: an HTML page with the per-feature table and a PNG of the most drifted
features (reference vs current distributions), drawn from the two profiles' sketches."""

from __future__ import annotations

import base64
import html
import math
from typing import Any

from airflow_mlops.tables import fmt

TOP = 4


def _ranked(report: dict[str, Any]) -> list[dict[str, Any]]:
    scored = [r for r in report["features"] if r.get("score") is not None and r.get("threshold")]
    return sorted(scored, key=lambda r: -r["score"] / r["threshold"])[:TOP]


def render_png(reference: Any, current: Any, report: dict[str, Any]) -> bytes | None:
    """Reference vs current for the ``TOP`` features with the largest score relative to their threshold:
    the two CDFs (from the KLL sketches) for a numeric feature, the category shares for a categorical one."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from airflow_mlops.data.drift.scores import categorical_scores, frequent_items

    rows = _ranked(report)
    if not rows:
        return None
    fig, axes = plt.subplots(1, len(rows), figsize=(4.2 * len(rows), 3.4), squeeze=False)
    for ax, row in zip(axes[0], rows, strict=True):
        name = row["feature"]
        verdict = "DRIFT" if row["drifted"] else "ok"
        ax.set_title(
            f"{name}: {row['metric']} {row['score']:.3f} (thr {row['threshold']:.3f}) {verdict}", fontsize=9
        )
        if row["metric"] == "ks":
            for view, label, style in ((reference, "reference", "-"), (current, "current", "--")):
                kll = view.get_column(name).get_metric("distribution").kll.value
                grid = [i / 100 for i in range(1, 100)]
                xs = [x for x in kll.get_quantiles(grid)]
                pairs = [(x, q) for x, q in zip(xs, grid, strict=True) if math.isfinite(x)]
                ax.plot([p[0] for p in pairs], [p[1] for p in pairs], style, label=label)
            ax.set_ylabel("cumulative share")
        else:
            ref_i, cur_i = frequent_items(reference, name), frequent_items(current, name)
            _, _, _, table = categorical_scores(ref_i, cur_i)
            keys = sorted(table, key=lambda k: -(table[k][0] + table[k][1]))[:10]
            rt = sum(a for a, _ in table.values()) or 1.0
            ct = sum(b for _, b in table.values()) or 1.0
            pos = range(len(keys))
            ax.bar([p - 0.2 for p in pos], [table[k][0] / rt for k in keys], width=0.4, label="reference")
            ax.bar([p + 0.2 for p in pos], [table[k][1] / ct for k in keys], width=0.4, label="current")
            ax.set_xticks(list(pos), [str(k)[:12] for k in keys], rotation=45, ha="right", fontsize=7)
            ax.set_ylabel("share of rows")
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    plt.close(fig)
    return out.getvalue()


def render_html(report: dict[str, Any], png: bytes | None, title: str) -> str:
    from airflow_mlops.data.drift.scores import summary_line

    rows = []
    for r in report["features"]:
        status = r["status"].upper() if r.get("drifted") else r["status"]
        cls = "FAIL" if r.get("drifted") else ""
        weight = "-" if r.get("importance") is None else f"{r['importance'] * 100:.1f}%"
        rows.append(
            f"<tr class='{cls}'><td>{html.escape(r['feature'])}</td><td>{r['type']}</td><td>{r.get('metric') or '-'}</td>"
            f"<td>{fmt(r.get('score'))}</td><td>{fmt(r.get('threshold'))}</td><td>{fmt(r.get('psi'))}</td>"
            f"<td>{weight}</td>"
            f"<td>{r['n_reference']}</td><td>{r['n_current']}</td><td>{html.escape(status)}</td></tr>"
        )
    image = (
        f"<img alt='reference vs current, most drifted features' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        if png
        else "<p>No feature could be scored.</p>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:system-ui,sans-serif;margin:24px}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:3px 8px;font-size:14px}th{background:#f3f3f3}tr.FAIL td{color:#cf222e;font-weight:600}img{max-width:100%}"
        f"</style></head><body><h1>{html.escape(title)}</h1><p><b>{html.escape(summary_line(report))}</b></p>"
        f"<p>Reference: {html.escape(str(report.get('reference_profile', '')))}<br>"
        f"Current: {html.escape(str(report.get('current_profile', '')))}</p>{image}"
        "<h2>Per feature (sorted by score / threshold)</h2><table><tr><th>feature</th><th>type</th><th>metric</th>"
        "<th>score</th><th>threshold</th><th>psi</th><th>importance</th><th>n reference</th><th>n current</th><th>status</th></tr>"
        f"{''.join(rows)}</table>{_quality_html(report)}{_expectations_html(report.get('expectations') or [])}</body></html>"
    )


def _quality_html(report: dict[str, Any]) -> str:
    """Data quality, the second verdict: the partition against its own history, whatever the importance."""
    if "quality" not in report:
        return ""
    rows = report["quality"]
    if not rows:
        return "<h2>Data quality (against the partition's history)</h2><p>ok: every check passed</p>"
    cells = "".join(
        f"<tr class='FAIL'><td>{html.escape(str(r['check']))}</td><td>{html.escape(str(r['column']))}</td>"
        f"<td>{html.escape(str(r['partition']))}</td><td>{html.escape(str(r['expected']))}</td>"
        f"<td>{html.escape(str(r['observed']))}</td></tr>"
        for r in rows
    )
    return (
        f"<h2>Data quality (against the partition's history): {len(rows)} anomaly(ies)</h2><table><tr>"
        f"<th>check</th><th>column</th><th>day</th><th>expected</th><th>observed</th></tr>{cells}</table>"
    )


def _expectations_html(rows: list[dict[str, Any]]) -> str:
    """The data contract's distribution expectations on the current data: reported here, not a gate."""
    if not rows:
        return ""
    cells = "".join(
        f"<tr class='{'' if r.get('passed') else 'FAIL'}'><td>{html.escape(str(r['column']))}</td>"
        f"<td>{html.escape(str(r['check']))}</td><td>{html.escape(str(r['expected']))}</td>"
        f"<td>{html.escape(str(r['observed']))}</td><td>{'held' if r.get('passed') else 'broken'}</td></tr>"
        for r in rows
    )
    return (
        "<h2>Distribution expectations (the spec's mean and quantile bounds)</h2><table><tr><th>column</th>"
        f"<th>check</th><th>expected</th><th>observed</th><th>result</th></tr>{cells}</table>"
    )
