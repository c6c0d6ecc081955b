"""Make a finished job's model directory (SM_MODEL_DIR) an MLflow model in the job's run.

Runs inside the job's task after the user's command exited 0, in the user's environment, with the
run's tracking URI in ``MLFLOW_TRACKING_URI`` (``package_model(..., run_id=os.environ["MLFLOW_RUN_ID"])``
or ``python -m strato.tracking.packaging MODEL_DIR [--code-dir DIR]``). In this order:

1. The run already has a model (a logged model whose source run is this run, or a classic
   ``runs:/<id>/<path>`` artifact with an ``MLmodel``): the script logged its own; nothing is logged.
2. The model directory holds an MLflow model (``MLmodel`` at its root or in one subdirectory): it is
   logged into the run as it is.
3. Otherwise the directory becomes a pyfunc model (``pyfunc_model.py``, logged as model code) with the
   directory as its ``model_dir`` artifact: ``inference.py`` (``model/code/`` or the job's code) gives
   ``model_fn``/``predict_fn``; without it ``model.joblib``, ``model.pkl``/``.pickle`` or
   ``model.pt``/``.pth`` is loaded and ``.predict`` called. The model is loaded here first, so a model
   that cannot be loaded is reported, not logged. Its signature comes from ``input_example.json``
   (records), ``.csv`` or ``.parquet`` in the directory (which also becomes the input example), or from
   a scikit-learn model's ``feature_names_in_``/``n_features_in_`` and a prediction on a row of zeros.
   A signature that cannot be inferred is left out, with the reason; it never fails the job.
   Requirements are pinned from what is installed (MLflow never resolves them over the network).

Logged models are created in the run's experiment, with the run as their source and as an output of the
run (step 0), and tagged ``strato.packaged_from``. Errors talking to MLflow propagate; the caller
decides what a failed packaging means for the job (the command-line entry prints it and exits 1).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from strato.tracking import pyfunc_model
from strato.tracking.pyfunc_model import INFERENCE_FILE, ModelDirModel

log = logging.getLogger("strato.tracking.packaging")

MLMODEL = "MLmodel"
EXAMPLE_FILES = ("input_example.json", "input_example.csv", "input_example.parquet")
EXAMPLE_ROWS = 5  # rows of an input example kept with the model
MAX_RUN_DIRS = 20  # top-level run artifact directories looked into for a classic logged model
PACKAGED_TAG = "strato.packaged_from"
# Import name -> distribution, pinned into the model's requirements when loading the model imported it.
KNOWN_PACKAGES = {
    "sklearn": "scikit-learn",
    "joblib": "joblib",
    "torch": "torch",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "statsmodels": "statsmodels",
}
Source = Literal["script", "mlmodel", "pyfunc", "none"]


@dataclass(frozen=True)
class PackagedModel:
    """What became of a job's model directory.

    ``model_uri`` is the run's model (``models:/<id>``, or ``runs:/<run>/<path>`` for a classic artifact
    the script logged), None when there is none; ``logged`` says whether Strato logged it now.
    ``source``: ``script`` (the script logged its own), ``mlmodel`` (the directory's MLflow model),
    ``pyfunc`` (the directory wrapped), ``none`` (nothing to package; the caller keeps the directory as
    plain artifacts). ``flavor`` is the model's main flavor (``python_function`` for a wrapped directory).
    """

    model_uri: str | None
    flavor: str | None
    signature: bool
    input_example: bool
    reason: str
    source: Source = "none"
    model_id: str | None = None
    logged: bool = False
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def package_model(model_dir: Path, code_dir: Path | None, *, run_id: str, name: str = "model") -> PackagedModel:
    """Make ``model_dir`` an MLflow model named ``name`` in run ``run_id`` (see the module's docstring).
    ``code_dir`` is the job's code (where ``inference.py`` may be). Always returns a result; only errors
    reaching MLflow raise."""
    from mlflow import MlflowClient

    start = time.monotonic()
    model_dir, code_dir = Path(model_dir), Path(code_dir) if code_dir is not None else None
    client = MlflowClient()
    run = client.get_run(run_id)
    result = _existing_model(client, run)
    if result is None:
        mlmodel_dir, note = _find_mlmodel(model_dir, name)
        if mlmodel_dir is not None:
            where = "at its root" if mlmodel_dir == model_dir else f"in {mlmodel_dir.name}/"
            result = _log_mlmodel(client, run, mlmodel_dir, name, where + note)
        else:
            result = _package_pyfunc(client, run, model_dir, code_dir, name)
    return PackagedModel(**{**result.to_dict(), "seconds": round(time.monotonic() - start, 3)})


# 1. A model the script logged ---------------------------------------------------------------------
def _existing_model(client: Any, run: Any) -> PackagedModel | None:
    run_id = run.info.run_id
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'"
    )
    models = [m for m in found if str(m.status) != "FAILED"]  # a failed upload is no model
    if models:
        model = max(models, key=lambda m: m.creation_timestamp or 0)
        uri = f"models:/{model.model_id}"
        ours = model.tags.get(PACKAGED_TAG)
        why = (
            f"already packaged from the model directory ({uri})" if ours else f"the script logged its own model ({uri})"
        )
        source: Source = "script" if not ours else ("pyfunc" if ours == "model_dir" else "mlmodel")
        return _described(uri, source, why, model_id=model.model_id)
    classic = _classic_model_uri(client, run_id)
    if classic is not None:
        return _described(classic, "script", f"the script logged its own model ({classic})")
    return None


def _classic_model_uri(client: Any, run_id: str) -> str | None:
    """``runs:/<id>/<dir>`` of an MLflow 2 style model artifact (``MLmodel`` in a top-level directory)."""
    top = client.list_artifacts(run_id)
    if any(f.path == MLMODEL for f in top):
        return f"runs:/{run_id}"
    dirs = sorted((f.path for f in top if f.is_dir), key=lambda p: (p != "model", p))[:MAX_RUN_DIRS]
    for path in dirs:
        if any(f.path == f"{path}/{MLMODEL}" for f in client.list_artifacts(run_id, path)):
            return f"runs:/{run_id}/{path}"
    return None


def _described(uri: str, source: Source, reason: str, *, model_id: str | None = None) -> PackagedModel:
    """A result for a model already in the run, with what its MLmodel says (best effort)."""
    flavor, signature, example = None, False, False
    try:
        from mlflow.models import get_model_info

        info = get_model_info(uri)
        flavor = _main_flavor(info.flavors)
        signature, example = info.signature is not None, info.saved_input_example_info is not None
    except Exception as exc:  # the model stays the script's; describing it is a courtesy
        log.debug("could not read the MLmodel of %s: %s", uri, exc)
    return PackagedModel(uri, flavor, signature, example, reason, source=source, model_id=model_id)


def _main_flavor(flavors: dict[str, Any]) -> str | None:
    names = [name for name in flavors if name != "python_function"]
    return names[0] if names else ("python_function" if flavors else None)


# 2. An MLflow model in the directory --------------------------------------------------------------
def _find_mlmodel(model_dir: Path, name: str) -> tuple[Path | None, str]:
    if (model_dir / MLMODEL).is_file():
        return model_dir, ""
    if not model_dir.is_dir():
        return None, ""
    found = [p for p in sorted(model_dir.iterdir()) if p.is_dir() and (p / MLMODEL).is_file()]
    if not found:
        return None, ""
    chosen = next((p for p in found if p.name == name), found[0])
    others = [p.name for p in found if p != chosen]
    return chosen, (f"; also found {', '.join(others)}, not logged" if others else "")


def _log_mlmodel(client: Any, run: Any, mlmodel_dir: Path, name: str, where: str) -> PackagedModel:
    from mlflow.models import Model

    with tempfile.TemporaryDirectory(prefix="strato-model-") as tmp:
        local = Path(tmp) / "model"
        shutil.copytree(mlmodel_dir, local, ignore=shutil.ignore_patterns("__pycache__"))
        model = _log_local_model(client, run, local, name, "mlmodel")
        saved = Model.load(str(local))
    return PackagedModel(
        f"models:/{model.model_id}",
        _main_flavor(saved.flavors),
        saved.signature is not None,
        saved.saved_input_example_info is not None,
        f"logged the MLflow model in the model directory ({where}) as it is",
        source="mlmodel",
        model_id=model.model_id,
        logged=True,
    )


def _log_local_model(client: Any, run: Any, local: Path, name: str, packaged_from: str) -> Any:
    """Log the MLflow model saved at ``local`` as a new logged model of ``run``, the way
    ``log_model`` does (its MLmodel rewritten to name the run and the model), and return it."""
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model

    model = client.create_logged_model(
        experiment_id=run.info.experiment_id,
        name=name,
        source_run_id=run.info.run_id,
        tags={PACKAGED_TAG: packaged_from},
        params={key: str(value) for key, value in run.data.params.items()},
    )
    try:
        mlmodel = Model.load(str(local))
        mlmodel.run_id = run.info.run_id
        mlmodel.model_id = mlmodel.model_uuid = model.model_id
        mlmodel.artifact_path = model.artifact_location
        mlmodel.save(str(local / MLMODEL))
        client.log_model_artifacts(model.model_id, str(local))
        client.log_outputs(run.info.run_id, [LoggedModelOutput(model.model_id, step=0)])
        return client.finalize_logged_model(model.model_id, "READY")
    except BaseException:
        try:
            client.finalize_logged_model(model.model_id, "FAILED")
        except Exception as exc:
            log.warning("could not mark logged model %s FAILED: %s", model.model_id, exc)
        raise


# 3. The directory wrapped as a pyfunc model --------------------------------------------------------
def _inference_dir(model_dir: Path, code_dir: Path | None) -> Path | None:
    """Where ``inference.py`` is: the model's own ``code/`` (SageMaker's model.tar.gz layout) first,
    then the job's code."""
    for candidate in (model_dir / "code", code_dir):
        if candidate is not None and (candidate / INFERENCE_FILE).is_file():
            return candidate
    return None


def _nothing(model_dir: Path, why: str = "") -> PackagedModel:
    reason = why or f"nothing to package: {model_dir} has no MLmodel, model.joblib/.pkl or inference.py"
    return PackagedModel(None, None, False, False, reason, source="none")


def _package_pyfunc(client: Any, run: Any, model_dir: Path, code_dir: Path | None, name: str) -> PackagedModel:
    inference = _inference_dir(model_dir, code_dir)
    model_file = pyfunc_model.find_model_file(model_dir) if model_dir.is_dir() else None
    if not model_dir.is_dir() or (inference is None and model_file is None):
        return _nothing(model_dir)
    predictor = ModelDirModel()
    try:
        with _quiet_mlflow():
            predictor.load(model_dir, inference, model_file.name if model_file else None)
    except Exception as exc:  # a model that does not load here would not load from MLflow either
        what = INFERENCE_FILE if inference else (model_file.name if model_file else "")
        return _nothing(model_dir, f"nothing packaged: loading {what} failed: {type(exc).__name__}: {exc}")
    imported = {module.partition(".")[0] for module in sys.modules}  # now that the model is loaded
    signature, example, how = _signature(predictor, model_dir)
    with tempfile.TemporaryDirectory(prefix="strato-model-") as tmp:
        local = Path(tmp) / "model"
        artifacts = {"model_dir": str(model_dir)}
        if inference is not None:
            artifacts["code"] = str(_stage_code(inference, Path(tmp) / "code"))
        config = {"model_file": model_file.name if model_file else None}
        requirements = _requirements(imported, inference)
        try:
            _save_pyfunc(local, artifacts, config, signature, example, requirements)
        except Exception as exc:
            if signature is None and example is None:
                raise
            shutil.rmtree(local, ignore_errors=True)  # MLflow rejected them: save the model without
            _save_pyfunc(local, artifacts, config, None, None, requirements)
            signature = example = None
            how = f"no signature: MLflow refused it ({type(exc).__name__}: {exc})"
        model = _log_local_model(client, run, local, name, "model_dir")
    return PackagedModel(
        f"models:/{model.model_id}",
        "python_function",
        signature is not None,
        example is not None,
        f"packaged the model directory as a pyfunc model ({_using(predictor, inference, model_dir)}); {how}",
        source="pyfunc",
        model_id=model.model_id,
        logged=True,
    )


def _using(predictor: ModelDirModel, inference: Path | None, model_dir: Path) -> str:
    where = "the model's code/" if inference == model_dir / "code" else "the job's code"
    loads = f"{INFERENCE_FILE} model_fn" if predictor.loaded_from == "model_fn" else predictor.loaded_from
    predicts = f"{INFERENCE_FILE} predict_fn" if predictor.predict_fn is not None else ".predict"
    return f"{loads}, {predicts}" + (f"; {INFERENCE_FILE} from {where}" if inference is not None else "")


def _save_pyfunc(
    local: Path,
    artifacts: dict[str, str],
    config: dict[str, Any],
    signature: Any,
    example: Any,
    requirements: list[str],
) -> None:
    import mlflow.pyfunc

    with _quiet_mlflow():
        mlflow.pyfunc.save_model(
            path=str(local),
            python_model=pyfunc_model.__file__,
            artifacts=artifacts,
            model_config=config,
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
        )


def _stage_code(source: Path, dest: Path) -> Path:
    """``inference.py`` and the Python it may import (top-level ``.py`` files and packages): not the
    data or environments a code directory may also hold."""
    dest.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if path.is_file() and path.suffix == ".py":
            shutil.copy2(path, dest / path.name)
        elif path.is_dir() and (path / "__init__.py").is_file():
            shutil.copytree(path, dest / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


# Signature and input example ----------------------------------------------------------------------
def read_input_example(model_dir: Path) -> Any:
    """The model directory's input example as a DataFrame (the first rows), or None when it has none."""
    import pandas as pd

    for name in EXAMPLE_FILES:
        path = model_dir / name
        if not path.is_file():
            continue
        if path.suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "dataframe_split" in data:
                data = data["dataframe_split"]
            if isinstance(data, dict) and "columns" in data and "data" in data:
                frame = pd.DataFrame(data["data"], columns=data["columns"])
            elif isinstance(data, dict) and "dataframe_records" in data:
                frame = pd.DataFrame.from_records(data["dataframe_records"])
            elif isinstance(data, dict):
                frame = pd.DataFrame(data if all(isinstance(v, list) for v in data.values()) else [data])
            else:
                frame = pd.DataFrame.from_records(data) if data and isinstance(data[0], dict) else pd.DataFrame(data)
        elif path.suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            frame = pd.read_parquet(path)
        return frame.head(EXAMPLE_ROWS)
    return None


def _signature(predictor: ModelDirModel, model_dir: Path) -> tuple[Any, Any, str]:
    """(signature, input example, how) — never raises: what went wrong goes into ``how``."""
    from mlflow.models import infer_signature

    try:
        example = read_input_example(model_dir)
    except Exception as exc:
        example = None
        failed = f"could not read the input example ({type(exc).__name__}: {exc}); "
    else:
        failed = ""
    if example is not None:
        source = next(name for name in EXAMPLE_FILES if (model_dir / name).is_file())
        try:
            output = predictor.predict_input(example)
            with _quiet_mlflow():
                return infer_signature(example, output), example, f"signature and input example from {source}"
        except Exception as exc:
            return None, None, f"no signature: predicting on {source} failed ({type(exc).__name__}: {exc})"
    import numpy as np
    import pandas as pd

    names = pyfunc_model.feature_names(predictor.model)
    count = getattr(predictor.model, "n_features_in_", None)
    if names is not None:
        zeros: Any = pd.DataFrame([[0.0] * len(names)], columns=names)
    elif isinstance(count, int):
        zeros = np.zeros((1, count))
    else:
        return (
            None,
            None,
            failed
            + (
                "no signature: the model does not name its features "
                f"(write {EXAMPLE_FILES[0]} into the model directory to get one)"
            ),
        )
    try:
        output = predictor.predict_input(zeros)
        with _quiet_mlflow():
            signature = infer_signature(zeros, output)
    except Exception as exc:
        return None, None, failed + f"no signature: predicting on a row of zeros failed ({type(exc).__name__}: {exc})"
    what = f"{len(names)} named features" if names is not None else f"{count} unnamed features (a tensor input)"
    return signature, None, failed + f"signature from the model's {what}"


# Requirements --------------------------------------------------------------------------------------
def _pin(distribution: str) -> str | None:
    from importlib import metadata

    try:
        version = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
    return f"{distribution}=={version.split('+')[0]}"  # no local label (torch's +cpu): pip cannot get those


def _requirements(imported: set[str], code: Path | None) -> list[str]:
    """mlflow and cloudpickle, the known ML packages loading the model imported, and the lines of the
    code's ``requirements.txt`` (SageMaker installs it for inference), pinned to what is installed."""
    pins = [_pin("mlflow"), _pin("cloudpickle")]
    pins += [_pin(dist) for module, dist in KNOWN_PACKAGES.items() if module in imported]
    requirements = [p for p in pins if p]
    names = {re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0].lower() for r in requirements}
    if code is not None and (code / "requirements.txt").is_file():
        for line in (code / "requirements.txt").read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            name = re.split(r"[=<>!~\[; ]", line, maxsplit=1)[0].lower()
            if line and not line.startswith("-") and name not in names:
                requirements.append(line)
                names.add(name)
    return requirements


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's advice (add an input example, type hints ...) is noise in a job's log."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


# Command line --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m strato.tracking.packaging MODEL_DIR [--code-dir DIR] [--run-id ID] [--name NAME]``:
    prints the result as one JSON line; exit 1 when packaging failed."""
    import argparse
    import os

    parser = argparse.ArgumentParser(prog="python -m strato.tracking.packaging")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--code-dir", type=Path, default=None)
    parser.add_argument("--run-id", default=os.environ.get("MLFLOW_RUN_ID"))
    parser.add_argument("--name", default="model")
    args = parser.parse_args(argv)
    if not args.run_id:
        parser.error("no run: pass --run-id or set MLFLOW_RUN_ID")
    try:
        result = package_model(args.model_dir, args.code_dir, run_id=args.run_id, name=args.name)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
