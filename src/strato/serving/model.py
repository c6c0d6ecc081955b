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
                predict = raw.predict
        return cls(predict=predict, schema=schema, uri=uri)


def cached_model_dir(uri: str, cache: Path) -> Path:
    """A local directory holding the model at ``uri``: a local path as it is; anything else downloaded
    once into ``cache`` (atomically: a half-downloaded model is never used), so a replica started
    again (scale from zero, a crash) loads from disk instead of downloading again."""
    local = Path(uri[len("file://") :]) if uri.startswith("file://") else Path(uri)
    if "://" not in uri and ":/" not in uri:
        return local
    import hashlib

    target = cache / hashlib.sha256(uri.encode()).hexdigest()[:24]
    if (target / "MLmodel").is_file():
        return target
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
