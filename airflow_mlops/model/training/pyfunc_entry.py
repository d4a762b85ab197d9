"""MLflow "model from code": how ``mlflow.pyfunc.load_model`` serves an airflow-mlops model.

MLflow stores this file as code, not as a pickle; loading it runs ``load_context``, which verifies the
hashes in ``model.json`` before reading the safetensors weights.
"""

from __future__ import annotations

import mlflow  # noqa: TID253 - only ever executed by MLflow when it loads a model
from mlflow.pyfunc import PythonModel  # noqa: TID253


class AirflowMlopsModel(PythonModel):
    def load_context(self, context):
        from airflow_mlops.model.artifacts import load_model

        self.model = load_model(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        return self.model.predict(model_input)


mlflow.models.set_model(AirflowMlopsModel())
