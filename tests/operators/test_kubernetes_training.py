"""Training in a pod, tested at the request level: no Kubernetes API server can run here."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from airflow_mlops.operators.kubernetes import KubernetesTrainModelOperator

pytestmark = pytest.mark.slow  # runs training DAGs with pods faked at the API


NUMERIC = ["age", "tenure_months", "monthly_charges", "support_calls", "data_usage_gb"]


class _TI:
    dag_id, run_id, task_id, try_number, map_index = (
        "churn__train",
        "scheduled__2026-01-18",
        "train_model",
        1,
        -1,
    )

    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        """What a generated DAG's tasks read from validate_data: the window it decided (the data interval)."""
        if (task_ids, key) == ("validate_data", "window"):
            return {"start": "2026-01-04T00:00:00+00:00", "end": "2026-01-18T00:00:00+00:00"}
        return None  # no other upstream result (the validation's return value) in these tests


def _context(roots, **params):
    import pendulum

    return {
        "ti": _TI(),
        "run_id": _TI.run_id,
        "dag": mock.Mock(dag_id=_TI.dag_id, parent_dag=None),
        "params": params,
        "data_interval_start": pendulum.datetime(2026, 1, 11),
        "data_interval_end": pendulum.datetime(2026, 1, 18),
        "var": {
            "value": {"mlops_data_root": str(roots["data"]), "mlops_artifact_root": str(roots["artifacts"])}
        },
    }


