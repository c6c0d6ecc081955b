"""SageMaker's inference handlers for the model ``train.py`` saves. SageMaker's scikit-learn container
calls them behind its endpoint; Strato's pyfunc model calls ``model_fn`` once when the model is loaded
and ``predict_fn`` on every prediction (pyfunc decodes requests itself, so ``input_fn`` and
``output_fn`` are not needed)."""

import json
import os

import joblib


def model_fn(model_dir):
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    with open(os.path.join(model_dir, "classes.json")) as handle:
        classes = json.load(handle)
    return {"estimator": model, "classes": classes}


def predict_fn(input_data, model):
    """Class names, not class indices."""
    return [model["classes"][index] for index in model["estimator"].predict(input_data)]
