"""Registry: idempotent registration, the audited override, racing promotions, rollback (library and CLI)."""

from __future__ import annotations

import json
import threading

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
def test_two_promotions_tested_against_the_same_champion_end_with_the_better_one(mlflow_uri, tmp_path, first):
    """Both candidates were tested against v1; whichever order the lock lets them through in, the better one
    ends as champion and the history stays clean."""
    c = registry.client()
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "v1"), tests=_tests(0.75))
    runs = {"better": _trained(c, tmp_path, "better"), "worse": _trained(c, tmp_path, "worse")}
    value = {"better": 0.85, "worse": 0.80}
    order = [first, "better" if first == "worse" else "worse"]
    results = {
        label: promotion.register_and_promote(
            c, name="reg", training=runs[label], tests=_tests(value[label], champion="1"), compare_metric="roc_auc"
        )
        for label in order
    }
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


def test_promotions_at_the_same_time_all_complete_with_one_champion(mlflow_uri, tmp_path):
    """Four threads promote at once through the lock: no error, every decision recorded, one champion."""
    c = registry.client()
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "base"), tests=_tests(0.70))
    runs = {f"c{i}": _trained(c, tmp_path, f"c{i}") for i in range(4)}
    start = threading.Barrier(len(runs))
    results, errors = {}, []

    def go(label: str, value: float) -> None:
        start.wait(30)
        try:
            results[label] = promotion.register_and_promote(
                registry.client(), name="reg", training=runs[label], tests=_tests(value, champion="1"),
                compare_metric="roc_auc",
            )  # fmt: skip
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(f"c{i}", 0.80 + i / 100)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert c.get_model_version_by_alias("reg", "champion").run_id == runs["c3"]["run_id"]  # the best
    assert all(json.loads(c.get_model_version("reg", r["version"]).tags["mlops.release_decision"]) for r in results.values())


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


def test_a_rerun_reproduces_the_recorded_decision_and_never_moves_the_champion(mlflow_uri, tmp_path):
    """Backfilling a window again must not re-decide against today's champion: v1's re-run, whose fresh tests
    would say "promote" against v2, changes no alias and no recorded previous champion."""
    c = registry.client()
    t1, t2 = _trained(c, tmp_path, "w1"), _trained(c, tmp_path, "w2")
    promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.75))
    promotion.register_and_promote(c, name="reg", training=t2, tests=_tests(0.80, champion="1"))
    assert _champion(c) == "2"
    before = {v.version: dict(v.tags) for v in c.search_model_versions("name = 'reg'")}

    again = promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.90, champion="2"))
    assert (again["version"], again["alias"], again["promoted"], again["reused"]) == ("1", "champion", True, True)
    assert again["reproduced"]  # when the decision was recorded
    assert _champion(c) == "2"
    assert {v.version: dict(v.tags) for v in c.search_model_versions("name = 'reg'")} == before
    assert c.get_model_version("reg", "2").tags["mlops.previous_champion"] == "1"  # a rollback still goes to v1


def test_a_deliberate_reevaluation_decides_again_and_is_audited(mlflow_uri, tmp_path):
    from airflow_mlops.release import decisions

    c = registry.client()
    t1, t2 = _trained(c, tmp_path, "r1"), _trained(c, tmp_path, "r2")
    promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.75))
    promotion.register_and_promote(c, name="reg", training=t2, tests=_tests(0.80, champion="1"))
    why = decisions.reevaluation("the holdout of window 1 was relabelled", "alice")
    result = promotion.register_and_promote(
        c, name="reg", training=t1, tests=_tests(0.90, champion="2", reevaluation=why)
    )
    assert (result["alias"], result["promoted"], result["reproduced"]) == ("champion", True, None)
    assert _champion(c) == "1"
    v1 = c.get_model_version("reg", "1")
    assert v1.tags[decisions.REEVALUATED_TAG].endswith("by alice: the holdout of window 1 was relabelled")
    assert json.loads(v1.tags[decisions.DECISION_TAG])["tested_against"] == "2"
    with pytest.raises(Exception, match="at least 10 characters"):
        decisions.reevaluation("because", "bob")


def test_a_recorded_test_report_is_reproduced_and_a_changed_one_refused(mlflow_uri, tmp_path):
    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.release import decisions, evaluation

    c = registry.client()
    t = _trained(c, tmp_path, "rep")
    assert decisions.recorded_report(c, t["run_id"]) is None  # never tested: no decision to reproduce
    report = {"passed": True, "promote": True, "reason": "ok", "metrics": {"roc_auc": 0.8}, "tests": []}
    evaluation.log_report(c, t["run_id"], report, "reg", None)
    assert decisions.recorded_report(c, t["run_id"]) == report
    c.log_text(t["run_id"], json.dumps({**report, "promote": False}), decisions.REPORT_PATH)
    with pytest.raises(IntegrityError, match="does not match its hash"):
        decisions.recorded_report(c, t["run_id"])


