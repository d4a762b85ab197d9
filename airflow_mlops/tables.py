"""Plain-text tables for task logs: on-call reads these first."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: object) -> str:
    """Format a number for a table: short, but never hiding the digits that decide a check."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"
    return str(value)


CUT_AT = 80


def cut(value: object, limit: int = CUT_AT) -> str:
    """A value as a log line or a table cell shows it: whole up to ``limit`` characters, else its start and how
    long it was (one row's 10,000-character value must not become a 10,000-character log line)."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
