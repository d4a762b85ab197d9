"""RegisterModelOperator: an MLflow model version with lineage; ``champion`` when the tests allow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlops.hooks.mlflow import MlflowHook, MlflowMixin
from airflow_mlops.links.mlflow import MODEL_VERSION, VERSION_URL_KEY
from airflow_mlops.utils.alerts import Alerting
from airflow_mlops.utils.context import NamedOutputs, airflow_ids
from airflow_mlops.utils.lineage import LineageMixin

if TYPE_CHECKING:
    from airflow.sdk import Context


class RegisterModelOperator(MlflowMixin, LineageMixin, NamedOutputs, Alerting):
    """Register the trained model as a version of ``model_name`` and set its alias.

    Idempotent: the run's idempotency key finds a version it already registered. The version carries the
    lineage tags of its run (inputs and their hashes, profile, params hash, code version, Airflow ids) and
    the test verdict. With ``promotion_mode="auto"`` a version that the tests say to promote becomes
    ``champion`` (the previous champion is recorded on it for rollback); otherwise it becomes ``challenger``.

    :param model_name: registered model name.
    :param training: the :class:`TrainModelOperator` result (templated).
    :param tests: the :class:`ModelTestOperator` result (templated).
    :param promotion_mode: ``auto``, ``manual`` or ``approval`` (then :class:`ReleaseApprovalOperator` and
        :class:`PromoteModelOperator` follow).
    :param compare_metric: the metric that settles two promotions racing each other.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("model_name", "training", "tests")
    template_fields_renderers: ClassVar[dict[str, str]] = {"training": "json", "tests": "json"}
    operator_extra_links = (MODEL_VERSION,)
    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        model_name: str,
        training: dict[str, Any],
        tests: dict[str, Any],
        promotion_mode: str = "auto",
        compare_metric: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.training = training
        self.tests = tests
        self.promotion_mode = promotion_mode
        self.compare_metric = compare_metric
        self.mlflow_conn_id = mlflow_conn_id

    def lineage(self, result: dict[str, Any]) -> tuple[list[dict], list[dict]]:
        from airflow_mlops.tracking.lineage import model_dataset, version_dataset

        ns = self.mlflow_namespace()
        trained = {**model_dataset(ns, self.training["model_uri"]), "version": self.training["run_id"]}
        return [trained], [version_dataset(ns, self.model_name, result["version"])]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.release.promotion import register_and_promote
        from airflow_mlops.tracking.registry import version_url

        with self.hook.configured() as client:
            result = register_and_promote(
                client, name=self.model_name, training=self.training, tests=self.tests,
                promotion_mode=self.promotion_mode, airflow=airflow_ids(context), compare_metric=self.compare_metric,
            )  # fmt: skip
        url = version_url(self.hook.ui_url, self.model_name, result["version"])
        context["ti"].xcom_push(key=VERSION_URL_KEY, value=url)
        self.log.info(
            "%s version %s (%s): alias %s; %s%s",
            self.model_name, result["version"], "reused" if result["reused"] else "new", result["alias"],
            result["reason"], f"\n{url}" if url else "",
        )  # fmt: skip
        if not result.get("reproduced") and not result.get("reused"):
            event = "model_promoted" if result.get("promoted") else "model_rejected"
            if result.get("promoted") or not result.get("awaiting_approval"):
                self.alert(
                    context, event,
                    f"{self.model_name} v{result['version']}: "
                    + (f"now {result['alias']} (previous champion v{result.get('previous_champion')})" if result.get("promoted") else f"not promoted (alias {result['alias']})")
                    + f"\nwhy: {result['reason']}",
                    {"model version": url},
                )  # fmt: skip
        return self.remember(result)


