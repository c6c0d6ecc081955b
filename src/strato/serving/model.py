"""A model as a replica serves it: an MLflow model loaded once from a local directory, its input schema
(from the signature) for the codec's checks, and the fastest correct way to call it.

``pyfunc.predict`` re-checks the signature on every call (about as long as the prediction itself for a
small scikit-learn model); the codec has already checked and converted the input against the same
schema, so a model whose pyfunc flavor is scikit-learn's plain ``predict`` is called directly.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strato.serving.codec import InputSchema, schema_from_signature
from strato.serving.model_files import cache_name, local_model_dir


@dataclass
class LoadedModel:
    predict: Any  # (model input) -> predictions
    schema: InputSchema | None
    uri: str

    @classmethod
    def load(cls, directory: Path, uri: str) -> LoadedModel:
        import mlflow.pyfunc

        model = mlflow.pyfunc.load_model(str(directory))
        meta = model.metadata
        schema = schema_from_signature(meta.signature) if meta.signature is not None else None
        predict = model.predict
        flavors = meta.flavors
        pyfunc = flavors.get("python_function", {})
        if "sklearn" in flavors and pyfunc.get("predict_fn", "predict") == "predict" and schema is not None:
            raw = model.get_raw_model()
            if hasattr(raw, "predict"):
                predict = _as_array_if_same(raw, schema) or raw.predict
        return cls(predict=predict, schema=schema, uri=uri)


def _as_array_if_same(raw: Any, schema: InputSchema) -> Any:
    """scikit-learn validates a DataFrame's column names on every call (most of a small model's time).
    The codec already put the columns in the signature's order; when those are the names the model was
    fitted with, all numeric, and a probe row predicts the same either way, call it with the array."""
    numeric = {"double", "float", "long", "integer"}
    names = getattr(raw, "feature_names_in_", None)
    if names is None or not schema.columns or list(names) != list(schema.columns):
        return None
    if not schema.types or not set(schema.types) <= numeric:
        return None
    import warnings

    import numpy as np
    import pandas as pd

    probe = pd.DataFrame(np.ones((1, len(schema.columns))), columns=list(schema.columns))
    # Fitted with names, called with an array: scikit-learn warns on every call; here it is known to be right.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    try:
        if not np.array_equal(np.asarray(raw.predict(probe)), np.asarray(raw.predict(probe.to_numpy()))):
            return None
    except Exception:
        return None

    def predict(data: Any) -> Any:
        return raw.predict(data.to_numpy() if isinstance(data, pd.DataFrame) else data)

    return predict


def warm_imports(directory: str) -> None:
    """A warm pool's warm-up: load the model once and drop it, so every module it needs is imported
    before a replica is forked (each replica still loads its own copy, from local disk)."""
    LoadedModel.load(Path(directory), directory)


def cached_model_dir(uri: str, cache: Path) -> Path:
    """A local directory holding the model at ``uri``: a local path as it is; anything else downloaded
    once into ``cache`` (atomically: a half-downloaded model is never used), so a replica started
    again (scale from zero, a crash) loads from disk instead of downloading again."""
    local = local_model_dir(uri, cache)
    if local is not None:
        return local
    target = cache / cache_name(uri)
    import mlflow.artifacts

    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    try:
        downloaded = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging)))
        if not (downloaded / "MLmodel").is_file():
            raise FileNotFoundError(f"{uri} is not an MLflow model (no MLmodel file)")
        try:
            os.rename(downloaded, target)
        except OSError:  # another replica finished first: use its copy
            if not (target / "MLmodel").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
