"""Program output quoted in README.md and docs/: check it, or write it again from a real run's record.

    .venv/bin/python scripts/doc_excerpts.py --check                       # exit 1 when an excerpt is stale
    .venv/bin/python scripts/doc_excerpts.py --update --record .demo/summary.json   # after `make demo`

An excerpt is the fenced block right after a ``<!-- excerpt: NAME -->`` line. ``demo-summary`` is rendered by
today's code from ``docs/examples/demo-summary.json``, the record ``make demo`` writes as ``.demo/summary.json``
(``--record`` copies a new one there first). tests/test_docs.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "examples" / "demo-summary.json"


def _rendered() -> dict[str, str]:
    from airflow_mlops.tools.quickstart import render_summary

    return {"demo-summary": render_summary(json.loads(RECORD.read_text()))}


def _files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def run(update: bool) -> list[str]:
    stale = []
    for name, text in _rendered().items():
        pattern = re.compile(rf"(<!-- excerpt: {re.escape(name)} -->\n```[a-z]*\n)(.*?)(\n```)", re.S)
        for path in _files():
            old = path.read_text()
            new = pattern.sub(lambda m, text=text: m.group(1) + text + m.group(3), old)
            if new != old:
                stale.append(f"{path.relative_to(ROOT)}: excerpt {name!r} differs from the program's output")
                if update:
                    path.write_text(new)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true")
    action.add_argument("--update", action="store_true")
    parser.add_argument("--record", type=Path, help="a new record of a real demo run (.demo/summary.json)")
    args = parser.parse_args(argv)
    if args.record:
        if not args.update:
            parser.error("--record goes with --update")
        RECORD.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.record, RECORD)
    stale = run(update=args.update)
    for line in stale:
        print(("updated " if args.update else "stale: ") + line)
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
