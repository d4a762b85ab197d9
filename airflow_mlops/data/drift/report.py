"""The drift report people look at: an HTML page with the per-feature table and a PNG of the most drifted
features (reference vs current distributions), drawn from the two profiles' sketches."""

from __future__ import annotations

import base64
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
    """The drift report page (``templates/drift_report.html``): the verdict, the chart of the most drifted
    features, the per-feature table, and the data-quality and expectation sections."""
    from airflow_mlops.data.drift.scores import summary_line
    from airflow_mlops.pages import Row, render

    features = []
    for r in report["features"]:
        status = r["status"].upper() if r.get("drifted") else r["status"]
        weight = "-" if r.get("importance") is None else f"{r['importance'] * 100:.1f}%"
        cells = (
            r["feature"], r["type"], r.get("metric") or "-", fmt(r.get("score")), fmt(r.get("threshold")),
            fmt(r.get("psi")), weight, r["n_reference"], r["n_current"], status,
        )  # fmt: skip
        features.append(Row(cells, "fail" if r.get("drifted") else ""))
    quality = None
    if "quality" in report:  # data quality, the second verdict: the partition against its own history
        quality = [
            Row((r["check"], r["column"], r["partition"], r["expected"], r["observed"]), "fail")
            for r in report["quality"]
        ]
    # the data contract's distribution expectations on the current data: reported here, not a gate
    expectations = [
        Row((r["column"], r["check"], r["expected"], r["observed"], "held" if r.get("passed") else "broken"),
            "" if r.get("passed") else "fail")
        for r in report.get("expectations") or []
    ]  # fmt: skip
    return render(
        "drift_report.html", title=title, report=report, summary=summary_line(report), features=features,
        png=base64.b64encode(png).decode() if png else None, quality=quality, expectations=expectations,
    )  # fmt: skip
