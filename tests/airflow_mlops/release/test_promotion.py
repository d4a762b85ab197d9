"""Registry: idempotent registration, the audited override, racing promotions, rollback (library and CLI)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from airflow_mlops.release import promotion
from airflow_mlops.tracking import registry

pytestmark = pytest.mark.slow  # races promotions through a real MLflow registry


def _trained(c, tmp_path, key: str) -> dict:
    """A finished MLflow run holding a (small) model artifact, as a training task leaves it."""
    exp = registry.ensure_experiment(c, "airflow-mlops/reg", (tmp_path / "artifacts").as_uri())
    run = c.create_run(exp, tags={registry.RUN_KEY_TAG: key, "mlops.window_start": "2026-01-01"})
    model = tmp_path / key
    model.mkdir()
    (model / "model.json").write_text("{}")
    c.log_artifacts(run.info.run_id, str(model), "model")
    c.set_terminated(run.info.run_id)
    return {
        "run_id": run.info.run_id,
        "model_uri": f"runs:/{run.info.run_id}/model",
        "model_sha256": "0" * 64,
        "run_key": key,
    }


def _tests(value: float, *, promote: bool = True, champion: str | None = None, **extra) -> dict:
    return {
        "passed": True, "promote": promote, "reason": f"roc_auc {value}", "metrics": {"roc_auc": value},
        "champion_version": champion, "tests": [], **extra,
    }  # fmt: skip


def _champion(c, name="reg"):
    v = registry.get_alias(c, name, registry.CHAMPION)
    return str(v.version) if v is not None else None


def test_registration_is_idempotent_and_records_the_override(mlflow_uri, tmp_path):
    c = registry.client()
    t1 = _trained(c, tmp_path, "k1")
    first = promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.8))
    again = promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.8))
    assert (first["version"], first["alias"], again["version"], again["reused"]) == (
        "1",
        "champion",
        "1",
        True,
    )
    assert len(c.search_model_versions("name = 'reg'")) == 1

    override = {
        "reason": "segment c is a known data issue, accepted by risk",
        "by": "alice",
        "failed_tests": ["x"],
    }
    failed = {**_tests(0.85, champion="1"), "passed": False, "override": override}
    result = promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "k2"), tests=failed)
    v = c.get_model_version("reg", result["version"])
    assert v.tags["mlops.override_reason"] == override["reason"]
    assert v.tags["mlops.override_by"] == "alice"
    assert v.tags["mlops.tests"] == "failed, released by override"
    assert "released by override (alice" in v.description
    assert result["alias"] == "champion"


@pytest.mark.parametrize("first", ["worse", "better"])
def test_two_promotions_racing_end_with_the_better_model_as_champion(
    mlflow_uri, tmp_path, monkeypatch, first
):
    c = registry.client()
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "v1"), tests=_tests(0.75))
    runs = {"better": _trained(c, tmp_path, "better"), "worse": _trained(c, tmp_path, "worse")}

    # Both promotions read the champion (v1) before either writes: the race the registry must survive.
    # Then ``first`` goes on at once and the other a moment later, so both orders are exercised.
    barrier = threading.Barrier(2)
    real = registry.get_alias
    first_read: set[int] = set()
    labels: dict[int, str] = {}

    def racing_get_alias(client, name, alias):
        value = real(client, name, alias)
        me = threading.get_ident()
        if alias == registry.CHAMPION and me not in first_read:
            first_read.add(me)
            barrier.wait(timeout=30)
            if labels[me] != first:
                time.sleep(0.3)
        return value

    monkeypatch.setattr(registry, "get_alias", racing_get_alias)
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def promote(label, value):
        labels[threading.get_ident()] = label
        try:
            results[label] = promotion.register_and_promote(
                registry.client(), name="reg", training=runs[label], tests=_tests(value, champion="1"),
                compare_metric="roc_auc",
            )  # fmt: skip
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=promote, args=a) for a in (("worse", 0.80), ("better", 0.85))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(first_read) == 2  # both promotions went through the racing read: the race did happen
    assert not errors, errors
    champion = c.get_model_version_by_alias("reg", "champion")
    assert champion.run_id == runs["better"]["run_id"]
    assert results["better"]["promoted"]
    worse = c.get_model_version("reg", results["worse"]["version"])
    if first == "worse":  # promoted over v1, then replaced by the better one: a clean, recorded history
        assert results["better"]["previous_champion"] == str(worse.version)
        assert champion.tags["mlops.previous_champion"] == str(worse.version)
    else:  # found the better one already champion: stays challenger, and says why
        assert not results["worse"]["promoted"]
        assert results["worse"]["alias"] == "challenger"
        assert "became champion meanwhile" in worse.tags["mlops.promotion_decision"]
        assert champion.tags["mlops.previous_champion"] == "1"
    assert not [m for m in c.search_registered_models() if m.name.endswith(promotion.LOCK_SUFFIX)]


def test_rollback_moves_champion_back_and_records_who_and_why(mlflow_uri, tmp_path, capsys):
    c = registry.client()
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "a"), tests=_tests(0.75))
    t2 = _trained(c, tmp_path, "b")
    promotion.register_and_promote(c, name="reg", training=t2, tests=_tests(0.8, champion="1"))
    assert _champion(c) == "2"

    with pytest.raises(ValueError, match="reason of at least 10 characters"):
        promotion.rollback(c, "reg", reason="bad", by="bob")
    assert _champion(c) == "2"

    from airflow_mlops.tools.cli import main

    assert (
        main(["rollback", "--model", "reg", "--reason", "v2 doubles false positives in prod", "--by", "bob"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (out["from_version"], out["to_version"], out["by"]) == ("2", "1", "bob")
    assert _champion(c) == "1"
    assert (
        "by bob: v2 doubles false positives in prod"
        in c.get_model_version("reg", "2").tags["mlops.rolled_back"]
    )
    assert c.get_model_version("reg", "1").tags["mlops.rollback_from"] == "2"

    # v1 replaced nobody: a second rollback has nowhere to go and says how to choose
    assert main(["rollback", "--model", "reg", "--reason", "try again without a target"]) == 2
    assert "--to-version" in capsys.readouterr().err

    # re-running v2's interval does not bring the rolled-back version back by itself
    again = promotion.register_and_promote(c, name="reg", training=t2, tests=_tests(0.8, champion="1"))
    assert (again["version"], again["reused"], again["promoted"]) == ("2", True, False)
    assert "rolled back earlier" in again["reason"]
    assert _champion(c) == "1"
    assert len(c.search_model_versions("name = 'reg'")) == 2