def _operator(**over):
    kwargs = {
        "task_id": "train_model",
        "pipeline": "churn",
        "data_uri": "{{ var.value.mlops_data_root }}/demo_churn/date={date}/part-0.parquet",
        "target": "churned",
        "numeric": NUMERIC,
        "categorical": ["plan"],
        "model": {"kind": "tabular", "task": "classification", "params": {"epochs": 3}},
        "window_start": None,
        "window_end": "{{ data_interval_end }}",
        "window_days": 7,
        "image": "registry.example.com/airflow-mlops/trainer:0.1.0",
        "namespace": "ml-training",
        "gpus": 2,
        "cpu": "8",
        "memory": "32Gi",
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "tolerations": [k8s.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
        "mlflow_token_secret": "mlflow-token",
    }
    kwargs.update(over)
    return KubernetesTrainModelOperator(**kwargs)


def _request(op, context) -> dict:
    op.render_template_fields(context)
    pod = op.build_pod_request_obj(context, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


@pytest.fixture
def k8s_conn(monkeypatch):
    secret = "s3cr3t-token-value"
    conn = {"conn_type": "mlflow", "host": "mlflow.ml.svc", "port": 5000, "password": secret}
    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps(conn))
    return secret


def test_pod_request_carries_exactly_the_spec(roots, k8s_conn):
    import kubernetes_validate

    pod = _request(_operator(), _context(roots))
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    assert base["image"] == "registry.example.com/airflow-mlops/trainer:0.1.0"
    assert base["args"] == ["--result", "/airflow/xcom/return.json"]
    assert base["resources"] == {
        "requests": {"nvidia.com/gpu": "2", "cpu": "8", "memory": "32Gi"},
        "limits": {"nvidia.com/gpu": "2", "memory": "32Gi"},
    }
    assert pod["metadata"]["namespace"] == "ml-training"
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}
    assert pod["spec"]["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    env = {e["name"]: e for e in base["env"]}
    assert env["MLFLOW_TRACKING_TOKEN"] == {
        "name": "MLFLOW_TRACKING_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "mlflow-token", "key": "token"}},
    }
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow.ml.svc:5000"
    config = json.loads(env["AIRFLOW_MLOPS_TRAINER_CONFIG"]["value"])
    assert [u.rsplit("date=", 1)[1][:10] for u in config["data"]["uris"]] == [
        f"2026-01-{d}" for d in range(11, 18)
    ]
    assert config["tags"]["airflow.run_id"] == "scheduled__2026-01-18"
    assert len(config["run_key"]) == 24
    assert "airflow-xcom-sidecar" in [c["name"] for c in pod["spec"]["containers"]]
    assert k8s_conn not in json.dumps(pod)  # the token is a secret reference, never a value
    kubernetes_validate.validate(pod, kubernetes_validate.latest_version(), strict=True)


def test_resources_are_templated_per_run(roots, k8s_conn):
    gpu = _request(
        _operator(gpus="{{ params.gpus }}", memory="{{ params.memory }}"),
        _context(roots, gpus=4, memory="64Gi"),
    )
    (base,) = [c for c in gpu["spec"]["containers"] if c["name"] == "base"]
    assert base["resources"]["limits"] == {"nvidia.com/gpu": "4", "memory": "64Gi"}
    cpu = _request(
        _operator(gpus="{{ params.gpus }}", memory="{{ params.memory }}"),
        _context(roots, gpus=0, memory="8Gi"),
    )
    (base,) = [c for c in cpu["spec"]["containers"] if c["name"] == "base"]
    assert base["resources"]["limits"] == {"memory": "8Gi"}
    assert "nvidia.com/gpu" not in base["resources"]["requests"]


def test_same_window_same_run_key_as_local_training(roots, k8s_conn):
    from airflow_mlops.operators.training import TrainModelOperator

    context = _context(roots)
    pod = _request(_operator(), context)
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    in_pod = json.loads(next(e["value"] for e in base["env"] if e["name"] == "AIRFLOW_MLOPS_TRAINER_CONFIG"))
    local = TrainModelOperator(
        task_id="train_model", pipeline="churn", data_uri=f"{roots['data']}/demo_churn/date={{date}}/part-0.parquet",
        target="churned", numeric=NUMERIC, categorical=["plan"],
        model={"kind": "tabular", "task": "classification", "params": {"epochs": 3}},
        window_start=None, window_end="2026-01-18T00:00:00+00:00", window_days=7,
    )  # fmt: skip
    assert local.training_config(context)["run_key"] == in_pod["run_key"]


def test_execute_returns_the_sidecar_result_and_links_the_run(roots, k8s_conn):
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    result = {"run_id": "abc123", "experiment_id": "7", "model_uri": "models:/m-1", "reused": False}
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="mlops-train-churn-x", namespace="ml-training"),
        status=k8s.V1PodStatus(phase="Succeeded"),
    )
    op = _operator()
    context = _context(roots)
    op.render_template_fields(context)
    with (
        mock.patch.object(KubernetesPodOperator, "hook", new_callable=mock.PropertyMock) as kube_hook,
        mock.patch.object(KubernetesPodOperator, "client", new_callable=mock.PropertyMock),
        mock.patch.object(KubernetesPodOperator, "pod_manager", new_callable=mock.PropertyMock) as manager,
        mock.patch.object(KubernetesPodOperator, "get_or_create_pod", return_value=pod) as create,
        mock.patch.object(KubernetesPodOperator, "find_pod", return_value=pod),
        mock.patch.object(KubernetesPodOperator, "await_pod_start"),
        mock.patch.object(KubernetesPodOperator, "await_pod_completion"),
        mock.patch.object(KubernetesPodOperator, "extract_xcom", return_value=result),
        mock.patch.object(KubernetesPodOperator, "post_complete_action") as post,
    ):
        kube_hook.return_value.is_in_cluster = False
        manager.return_value.await_pod_completion.return_value = pod
        assert op.execute(context) == result
    request = create.call_args.kwargs["pod_request_obj"]
    assert request.spec.containers[0].resources.limits["nvidia.com/gpu"] == "2"
    assert post.call_args.kwargs["result"] == result
    assert op.on_finish_action.value == "delete_succeeded_pod"
    assert context["ti"].pushed["mlflow_run_url"] == "http://mlflow.ml.svc:5000/#/experiments/7/runs/abc123"
    assert context["ti"].pushed["pod_name"] == "mlops-train-churn-x"


