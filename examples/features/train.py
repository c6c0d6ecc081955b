"""Train on a point-in-time training dataset: the job's `train` input is `lake://iris_training@N`, which
arrives as `$SM_CHANNEL_TRAIN/iris_training.parquet` (the features each label's flower had when the label
was recorded, built by `get_historical_features`)."""

import argparse
import os

import joblib
import pandas as pd
from sklearn.model_selection import cross_val_score
from sklearn.tree import DecisionTreeClassifier

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width", "petal_ratio"]

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_leaf_nodes", type=int, default=8)
    parser.add_argument("--train", default=os.environ.get("SM_CHANNEL_TRAIN"))
    parser.add_argument("--model-dir", default=os.environ.get("SM_MODEL_DIR"))
    args = parser.parse_args()

    frame = pd.read_parquet(os.path.join(args.train, "iris_training.parquet"))
    model = DecisionTreeClassifier(max_leaf_nodes=args.max_leaf_nodes, random_state=0)
    scores = cross_val_score(model, frame[FEATURES], frame["species"], cv=5)
    print(f"rows={len(frame)} cross-validated accuracy: {scores.mean():.4f}")
    joblib.dump(model.fit(frame[FEATURES], frame["species"]), os.path.join(args.model_dir, "model.joblib"))
