"""The pipeline spec, typed: one YAML file per model, validated into a :class:`PipelineSpec`.

Every section is a pydantic model with ``extra="forbid"``, choices are literals and each model kind's
``params`` are typed too, so the JSON Schema (``airflow-mlops spec-schema``) and the generated reference in
``docs/spec-reference.md`` say exactly what is accepted. Cross-section rules (features vs target, metrics per
task, drift rules per feature, cron expressions) are field validators that read the sections validated before
them, so one run reports every problem at once, each as ``key.path: found X; allowed: Y``.

Only pydantic (which Airflow imports anyway) and PyYAML are imported here: DAG files stay light.

The sections live one module per part of the spec: :mod:`.data` (partitions, columns, contract, quality),
:mod:`.training` (split, pods, retries, search), :mod:`.testing` (model tests and promotion), :mod:`.drift`,
:mod:`.scoring`, :mod:`.alerts`; :mod:`.pipeline` holds :class:`PipelineSpec` and the rules across sections,
:mod:`.loading` reads YAML and turns pydantic's errors into one line per problem. Everything is importable from
here.
"""

from __future__ import annotations

from airflow_mlops.pipeline.spec.alerts import ALERT_EVENTS, AlertEvent, AlertRoute
from airflow_mlops.pipeline.spec.common import CRON_PRESETS, NAME_PATTERN
from airflow_mlops.pipeline.spec.data import (
    Bounds,
    ClassBalance,
    ColumnConstraint,
    Completeness,
    Constraints,
    Data,
    Dtype,
    EventTime,
    Features,
    Quality,
    QualityCheck,
    Severity,
    Storage,
)
from airflow_mlops.pipeline.spec.drift import (
    CategoricalDrift,
    Drift,
    FeatureDrift,
    NumericDrift,
    Retraining,
    SensorSettings,
)
from airflow_mlops.pipeline.spec.loading import json_schema, load_spec, parse_spec, problems_of, read_yaml
from airflow_mlops.pipeline.spec.pipeline import PipelineSpec
from airflow_mlops.pipeline.spec.scoring import (
    Drop,
    Estimation,
    Labels,
    MetricDrop,
    Schedule,
    Schedules,
    Scoring,
    Value,
    check_schedule,
)
from airflow_mlops.pipeline.spec.testing import (
    Compare,
    ExpectationRule,
    FairnessRule,
    Leakage,
    Metric,
    Promotion,
    RobustnessRule,
    SliceRule,
    Tests,
)
from airflow_mlops.pipeline.spec.training import Kubernetes, Retries, Search, Training

__all__ = ['ALERT_EVENTS', 'AlertEvent', 'AlertRoute', 'Bounds', 'CRON_PRESETS', 'CategoricalDrift', 'ClassBalance', 'ColumnConstraint', 'Compare', 'Completeness', 'Constraints', 'Data', 'Drift', 'Drop', 'Dtype', 'Estimation', 'EventTime', 'ExpectationRule', 'FairnessRule', 'FeatureDrift', 'Features', 'Kubernetes', 'Labels', 'Leakage', 'Metric', 'MetricDrop', 'NAME_PATTERN', 'NumericDrift', 'PipelineSpec', 'Promotion', 'Quality', 'QualityCheck', 'Retraining', 'Retries', 'RobustnessRule', 'Schedule', 'Schedules', 'Scoring', 'Search', 'SensorSettings', 'Severity', 'SliceRule', 'Storage', 'Tests', 'Training', 'Value', 'check_schedule', 'json_schema', 'load_spec', 'parse_spec', 'problems_of', 'read_yaml']
