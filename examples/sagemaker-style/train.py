"""A SageMaker script-mode training script that also ships SageMaker's inference handlers.

It trains a scikit-learn classifier on the iris data (the ``train`` channel when the job has one,
scikit-learn's bundled copy otherwise), saves it to SM_MODEL_DIR as ``model.joblib`` with the class
names beside it, and writes ``input_example.json`` (a few rows of features, as records). When the job
ends, Strato logs the model directory to the job's MLflow run as a pyfunc model that loads it with
``inference.py``'s ``model_fn`` and predicts with its ``predict_fn``, with a signature inferred from
the input example. The same files work on SageMaker (``model.tar.gz`` plus ``code/inference.py``).
"""

import argparse
import json
import os
from pathlib import Path

import joblib
import pandas as pd
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

CLASSES = ["setosa", "versicolor", "virginica"]


def read_data(train_dir: str | None) -> tuple[pd.DataFrame, pd.Series]:
    if train_dir and os.path.isdir(train_dir) and os.listdir(train_dir):
        frame = pd.concat(pd.read_csv(os.path.join(train_dir, name)) for name in sorted(os.listdir(train_dir)))
    else:
        frame = load_iris(as_frame=True).frame
    return frame.drop(columns=["target"]), frame["target"]


def train(model_dir: str, train_dir: str | None = None, c: float = 1.0, random_state: int = 0) -> float:
    features, labels = read_data(train_dir)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=random_state, stratify=labels
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=500))
    model.fit(x_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(x_test))
    print(f"validation accuracy: {accuracy:.4f}")

    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out / "model.joblib")
    (out / "classes.json").write_text(json.dumps(CLASSES))
    x_test.head(5).to_json(out / "input_example.json", orient="records")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--random_state", type=int, default=0)
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR", "model"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    args = parser.parse_args()
    train(args.model_dir, args.train, c=args.C, random_state=args.random_state)
