"""Batch scoring: the champion scores a partition in chunks; a canary or a shadow challenger beside it.

Memory is bounded by the chunk: input is read as record batches (pyarrow datasets) and predictions are
written batch by batch to a Parquet file that appears whole or not at all. Every prediction row carries the
model version that made it. The canary split is a hash of the row id (salted per pipeline): the same row
goes to the same model on every re-run and on every machine. Shadow predictions go to a separate file and
never into the predictions that are served.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from airflow_mlops.data.partitions import PARQUET_META_KEY as META_KEY
from airflow_mlops.errors import BadDataError, DataError

log = logging.getLogger(__name__)

BUCKETS = 1_000_000


PROBA_PREFIX = "proba_"  # one prediction-file column per class: proba_<class>


def canary_mask(ids: Any, fraction: float, salt: str) -> Any:
    """True for the rows whose id hashes into the first ``fraction`` of the buckets (deterministic)."""
    import numpy as np
    import pandas as pd

    key = hashlib.sha256(salt.encode()).hexdigest()[:16]
    hashed = pd.util.hash_pandas_object(pd.Series(ids).astype(str), index=False, hash_key=key).to_numpy()
    return (hashed % np.uint64(BUCKETS)) < np.uint64(round(fraction * BUCKETS))


@dataclass
class Scorer:
    """A loaded model and where it came from."""

    model: Any
    version: str
    alias: str

    def columns(self) -> list[str]:
        meta = self.model.meta
        return [
            *(meta.get("numeric") or []),
            *(meta.get("categorical") or []),
            *([meta["text"]] if meta.get("text") else []),
        ]

    def predict(self, df: Any, classes: list[Any] | None = None) -> dict[str, Any]:
        """The prediction file's columns for these rows (docs/operations.md, "Prediction files"):

        - ``prediction``: the predicted class, or the value;
        - classifiers: ``probability``, that of the predicted class, and ``proba_<class>`` for every class
          (``classes``: the champion's, so that a challenger's rows line up; a class this model never saw
          gets 0);
        - binary classifiers: ``score``, the probability of the positive (last) class, as estimation reads it.
        """
        import numpy as np

        meta = self.model.meta
        if meta["task"] != "classification":
            return {"prediction": np.asarray(self.model.predict(df), dtype=np.float64).reshape(-1)}
        proba = np.asarray(self.model.predict_proba(df), dtype=np.float64)
        own = list(meta["classes"])
        typed = np.array(own)  # typed (int, float or str), not object: cheap to write
        best = proba.argmax(axis=1)
        out: dict[str, Any] = {"prediction": typed[best], "probability": proba[np.arange(len(proba)), best]}
        if len(own) == 2:
            out["score"] = proba[:, -1].copy()
        index = {str(c): i for i, c in enumerate(own)}
        for c in classes if classes is not None else own:
            i = index.get(str(c))
            out[f"{PROBA_PREFIX}{c}"] = proba[:, i].copy() if i is not None else np.zeros(len(proba))
        return out


def read_metadata(uri: str) -> dict[str, Any] | None:
    """The scoring metadata of a predictions file (models, mode, inputs), or None if there is none."""
    import pyarrow.parquet as pq

    from airflow_mlops.storage import _fs

    fs, path = _fs(uri)
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as fh:
        meta = pq.read_schema(fh).metadata or {}
    return json.loads(meta[META_KEY]) if META_KEY in meta else None


def score_partition(
    uris: list[str],
    *,
    data_format: str,
    output_uri: str,
    champion: Scorer,
    challenger: Scorer | None = None,
    mode: str = "champion_only",
    fraction: float = 0.0,
    id_column: str | None = None,
    chunk_rows: int = 50_000,
    salt: str = "airflow-mlops",
    shadow_uri: str | None = None,
    inputs: list[dict[str, str]] | None = None,
    label_column: str | None = None,
    carry: list[str] | None = None,
    row_filter: Any = None,
    quarantine_uri: str | None = None,
    written_by: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score every row of ``uris`` and write ``output_uri`` (and ``shadow_uri`` in shadow mode) atomically.

    ``written_by`` (the Airflow dag, run, task and try) is kept in the file's metadata beside the versions
    and inputs, so a prediction can be traced to the run that wrote it; it does not decide reuse.

    ``label_column``: the scored rows carry their label; it is written beside each prediction (live metrics
    read it there, no join), with the ``carry`` columns (the business value's per-row amount). Re-running with the same inputs and the same model versions reuses the file.
    ``row_filter`` (a DataFrame -> per-row reason or None, see :func:`~airflow_mlops.data.validation.row_faults`)
    with ``quarantine_uri``: rows with a reason are not scored but written there, as read, with the reason in
    ``quarantine_reason`` (atomically, with the predictions).
    """
    import numpy as np

    from airflow_mlops.data.partitions import AtomicParquet, iter_record_batches, require_columns

    if mode != "champion_only" and challenger is None:
        log.warning("scoring.mode is %s but %s has no challenger: the champion scores every row", mode, salt)
        mode = "champion_only"
    if mode == "canary" and not id_column:
        raise DataError("a canary split needs scoring.id_column (the rows are split by a hash of their id)")
    metadata = {
        "champion_version": champion.version, "challenger_version": challenger.version if challenger else None,
        "mode": mode, "fraction": fraction if mode == "canary" else None, "inputs": inputs or [],
        **({"label_column": label_column} if label_column else {}),
        **({"carried": list(carry)} if carry else {}),
        **({"quarantine_uri": quarantine_uri} if row_filter is not None and quarantine_uri else {}),
    }  # fmt: skip

    def same(found: dict[str, Any] | None) -> bool:
        return found is not None and {k: v for k, v in found.items() if k not in ("written_by", "shadow")} == metadata

    existing = read_metadata(output_uri)
    if same(existing) and (mode != "shadow" or same(read_metadata(shadow_uri or ""))):
        log.info(
            "%s already holds these predictions (same inputs and model versions): reusing it", output_uri
        )
        return {
            **metadata,
            "output_uri": output_uri,
            "shadow_uri": shadow_uri if mode == "shadow" else None,
            "reused": True,
        }

    stored = {**metadata, **({"written_by": written_by} if written_by else {})}
    out = AtomicParquet(output_uri, stored)
    shadow = (
        AtomicParquet(shadow_uri, {**stored, "shadow": True}) if mode == "shadow" and shadow_uri else None
    )
    counts = {"champion": 0, "challenger": 0, "shadow": 0}
    models = [champion, challenger or champion]
    aside: AtomicParquet | None = None
    quarantined = 0
    try:
        extra = [c for c in (id_column, label_column, *(carry or [])) if c]
        needed = champion.columns() + [c for c in extra if c not in champion.columns()]
        for arrow_batch in iter_record_batches(uris, data_format, chunk_rows, needed):
            batch = arrow_batch.to_pandas()
            require_columns(batch, needed, f"scoring {uris[0]}")
            if row_filter is not None and quarantine_uri:
                import pyarrow as pa

                reasons = row_filter(batch)  # converts a numeric column read as text in place
                bad = reasons.notna().to_numpy(dtype=bool)
                if bad.any():
                    aside = aside or AtomicParquet(quarantine_uri, stored)
                    table = pa.Table.from_batches([arrow_batch.filter(pa.array(bad))])
                    aside.write(table.append_column("quarantine_reason", pa.array(reasons[bad].tolist(), pa.string())))
                    quarantined += int(bad.sum())
                    batch = batch[~bad].reset_index(drop=True)
                    arrow_batch = arrow_batch.filter(pa.array(~bad))
                    if batch.empty:
                        continue
            ids = arrow_batch.column(id_column) if id_column else None  # written as read: no round trip
            labels = {c: arrow_batch.column(c) for c in (label_column, *(carry or [])) if c}
            n = len(batch)
            preds = champion.predict(batch)
            who = np.zeros(n, dtype=np.int8)  # 0: champion, 1: challenger (indices into ``models``)
            routed = 0
            if mode == "canary":
                mask = canary_mask(batch[id_column], fraction, salt)
                routed = int(mask.sum())
                if routed:
                    canary = challenger.predict(batch[mask], classes=champion.model.meta.get("classes"))
                    for k in preds:  # (a column the challenger has no value for: NaN)
                        preds[k][mask] = canary[k] if k in canary else np.nan
                    who[mask] = 1
            counts["champion"] += n - routed
            counts["challenger"] += routed
            out.write(_table(ids, preds, who, models, id_column, labels))
            if shadow is not None:
                shadow.write(
                    _table(
                        ids, challenger.predict(batch, classes=champion.model.meta.get("classes")),
                        np.ones(n, dtype=np.int8), models, id_column, labels,
                    )  # fmt: skip
                )
                counts["shadow"] += n
        if out.rows == 0 and quarantined:
            raise BadDataError(
                f"all {quarantined} rows of {', '.join(uris)} break the data contract (set aside in "
                f"{quarantine_uri}): nothing to score. Fix the upstream data, then clear this task."
            )
        if out.rows == 0:
            raise DataError(
                f"no rows to score in {', '.join(uris)}: the partition is empty. Check the upstream load"
            )
        out.commit()
        if aside is not None:
            aside.commit()
        if shadow is not None:
            shadow.commit()
    except BaseException:
        out.abort()
        for other in (shadow, aside):
            if other is not None:
                other.abort()
        raise
    log.info(
        "scored %d rows -> %s (%s)",
        out.rows,
        output_uri,
        ", ".join(f"{k}: {v}" for k, v in counts.items() if v),
    )
    return {
        **metadata, "output_uri": output_uri, "shadow_uri": shadow_uri if shadow else None, "reused": False,
        "rows": out.rows, "rows_by_model": counts, "quarantined": quarantined,
        "quarantine_uri": quarantine_uri if aside is not None else None,
    }  # fmt: skip


