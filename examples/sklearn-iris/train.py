"""Train a decision tree on scikit-learn's bundled iris data, written the way SageMaker's script-mode
examples are: hyperparameters as arguments, paths from SM_* variables, the model saved to SM_MODEL_DIR.
It runs unchanged on SageMaker and on Strato."""

import argparse
import json
import os

import joblib
import pandas as pd
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_leaf_nodes", type=int, default=8)
    parser.add_argument("--random_state", type=int, default=0)
    parser.add_argument("--model-dir", type=str, default=os.environ.get("SM_MODEL_DIR"))
    parser.add_argument("--train", type=str, default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--output-data-dir", type=str, default=os.environ.get("SM_OUTPUT_DATA_DIR"))
    args = parser.parse_args()

    frame = pd.concat(pd.read_csv(os.path.join(args.train, name)) for name in sorted(os.listdir(args.train)))
    features, labels = frame.drop(columns=["target"]), frame["target"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.3, random_state=args.random_state, stratify=labels
    )
    model = DecisionTreeClassifier(max_leaf_nodes=args.max_leaf_nodes, random_state=args.random_state)
    for depth in range(1, 4):  # a short "training curve" so there is a metric series to see
        model.set_params(max_depth=depth).fit(x_train, y_train)
        print(f"epoch={depth} train_accuracy={accuracy_score(y_train, model.predict(x_train)):.4f}")
    model.set_params(max_depth=None).fit(x_train, y_train)
    accuracy = accuracy_score(y_test, model.predict(x_test))
    print(f"validation accuracy: {accuracy:.4f}")

    joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
    with open(os.path.join(args.output_data_dir, "evaluation.json"), "w") as handle:
        json.dump({"accuracy": accuracy, "hyperparameters": vars(args)}, handle)