def test_spec_with_kubernetes_executor_compiles_to_a_pod(roots, k8s_conn):
    from pathlib import Path

    import yaml

    from airflow_mlops.pipeline.factory import build_dags
    from airflow_mlops.pipeline.spec import parse_spec

    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "dags" / "pipelines" / "demo_churn.yaml").read_text()
    )
    raw["training"]["executor"] = "kubernetes"
    raw["training"]["kubernetes"] = {
        "image": "registry.example.com/trainer:1.2",
        "namespace": "ml",
        "gpus": 1,
        "memory": "16Gi",
        "node_selector": {"pool": "gpu"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "mlflow_token_secret": "mlflow-token",
        "on_finish_action": "keep_pod",
    }
    dags = build_dags(parse_spec(raw, "k8s.yaml"))
    for dag_id in ("demo_churn__train", "demo_churn__retrain"):
        train = dags[dag_id].get_task("train_model")
        assert isinstance(train, KubernetesTrainModelOperator)
        assert (train.image, train.namespace, train.gpus, train.on_finish_action.value) == (
            "registry.example.com/trainer:1.2", "ml", 1, "keep_pod",
        )  # fmt: skip
    train = dags["demo_churn__train"].get_task("train_model")
    pod = _request(train, _context(roots))
    (base,) = [c for c in pod["spec"]["containers"] if c["name"] == "base"]
    assert base["resources"]["limits"] == {"nvidia.com/gpu": "1", "memory": "16Gi"}
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    config = json.loads(next(e["value"] for e in base["env"] if e["name"] == "AIRFLOW_MLOPS_TRAINER_CONFIG"))
    assert len(config["data"]["uris"]) == 14  # the spec's training window
    assert config["checkpoint_uri"] == f"{roots['artifacts']}/demo_churn/checkpoints/{config['run_key']}"


def test_without_the_kubernetes_extra_a_pod_spec_is_its_own_clear_error(monkeypatch, capsys, tmp_path):
    """cncf-kubernetes is the [kubernetes] extra: where it is not installed, a spec that trains in pods fails
    to build with the fix named (an import error of that pipeline only), and validate-spec says the same."""
    import sys
    from pathlib import Path

    import yaml

    from airflow_mlops.errors import SpecError
    from airflow_mlops.pipeline.factory import build_dags
    from airflow_mlops.pipeline.spec import parse_spec
    from airflow_mlops.tools.cli import main as cli

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "dags" / "pipelines" / "demo_churn.yaml").read_text())
    raw["training"]["executor"] = "kubernetes"
    raw["training"]["kubernetes"] = {"image": "registry.example.com/trainer:1.2"}
    for name in [m for m in sys.modules if m.startswith("airflow.providers.cncf") or m == "airflow_mlops.operators.kubernetes"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "airflow.providers.cncf.kubernetes.operators.pod", None)  # not installed
    with pytest.raises(SpecError, match=r"k8s.yaml:\n  - training.executor: found 'kubernetes'.*pip install 'airflow-mlops\[kubernetes\]'"):
        build_dags(parse_spec(raw, "k8s.yaml"))
    local = {**raw, "training": {**raw["training"], "executor": "local"}}
    local["training"].pop("kubernetes")
    assert "demo_churn__train" in build_dags(parse_spec(local, "local.yaml"))  # local training never needs it
    spec = tmp_path / "demo_churn.yaml"
    spec.write_text(yaml.safe_dump(raw))
    assert cli(["validate-spec", str(spec)]) == 1
    assert "pip install 'airflow-mlops[kubernetes]'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ({"gpus": -1}, "training.kubernetes.gpus: found -1"),
        ({"tolerations": "gpu"}, "training.kubernetes.tolerations: found 'gpu'"),
        ({"on_finish_action": "delete"}, "training.kubernetes.on_finish_action: found 'delete'"),
        ({"gpu": 1}, "training.kubernetes.gpu: unknown key (did you mean 'gpus'?)"),
    ],
)
def test_kubernetes_block_errors(block, expected):
    from pathlib import Path

    import yaml

    from airflow_mlops.errors import SpecError
    from airflow_mlops.pipeline.spec import parse_spec

    raw = yaml.safe_load(
        (Path(__file__).resolve().parents[2] / "dags" / "pipelines" / "demo_churn.yaml").read_text()
    )
    raw["training"].update(executor="kubernetes", kubernetes=block)
    with pytest.raises(SpecError) as err:
        parse_spec(raw, "k8s.yaml")
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems


