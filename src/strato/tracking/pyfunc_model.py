"""The MLflow pyfunc model Strato makes of a job's model directory (SageMaker conventions).

It is logged as an MLflow *model from code*: MLflow copies this file into the model and runs it when
the model is loaded, with ``model_config`` (which model file, whether there is inference code) and two
artifacts, ``model_dir`` (the job's model directory) and, when the job has one, ``code`` (its
``inference.py`` and the Python files beside it). Run that way, under a module name other than this
one, the file registers its model with ``mlflow.models.set_model``; imported as
``strato.tracking.pyfunc_model`` it does nothing and imports nothing heavy.

The file must stay self-contained: it runs where Strato may not be installed (a serving container), so
it imports only the standard library at the top, and mlflow, numpy, pandas, joblib or torch inside the
functions that need them.

Loading, the way SageMaker's scikit-learn and PyTorch serving containers do it:

* ``inference.py`` with ``model_fn(model_dir)``: that loads the model; ``predict_fn(data, model)``, when
  defined, predicts (``input_fn``/``output_fn`` are for HTTP payloads; pyfunc has its own).
* otherwise the first of ``model.joblib``, ``model.pkl``/``model.pickle`` (joblib or pickle) and
  ``model.pt``/``model.pth`` (TorchScript or a whole pickled ``torch.nn.Module``), then ``.predict``
  (a torch module is called on a float32 tensor).

A model fitted on a numpy array (scikit-learn's ``n_features_in_`` without ``feature_names_in_``) is
given ``model_input.to_numpy()``; one fitted on a DataFrame gets its columns in the order it learnt.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

INFERENCE_FILE = "inference.py"
JOBLIB_FILES = ("model.joblib",)
PICKLE_FILES = ("model.pkl", "model.pickle")
TORCH_FILES = ("model.pt", "model.pth")
MODEL_FILES = JOBLIB_FILES + PICKLE_FILES + TORCH_FILES


def find_model_file(model_dir: Path) -> Path | None:
    """The first model file of the conventional names in ``model_dir`` (torch only if importable)."""
    for name in MODEL_FILES:
        path = model_dir / name
        if path.is_file() and (name not in TORCH_FILES or importlib.util.find_spec("torch") is not None):
            return path
    return None


def load_model_file(path: Path) -> Any:
    if path.name in TORCH_FILES:
        return _load_torch(path)
    if path.name in PICKLE_FILES:
        try:
            import joblib
        except ImportError:  # a plain pickle does not need joblib
            with path.open("rb") as handle:
                return pickle.load(handle)
    import joblib

    return joblib.load(path)


def _load_torch(path: Path) -> Any:
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.jit's deprecation notices say nothing about this model
        warnings.simplefilter("ignore")
        try:
            return torch.jit.load(str(path), map_location="cpu")
        except Exception:  # not TorchScript: a whole module saved with torch.save
            model = torch.load(str(path), map_location="cpu", weights_only=False)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(
            f"{path.name} holds a {type(model).__name__}, not a torch module "
            "(save the whole module or TorchScript, or add inference.py with model_fn)"
        )
    model.eval()
    return model


def load_inference_module(code_dir: Path) -> ModuleType:
    """``code_dir/inference.py`` as a module of its own name, so two models loaded in one process keep
    their own code; ``code_dir`` goes on ``sys.path`` for the modules it imports."""
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    name = f"strato_inference_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, code_dir / INFERENCE_FILE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {code_dir / INFERENCE_FILE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_torch_module(model: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(model, torch.nn.Module)


def feature_names(model: Any) -> list[str] | None:
    names = getattr(model, "feature_names_in_", None)
    return [str(name) for name in names] if names is not None else None


class ModelDirModel:
    """Loads a model directory once and predicts with it. :func:`python_model` makes the
    ``mlflow.pyfunc.PythonModel`` of it; :meth:`load` serves Strato's packaging (signature inference)
    without MLflow's context."""

    def __init__(self) -> None:
        self.model: Any = None
        self.predict_fn: Any = None
        self.loaded_from = ""

    # mlflow.pyfunc.PythonModel --------------------------------------------------------------------
    def load_context(self, context: Any) -> None:
        config = context.model_config or {}
        code = context.artifacts.get("code")
        self.load(Path(context.artifacts["model_dir"]), Path(code) if code else None, config.get("model_file"))

    # Unannotated: MLflow would try to make a signature of the type hints.
    def predict(self, context, model_input, params=None):
        return self.predict_input(model_input)

    # The logic -----------------------------------------------------------------------------------
    def load(self, model_dir: Path, code_dir: Path | None = None, model_file: str | None = None) -> None:
        module = load_inference_module(code_dir) if code_dir and (code_dir / INFERENCE_FILE).is_file() else None
        model_fn = getattr(module, "model_fn", None)
        self.predict_fn = getattr(module, "predict_fn", None)
        if model_fn is not None:
            self.model = model_fn(str(model_dir))
            self.loaded_from = "model_fn"
            return
        path = model_dir / model_file if model_file else find_model_file(model_dir)
        if path is None or not path.is_file():
            raise FileNotFoundError(f"{model_dir} has no model file ({', '.join(MODEL_FILES)})")
        self.model = load_model_file(path)
        self.loaded_from = path.name

    def predict_input(self, data: Any) -> Any:
        data = self.adapt(data)
        if self.predict_fn is not None:
            return self.predict_fn(data, self.model)
        if _is_torch_module(self.model):
            return self._predict_torch(data)
        return self.model.predict(data)

    def adapt(self, data: Any) -> Any:
        """The input the model was fitted on: a DataFrame's columns by the names it learnt, a numpy array
        when it learnt none, or a DataFrame made of an array when it learnt names."""
        names = feature_names(self.model)
        is_frame = hasattr(data, "columns") and hasattr(data, "to_numpy")
        if is_frame and names is None and hasattr(self.model, "n_features_in_"):
            return data.to_numpy()
        if is_frame and names is not None and list(data.columns) != names and set(names) <= set(data.columns):
            return data[names]
        if names is not None and getattr(data, "ndim", 0) == 2 and not is_frame and data.shape[1] == len(names):
            import pandas as pd

            return pd.DataFrame(data, columns=names)
        return data

    def _predict_torch(self, data: Any) -> Any:
        import numpy as np
        import torch

        array = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
        with torch.no_grad():
            output = self.model(torch.as_tensor(np.asarray(array, dtype=np.float32)))
        return output.numpy() if hasattr(output, "numpy") else output


def python_model() -> Any:
    """A new ``mlflow.pyfunc.PythonModel`` that is a :class:`ModelDirModel` (made on demand, so this
    module imports MLflow only when a model is built or loaded)."""
    from mlflow.pyfunc import PythonModel

    cls = type("StratoModelDirModel", (ModelDirModel, PythonModel), {"__module__": __name__})
    return cls()


if __name__ != "strato.tracking.pyfunc_model":  # run by MLflow as the model's code
    import mlflow.models

    mlflow.models.set_model(python_model())
