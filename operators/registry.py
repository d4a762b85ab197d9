"""RegisterModelOperator: an MLflow model version with lineage; ``champion`` when the tests allow."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_mlops.operators._common import airflow_ids
from airflow_mlops.operators.hooks import MlflowHook
from airflow_mlops.operators.links import VERSION_URL_KEY, ModelVersionLink

if TYPE_CHECKING:
    from airflow.sdk import Context


class RegisterModelOperator(BaseOperator):
    """Register the trained model as a version of ``model_name`` and set its alias.

    Idempotent: the run's idempotency key finds a version it already registered. The version carries the
    lineage tags of its run (inputs and their hashes, profile, params hash, code version, Airflow ids) and
    the test verdict. With ``promotion_mode="auto"`` a version that the tests say to promote becomes
    ``champion`` (the previous champion is recorded on it for rollback); otherwise it becomes ``challenger``.

    :param model_name: registered model name.
    :param training: the :class:`TrainModelOperator` result (templated).
    :param tests: the :class:`ModelTestOperator` result (templated).
    :param promotion_mode: ``auto`` or ``manual``.
    :param mlflow_conn_id: MLflow connection.
    """

    template_fields: Sequence[str] = ("model_name", "training", "tests")
    operator_extra_links = (ModelVersionLink(),)
    ui_color = "#f3e8fd"

    def __init__(
        self,
        *,
        model_name: str,
        training: dict[str, Any],
        tests: dict[str, Any],
        promotion_mode: str = "auto",
        mlflow_conn_id: str = MlflowHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.training = training
        self.tests = tests
        self.promotion_mode = promotion_mode
        self.mlflow_conn_id = mlflow_conn_id

    @cached_property
    def hook(self) -> MlflowHook:
        return MlflowHook(mlflow_conn_id=self.mlflow_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlops.registry import register_and_promote, version_url

        with self.hook.configured() as client:
            result = register_and_promote(
                client, name=self.model_name, training=self.training, tests=self.tests,
                promotion_mode=self.promotion_mode, airflow=airflow_ids(context),
            )  # fmt: skip
        url = version_url(self.hook.ui_url, self.model_name, result["version"])
        context["ti"].xcom_push(key=VERSION_URL_KEY, value=url)
        self.log.info(
            "%s version %s (%s): alias %s; %s%s",
            self.model_name, result["version"], "reused" if result["reused"] else "new", result["alias"],
            result["reason"], f"\n{url}" if url else "",
        )  # fmt: skip
        return result