def _resume(op, context, event, *, pod, xcom):
    """trigger_reentry as the task runner calls it after the triggerer's event, with the Kubernetes API faked
    at the pod operator's seams."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

    with (
        mock.patch.object(KubernetesPodOperator, "hook", new_callable=mock.PropertyMock) as kube_hook,
        mock.patch.object(KubernetesPodOperator, "client", new_callable=mock.PropertyMock),
        mock.patch.object(KubernetesPodOperator, "pod_manager", new_callable=mock.PropertyMock) as manager,
        mock.patch.object(KubernetesPodOperator, "extract_xcom", return_value=xcom),
        mock.patch.object(KubernetesPodOperator, "post_complete_action") as post,
    ):
        if isinstance(pod, Exception):
            kube_hook.return_value.get_pod.side_effect = pod
        else:
            kube_hook.return_value.get_pod.return_value = pod
        manager.return_value.await_pod_completion.return_value = pod
        try:
            return op.trigger_reentry(context, event)
        finally:
            if not isinstance(pod, Exception):
                assert kube_hook.return_value.get_pod.call_args.args == ("mlops-train-churn-x", "ml-training")
                assert post.called  # the pod is cleaned up as on the synchronous path


def _pod(phase: str, exit_code: int):
    state = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(exit_code=exit_code))
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="mlops-train-churn-x", namespace="ml-training"),
        status=k8s.V1PodStatus(phase=phase, container_statuses=[
            k8s.V1ContainerStatus(name="base", state=state, ready=False, restart_count=0, image="i", image_id="i"),
        ]),
    )  # fmt: skip


EVENT = {"name": "mlops-train-churn-x", "namespace": "ml-training", "last_log_time": None}


def test_deferrable_success_returns_links_and_reports_lineage_like_the_synchronous_path(roots, k8s_conn):
    """Before, execute() post-processed super().execute(), which returns nothing when the pod operator
    defers: the resumed task lost the MLflow run link and the lineage."""
    result = {"run_id": "abc123", "experiment_id": "7", "model_uri": "models:/m-1", "reused": False}
    op = _operator(deferrable=True, get_logs=False)
    context = _context(roots)
    op.render_template_fields(context)
    out = _resume(op, context, {**EVENT, "status": "success"}, pod=_pod("Succeeded", 0), xcom=result)
    assert out == result
    assert context["ti"].pushed["mlflow_run_url"] == "http://mlflow.ml.svc:5000/#/experiments/7/runs/abc123"
    facets = op.get_openlineage_facets_on_complete(None)
    assert [d.name for d in facets.outputs] == ["models:/m-1"]


def test_deferrable_failure_fails_the_task_and_links_nothing(roots, k8s_conn):
    from airflow.sdk.exceptions import AirflowException

    op = _operator(deferrable=True, get_logs=False)
    context = _context(roots)
    op.render_template_fields(context)
    event = {**EVENT, "status": "failed", "message": "trainer exited with code 1"}
    with pytest.raises(AirflowException, match="trainer exited with code 1"):
        _resume(op, context, event, pod=_pod("Failed", 1), xcom=None)
    assert "mlflow_run_url" not in context["ti"].pushed


def test_a_pod_gone_before_the_task_resumed_gives_its_result_from_mlflow(roots, k8s_conn, mlflow_uri, monkeypatch):
    """A success event whose pod was garbage-collected before the task resumed: the provider returns nothing;
    the finished MLflow run of the window's run key is the result."""
    from kubernetes.client.exceptions import ApiException
    from mlflow.tracking import MlflowClient

    from airflow_mlops.tracking import registry

    monkeypatch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "extra": {"tracking_uri": mlflow_uri}}))
    op = _operator(deferrable=True, get_logs=False)
    context = _context(roots)
    op.render_template_fields(context)
    config = op.training_config(context)
    c = MlflowClient()
    exp = c.create_experiment(config["experiment"])
    run = c.create_run(exp, tags={registry.RUN_KEY_TAG: config["run_key"], registry.MODEL_URI_TAG: "models:/m-9"})
    c.set_terminated(run.info.run_id)

    out = _resume(op, context, {**EVENT, "status": "success"}, pod=ApiException(status=404), xcom=None)
    assert (out["run_id"], out["model_uri"]) == (run.info.run_id, "models:/m-9")
    # a local store has no MLflow UI: the link opens the plugin's MLflow page in the Airflow API server
    assert context["ti"].pushed["mlflow_run_url"] == f"http://localhost:8080/mlops/mlflow/runs/{run.info.run_id}"