def _table(
    ids: Any, preds: dict[str, Any], who: Any, models: list[Scorer], id_column: str | None,
    carried: dict[str, Any] | None = None,
) -> Any:
    """One chunk of output; ``who`` says which of ``models`` scored each row; ``carried``: input columns
    written as read (the label, when the scored rows carry it)."""
    import numpy as np
    import pyarrow as pa

    def per_row(values: list[str]) -> Any:  # dictionary-decoded in C++: no Python loop over the rows
        return pa.DictionaryArray.from_arrays(pa.array(who), pa.array(values, pa.string())).cast(pa.string())

    columns: dict[str, Any] = {}
    if id_column:
        columns[id_column] = ids
    prediction = preds["prediction"]
    columns["prediction"] = pa.array(prediction.tolist() if prediction.dtype == object else prediction)
    for key, values in preds.items():  # probability, score, proba_<class>: all float64
        if key != "prediction":
            columns[key] = pa.array(np.asarray(values, dtype="float64"))
    columns["model_version"] = per_row([m.version for m in models])
    columns["model_alias"] = per_row([m.alias for m in models])
    columns.update(carried or {})
    return pa.table(columns)


def load_alias(c: Any, name: str, alias: str) -> Scorer | None:
    """The version holding ``alias``, loaded only if its files match the hash the registry recorded."""
    from airflow_mlops.errors import IntegrityError
    from airflow_mlops.model.artifacts import load_mlflow_model
    from airflow_mlops.tracking import registry

    version = registry.get_alias(c, name, alias)
    if version is None:
        return None
    sha = version.tags.get(registry.MODEL_SHA_TAG)
    if not sha:
        raise IntegrityError(
            f"{name} version {version.version} ({alias}) has no recorded {registry.MODEL_SHA_TAG}: refusing to "
            "load a model whose files cannot be verified. Register it through airflow-mlops."
        )
    model = load_mlflow_model(
        version.source, sha, files=registry.model_files(version.tags), what=f"{name} version {version.version}"
    )
    return Scorer(model, str(version.version), alias)