def test_a_recorded_failure_is_decided_again_only_by_an_override_or_a_reevaluation(mlflow_uri, tmp_path):
    from airflow_mlops.release import decisions, evaluation

    c = registry.client()
    t = _trained(c, tmp_path, "prior")
    assert decisions.prior_report(c, t["run_id"], reevaluate_reason=None, override_reason=None, by="x") == (None, None)
    failed = {"passed": False, "promote": False, "reason": "roc_auc too low", "metrics": {}, "tests": []}
    evaluation.log_report(c, t["run_id"], failed, "reg", None)
    recorded, again = decisions.prior_report(c, t["run_id"], reevaluate_reason=None, override_reason="", by="x")
    assert (recorded, again) == (failed, None)  # a plain re-run reproduces the failure
    recorded, again = decisions.prior_report(
        c, t["run_id"], reevaluate_reason=None, override_reason="known issue, accepted by risk", by="alice"
    )
    assert recorded is None
    assert (again["reason"], again["by"]) == ("override: known issue, accepted by risk", "alice")
    recorded, again = decisions.prior_report(
        c, t["run_id"], reevaluate_reason="labels were fixed upstream", override_reason=None, by="bob"
    )
    assert recorded is None
    assert again["reason"] == "labels were fixed upstream"


def test_every_version_has_a_model_card_kept_current_by_its_releases_and_rollbacks(mlflow_uri, tmp_path):
    """Registration writes the card (Markdown and JSON, with the training run); a promotion and a rollback
    write it again. Every field is what the registry holds, and the JSON follows the published schema."""
    import jsonschema
    import mlflow

    from airflow_mlops.release import card

    c = registry.client()
    c.create_registered_model("reg", description="Churn risk of a customer in the next 30 days.")
    t1 = _trained(c, tmp_path, "a")
    promotion.register_and_promote(c, name="reg", training=t1, tests=_tests(0.75))
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "b"), tests=_tests(0.8, champion="1"))
    promotion.rollback(c, "reg", reason="v2 doubles false positives in prod", by="bob")

    def stored(version: str) -> dict:
        v = c.get_model_version("reg", version)
        return json.loads(mlflow.artifacts.load_text(f"runs:/{v.run_id}/{card.CARD_JSON}"))

    one, two = stored("1"), stored("2")
    jsonschema.validate(one, json.loads((card.ROOT / "docs" / "model-card.schema.json").read_text()))
    v1 = c.get_model_version("reg", "1")
    assert (one["name"], one["version"], one["aliases"]) == ("reg", "1", ["champion"])  # after the rollback
    assert one["description"] == "Churn risk of a customer in the next 30 days."
    assert one["training"]["run_id"] == v1.run_id
    assert one["training"]["model_sha256"] == v1.tags[registry.MODEL_SHA_TAG]
    assert one["training_data"]["window_start"] == v1.tags["mlops.window_start"] == "2026-01-01"
    assert one["evaluation"]["metrics"] == json.loads(v1.tags["mlops.test_metrics"]) == {"roc_auc": 0.75}
    assert [e["event"] for e in one["release"]] == ["decision", "champion", "rollback"]
    assert "by bob: v2 doubles false positives in prod" in one["release"][-1]["detail"]
    assert two["aliases"] == []
    assert two["release"][-1]["detail"].startswith("rolled back from: ")
    page = mlflow.artifacts.load_text(f"runs:/{v1.run_id}/{card.CARD_MD}")
    assert page.startswith("# Model card: reg version 1\n\nChurn risk of a customer in the next 30 days.")
    assert "- **Aliases now:** champion" in page


def test_a_version_awaiting_approval_marks_its_model_until_approved(mlflow_uri, tmp_path):
    """The fleet index lists "awaiting approval" from a tag of the registered model: set by a release that
    waits for a person, removed by the approval."""
    c = registry.client()
    promotion.register_and_promote(c, name="reg", training=_trained(c, tmp_path, "a"), tests=_tests(0.75))
    promotion.register_and_promote(
        c, name="reg", training=_trained(c, tmp_path, "b"), tests=_tests(0.8, champion="1"), promotion_mode="approval"
    )
    assert c.get_registered_model("reg").tags.get(registry.AWAITING_TAG) == "2"
    promotion.promote_approved(
        c, "reg", "2", by="alice", at="2026-01-20T10:00:00+00:00", metric="roc_auc", tested_against="1", reason="ok"
    )
    assert registry.AWAITING_TAG not in c.get_registered_model("reg").tags
    assert _champion(c) == "2"