class PromoteModelOperator(MlflowMixin, NamedOutputs, Alerting):
    """Promote a registered version to ``champion`` after a person approved it (the approval path).

    :param model_name: registered model name.
    :param registration: the :class:`RegisterModelOperator` result (templated).
    :param tests: the model test result (templated): which champion the version was tested against.
    :param approval: the approval task's result (templated): who approved and when.
    :param compare_metric: the metric that settles two promotions racing each other.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("model_name", "registration", "tests", "approval")
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "registration": "json",
        "tests": "json",
        "approval": "json",
    }
    operator_extra_links = (MODEL_VERSION,)
    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        model_name: str,
        registration: dict[str, Any],
        tests: dict[str, Any],
        approval: dict[str, Any] | None = None,
        compare_metric: str = "roc_auc",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.registration = registration
        self.tests = tests
        self.approval = approval
        self.compare_metric = compare_metric
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.release.promotion import promote_approved
        from airflow_mlops.tracking.registry import version_url

        version = self.registration["version"]
        approval = self.approval or {}
        user = approval.get("responded_by_user") or {}
        by = user.get("name") or user.get("id") or "unknown"
        with self.hook.configured() as client:
            result = promote_approved(
                client, self.model_name, version, by=by, at=str(approval.get("responded_at", "")),
                metric=self.compare_metric, tested_against=self.tests.get("champion_version"),
                reason=self.tests.get("reason", ""), airflow=airflow_ids(context),
            )  # fmt: skip
        context["ti"].xcom_push(
            key=VERSION_URL_KEY, value=version_url(self.hook.ui_url, self.model_name, version)
        )
        self.log.info(
            "%s version %s approved by %s: %s (previous champion %s)%s",
            self.model_name, version, result["approved_by"],
            "now champion" if result["promoted"] else "not promoted, a better version is champion",
            result["previous_champion"], " (reproduced: decided before)" if result["reproduced"] else "",
        )  # fmt: skip
        if not result["reproduced"]:
            self.alert(
                context, "model_promoted" if result["promoted"] else "model_rejected",
                f"{self.model_name} v{version} approved by {result['approved_by']}: "
                + ("now champion" if result["promoted"] else "not promoted, a better version is champion"),
                {"model version": version_url(self.hook.ui_url, self.model_name, version)},
            )  # fmt: skip
        return result


class RollbackOperator(MlflowMixin, NamedOutputs, Alerting):
    """Move ``champion`` back to the previous version (or ``to_version``), recording who and why.

    :param model_name: registered model name.
    :param reason: why (templated; required, at least 10 characters).
    :param to_version: the version to return to; default the one the current champion replaced (templated).
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("model_name", "reason", "to_version")
    operator_extra_links = (MODEL_VERSION,)
    ui_color = "#fde8e8"

    def __init__(
        self,
        *,
        model_name: str,
        reason: str,
        to_version: str | None = None,
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.reason = reason
        self.to_version = to_version
        self.mlflow_conn_id = mlflow_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_mlops.errors import MlopsError
        from airflow_mlops.release.promotion import rollback
        from airflow_mlops.tracking.registry import version_url

        dag_run = context.get("dag_run")
        by = getattr(dag_run, "triggering_user_name", None) or f"dag run {context['ti'].run_id}"
        to_version = str(self.to_version).strip() if self.to_version not in (None, "", "None") else None
        try:
            with self.hook.configured() as client:
                result = rollback(
                    client, self.model_name, reason=self.reason or "", by=by, to_version=to_version
                )
        except (ValueError, MlopsError) as err:
            raise AirflowFailException(str(err)) from err
        url = version_url(self.hook.ui_url, self.model_name, result["to_version"])
        context["ti"].xcom_push(key=VERSION_URL_KEY, value=url)
        self.log.warning(
            "rolled back %s: champion v%s -> v%s by %s: %s",
            self.model_name, result["from_version"], result["to_version"], by, result["reason"],
        )  # fmt: skip
        self.alert(
            context, "model_rolled_back",
            f"{self.model_name}: champion v{result['from_version']} -> v{result['to_version']} by {by}\nwhy: {result['reason']}",
            {"model version": url},
        )  # fmt: skip
        return result
