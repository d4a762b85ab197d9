"""Tabular torch model (an MLP) for classification and regression, with its own preprocessing.

Preprocessing is fitted on the training rows only and stored in ``model.json`` as plain numbers and category
lists: numeric columns are standardised (missing values take the training mean), categorical columns are
one-hot encoded with an "unknown" slot for categories not seen in training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from airflow_mlops.model.training.checkpoint import Checkpointer
from airflow_mlops.model.training.common import FitResult, fit, fit_settings, pick_device, seed_everything

WEIGHTS = "weights.safetensors"
DEFAULTS = {
    "hidden_units": [64, 32],
    "epochs": 10,
    "batch_size": 256,
    "learning_rate": 3e-3,
    "weight_decay": 1e-4,
    "dropout": 0.0,
    "max_categories": 50,
}


def _build_net(in_dim: int, out_dim: int, hidden: list[int], dropout: float):
    import torch

    layers: list[Any] = []
    prev = in_dim
    for h in hidden:
        layers += [torch.nn.Linear(prev, h), torch.nn.ReLU()]
        if dropout:
            layers.append(torch.nn.Dropout(dropout))
        prev = h
    layers.append(torch.nn.Linear(prev, out_dim))
    return torch.nn.Sequential(*layers)


def fit_preprocessing(df: Any, numeric: list[str], categorical: list[str], max_categories: int) -> dict:
    import numpy as np

    # Lists, not mappings: the column order decides the input layout and must survive JSON (sort_keys).
    prep: dict[str, Any] = {"numeric": [], "categorical": []}
    for col in numeric:
        values = df[col].astype("float64").to_numpy()
        values = values[np.isfinite(values)]
        mean = float(values.mean()) if len(values) else 0.0
        std = float(values.std()) if len(values) else 1.0
        prep["numeric"].append({"column": col, "mean": mean, "std": std if std > 1e-12 else 1.0})
    for col in categorical:
        counts = df[col].dropna().astype(str).value_counts()
        prep["categorical"].append(
            {"column": col, "categories": sorted(counts.index[:max_categories].tolist())}
        )
    return prep


def transform(df: Any, prep: dict) -> Any:
    """Frame -> float32 matrix; missing or inf numeric values take the training mean."""
    import numpy as np

    parts = []
    for st in prep["numeric"]:
        v = df[st["column"]].astype("float64").to_numpy(copy=True)
        v[~np.isfinite(v)] = st["mean"]
        parts.append(((v - st["mean"]) / st["std"])[:, None])
    for cat in prep["categorical"]:
        vocab = cat["categories"]
        index = {c: i + 1 for i, c in enumerate(vocab)}  # 0 = unknown or missing
        codes = (
            df[cat["column"]].astype(object).map(lambda x, index=index: index.get(str(x), 0) if x == x else 0)
        )
        onehot = np.zeros((len(df), len(vocab) + 1), dtype=np.float64)
        onehot[np.arange(len(df)), codes.to_numpy(dtype=np.int64)] = 1.0
        parts.append(onehot)
    return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(df), 0), dtype=np.float32)


class TabularModel:
    def __init__(self, net: Any, meta: dict[str, Any]) -> None:
        self.net = net
        self.meta = meta

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> TabularModel:
        from safetensors.torch import load_file

        p = meta["params"]
        net = _build_net(meta["input_dim"], meta["output_dim"], list(p["hidden_units"]), float(p["dropout"]))
        net.load_state_dict(load_file(str(directory / WEIGHTS)))
        net.eval()
        return cls(net, meta)

    def _raw(self, df: Any) -> Any:
        import torch

        x = torch.from_numpy(transform(df, self.meta["preprocessing"]))
        with torch.no_grad():
            return self.net(x.to(next(self.net.parameters()).device)).cpu()

    def predict_proba(self, df: Any) -> Any:
        import torch

        if self.meta["task"] != "classification":
            raise TypeError("predict_proba is only defined for classification models")
        return torch.softmax(self._raw(df), dim=1).numpy()

    def predict(self, df: Any) -> Any:
        import numpy as np

        if self.meta["task"] == "classification":
            classes = np.array(self.meta["classes"], dtype=object)
            return classes[self.predict_proba(df).argmax(axis=1)]
        t = self.meta["target_scale"]
        return self._raw(df).numpy().reshape(-1) * t["std"] + t["mean"]


def train(
    train_df: Any,
    *,
    numeric: list[str],
    categorical: list[str],
    target: str,
    task: str,
    params: dict[str, Any],
    seed: int,
    out_dir: Path,
    evaluate: Any,
    checkpoint: Checkpointer | None = None,
) -> tuple[dict[str, Any], FitResult]:
    """Fit the MLP; write weights to ``out_dir``; return (meta for model.json, the fit's history)."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    p = {**DEFAULTS, **params}
    seed_everything(seed)
    prep = fit_preprocessing(train_df, numeric, categorical, int(p["max_categories"]))
    x = torch.from_numpy(transform(train_df, prep))
    meta: dict[str, Any] = {
        "kind": "tabular", "task": task, "numeric": numeric, "categorical": categorical, "target": target,
        "preprocessing": prep, "params": p, "input_dim": int(x.shape[1]),
    }  # fmt: skip
    if task == "classification":
        classes = sorted(train_df[target].dropna().unique().tolist())
        if len(classes) < 2:
            raise ValueError(
                f"target {target!r} has a single class {classes} in the training window: "
                "a classifier needs at least two; widen training.window_days"
            )
        index = {c: i for i, c in enumerate(classes)}
        y = torch.tensor(train_df[target].map(index).to_numpy(dtype=np.int64))
        meta.update(classes=[c.item() if hasattr(c, "item") else c for c in classes], output_dim=len(classes))
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        t = train_df[target].astype("float64")
        scale = {"mean": float(t.mean()), "std": float(t.std()) or 1.0}
        y = torch.tensor(((t - scale["mean"]) / scale["std"]).to_numpy(dtype=np.float32)).unsqueeze(1)
        meta.update(target_scale=scale, output_dim=1)
        loss_fn = torch.nn.MSELoss()

    net = _build_net(meta["input_dim"], meta["output_dim"], list(p["hidden_units"]), float(p["dropout"]))
    device = pick_device(str(p.get("device", "auto")))
    net.to(device)
    model = TabularModel(net, meta)

    def on_epoch(_epoch: int, _loss: float) -> dict[str, float]:
        net.eval()
        return evaluate(model)

    fitted = fit(
        net, x, y, loss_fn, named_params=dict(net.named_parameters()), on_epoch=on_epoch,
        **fit_settings(p, seed, device, checkpoint),
    )  # fmt: skip
    net.to("cpu")
    net.eval()
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS))
    return meta, fitted
