"""The model card's published JSON Schema is the one the code writes cards by."""

from __future__ import annotations

import json

from airflow_mlops.release import card


def test_the_published_model_card_schema_matches_the_code():
    committed = json.loads((card.ROOT / "docs" / "model-card.schema.json").read_text())
    assert committed == card.schema(), "stale: run `airflow-mlops model-card --schema > docs/model-card.schema.json`"
