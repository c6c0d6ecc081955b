"""Write scikit-learn's bundled iris data set (no download) as the step's `data` output: a CSV under
$SM_OUTPUT_DATA_DIR/data that the training step receives as its `train` channel."""

import os
from pathlib import Path

from sklearn.datasets import load_iris

out = Path(os.environ["SM_OUTPUT_DATA_DIR"]) / "data"
out.mkdir(parents=True, exist_ok=True)
load_iris(as_frame=True).frame.to_csv(out / "iris.csv", index=False)
print(f"wrote {out / 'iris.csv'}")
