"""OpenLineage from the operators: what a task read and wrote, as input and output datasets.

Each operator says, from its own result, which datasets it read and wrote (:meth:`LineageMixin.lineage`);
``execute`` hands its result to :meth:`LineageMixin.remember`, and this mixin turns those into OpenLineage datasets when the
OpenLineage provider asks (``get_openlineage_facets_on_complete``). Data partitions carry their content hash
as the dataset version and their row count; profiles, MLflow model artifacts and model versions, drift
reports and predictions follow, so lineage runs from a data partition to its profile, to the model trained
on it and to the registered version. Without ``apache-airflow-providers-openlineage`` nothing happens.
"""

from __future__ import annotations

from typing import Any

# {"uri": ..., "sha256"?, "rows"?, "version"?} for files; {"id": (namespace, name), "version"?} otherwise
Item = dict[str, Any]


class LineageMixin:
    """Adds OpenLineage reporting to an operator that implements :meth:`lineage`."""

    def lineage(self, result: Any) -> tuple[list[Item], list[Item]]:
        """(inputs, outputs) read and written, from the task's return value."""
        raise NotImplementedError

    def mlflow_namespace(self) -> str:
        from airflow_mlops.tracking.lineage import mlflow_namespace

        return mlflow_namespace(self.hook.tracking_uri)  # type: ignore[attr-defined]

    def remember(self, result: Any) -> Any:
        """Keep the task's result for lineage (call as ``return self.remember(result)``)."""
        self._lineage_result = result
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Called by the OpenLineage listener once the task succeeded: the datasets from its result."""
        from airflow.providers.openlineage.extractors import OperatorLineage

        result = getattr(self, "_lineage_result", None)
        if not result:
            return OperatorLineage()
        inputs, outputs = self.lineage(result)
        return OperatorLineage(
            inputs=[_dataset(item, output=False) for item in inputs],
            outputs=[_dataset(item, output=True) for item in outputs],
        )


def training_lineage(op: Any, result: dict[str, Any]) -> tuple[list[Item], list[Item]]:
    """A training task: the partitions it read (with their hashes when validated upstream) and the window's
    profile in, the MLflow model out."""
    from airflow_mlops.tracking.lineage import model_dataset

    validation = getattr(op, "validation", None) or {}
    validated = {f["uri"]: f for f in validation.get("inputs") or []}
    inputs = [validated.get(uri) or {"uri": uri} for uri in result.get("inputs") or list(validated)]
    if validation.get("profile_uri"):
        inputs.append({"uri": validation["profile_uri"], "version": validation.get("content_hash")})
    model = {**model_dataset(op.mlflow_namespace(), result["model_uri"]), "version": result["run_id"]}
    return inputs, [model]


def _dataset(item: Item, *, output: bool) -> Any:
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet

    from airflow_mlops.tracking.lineage import dataset_id

    namespace, name = item.get("id") or dataset_id(item["uri"])
    facets: dict[str, Any] = {}
    version = item.get("version") or item.get("sha256")
    if version:
        facets["version"] = DatasetVersionDatasetFacet(datasetVersion=str(version))
    rows = item.get("rows")
    if output:
        extra = {}
        if rows is not None:
            from openlineage.client.generated.output_statistics_output_dataset import (
                OutputStatisticsOutputDatasetFacet,
            )

            extra["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=int(rows))
        return OutputDataset(namespace=namespace, name=name, facets=facets, outputFacets=extra)
    extra = {}
    if rows is not None:
        from openlineage.client.generated.data_quality_metrics_input_dataset import (
            DataQualityMetricsInputDatasetFacet,
        )

        extra["dataQualityMetrics"] = DataQualityMetricsInputDatasetFacet(
            columnMetrics={}, rowCount=int(rows)
        )
    return InputDataset(namespace=namespace, name=name, facets=facets, inputFacets=extra)
